"""Bugs the fuzzers found, kept as regression tests: each states the behaviour the RFC
asks for (they started as strict xfails until the owning package was fixed)."""

from __future__ import annotations

import pytest

from focus.msrp import BadFrame, FrameParser, Request

# Found by bench/fuzz/fuzz_msrp_frames.py in seconds (mutated RFC 4975 examples).
FRAME = (
    b"MSRP a1b2c3d4 SEND\r\n"
    b"To-Path: msrp://b.example.com:8888/s1;tcp\r\n"
    b"From-Path: msrp://a.example.com:7777/s2;tcp\r\n"
    b"Message-ID: m1m1\r\n"
    b"Byte-Range: 1-2/2\r\n"
    b"X-Y: a%sb\r\n"
    b"Content-Type: text/plain%s\r\n"
    b"\r\n"
    b"hi\r\n"
    b"-------a1b2c3d4$\r\n"
)


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [(b"\r", b""), (b"\n", b""), (b"", b"\r")],
    ids=["CR-in-extension-header", "LF-in-extension-header", "CR-ending-Content-Type"],
)
def test_header_value_with_a_bare_line_break_is_a_bad_frame(
    extension: bytes, content_type: bytes
) -> None:
    """A header value may not contain CR or LF (RFC 4975 §9: hval = utf8text, which is
    HTAB / %x20-7E / UTF8-NONASCII), so such a frame is a 400 BadFrame, never a Request
    that cannot be encoded again."""
    (item,) = FrameParser().feed(FRAME % (extension, content_type))
    assert isinstance(item, BadFrame), item
    assert not isinstance(item, Request)
