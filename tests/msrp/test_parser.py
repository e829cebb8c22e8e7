"""The incremental frame parser (RFC 4975 §7, §9): examples, splits, limits, properties."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import (
    BadFrame,
    ByteRange,
    Continuation,
    FailureReport,
    FrameParser,
    MsrpConfig,
    MsrpError,
    MsrpUri,
    Request,
    Response,
    Status,
)

from . import examples as ex

ALICE = MsrpUri.parse("msrp://alice.example.com:7777/iau39soe2843z;tcp")
BOB = MsrpUri.parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp")


def normal(items: Sequence[object]) -> list[object]:
    """Make parser output comparable (errors compare by type, status and reason)."""
    out: list[object] = []
    for item in items:
        if isinstance(item, BadFrame):
            err = item.error
            out.append(
                (
                    item.transaction_id,
                    item.method,
                    type(err),
                    err.status,
                    err.reason,
                    item.to_path,
                    item.from_path,
                    item.failure_report,
                )
            )
        else:
            out.append(item)
    return out


def one_shot(data: bytes, config: MsrpConfig | None = None) -> list[object]:
    return normal(list(FrameParser(config).feed(data)))


def byte_at_a_time(data: bytes, config: MsrpConfig | None = None) -> list[object]:
    parser = FrameParser(config)
    out: list[object] = []
    for i in range(len(data)):
        out.extend(parser.feed(data[i : i + 1]))
    return normal(out)


@pytest.mark.parametrize("frame", ex.ALL_FRAMES)
def test_rfc_examples_parse_and_reencode(frame: bytes) -> None:
    """Every RFC 4975/7701 example frame parses to one frame that encodes to a frame equal to it."""
    (parsed,) = FrameParser().feed(frame)
    assert isinstance(parsed, Request | Response)
    (again,) = FrameParser().feed(parsed.encode())
    assert again == parsed


def test_figure2_fields() -> None:
    """RFC 4975 Figure 2: the SEND and the 200 with only To-Path/From-Path (lenient)."""
    send, ok = FrameParser().feed(ex.FIG2_SEND + ex.FIG2_200)
    assert isinstance(send, Request) and isinstance(ok, Response)
    assert send.method == "SEND" and send.transaction_id == "a786hjs2"
    assert send.message_id == "87652491"
    assert send.byte_range == ByteRange(1, 25, 25)
    assert send.content_type == "text/plain"
    assert send.body == b"Hey Bob, are you there?"
    assert send.continuation is Continuation.COMPLETE
    assert send.failure_mode is FailureReport.YES and not send.wants_success_report
    assert (ok.code, ok.comment, ok.headers) == (200, "OK", ())
    assert ok.to_path == send.from_path


def test_canonical_encoding_is_byte_exact() -> None:
    """Frames written in the canonical header order re-encode byte for byte."""
    for frame in (ex.FIG2_SEND, ex.FIG2_200, ex.POSITIVE_SEND, ex.POSITIVE_REPORT, ex.NICK_F1):
        (parsed,) = FrameParser().feed(frame)
        assert isinstance(parsed, Request | Response)
        assert parsed.encode() == frame


def test_report_and_chunk_fields() -> None:
    """REPORT Status/Byte-Range and the interruptible chunk of Figure 3 are decoded."""
    (report,) = FrameParser().feed(ex.POSITIVE_REPORT)
    assert isinstance(report, Request)
    assert report.status == Status(200, "OK", 0)
    (chunk,) = FrameParser().feed(ex.FIG3_CHUNK1)
    assert isinstance(chunk, Request)
    assert chunk.byte_range == ByteRange(1, None, 8)
    assert chunk.continuation is Continuation.MORE
    (nick,) = FrameParser().feed(ex.NICK_F1)
    assert isinstance(nick, Request)
    assert nick.header("use-nickname") == '"Alice the great"'
    assert nick.body is None


def test_all_examples_in_one_stream_byte_at_a_time() -> None:
    """All examples concatenated give the same frames one-shot and byte-at-a-time."""
    stream = b"".join(ex.ALL_FRAMES)
    first = one_shot(stream)
    assert len(first) == len(ex.ALL_FRAMES)
    assert byte_at_a_time(stream) == first


@pytest.mark.parametrize("cut", range(len(ex.FIG2_SEND) + 1))
def test_split_at_every_position(cut: int) -> None:
    """A frame split in two at any byte (the end-line included) parses the same."""
    parser = FrameParser()
    out = parser.feed(ex.FIG2_SEND[:cut]) + parser.feed(ex.FIG2_SEND[cut:])
    assert out == FrameParser().feed(ex.FIG2_SEND)
    assert parser.buffered == 0


def _send(tid: str, body: bytes | None, flag: Continuation = Continuation.COMPLETE) -> Request:
    size = 0 if body is None else len(body)
    return Request(
        transaction_id=tid,
        method="SEND",
        to_path=(BOB,),
        from_path=(ALICE,),
        message_id="msg0001",
        byte_range=ByteRange(1, size, size),
        content_type=None if body is None else "text/plain",
        body=body,
        continuation=flag,
    )


def test_body_containing_other_end_lines() -> None:
    """End-lines of other transactions, and our id with a longer suffix, stay in the body."""
    body = (
        b"line\r\n-------other123$\r\n-------abcd1234X\r\n-------abcd12345$\r\n"
        b"-------abcd1234\r\n-------abcd1234"
    )
    frame = _send("abcd1234", body)
    data = frame.encode()
    assert one_shot(data) == [frame]
    assert byte_at_a_time(data) == [frame]


def test_empty_body_and_bodyless() -> None:
    """An empty body (Content-Type, blank line) differs from a body-less request (§7.1)."""
    empty = _send("tid00001", b"")
    bodyless = _send("tid00002", None)
    assert empty.encode().count(b"\r\n\r\n") == 1
    assert one_shot(empty.encode() + bodyless.encode()) == [empty, bodyless]


def test_keepalive_crlfs_between_frames_are_skipped() -> None:
    """CRLFs between frames are tolerated."""
    assert len(one_shot(b"\r\n" + ex.FIG2_SEND + b"\r\n\r\n" + ex.FIG2_200)) == 2


def test_abort_flag() -> None:
    """The '#' flag marks an aborted message (§7.1)."""
    frame = _send("tid00003", b"partial", Continuation.ABORT)
    (parsed,) = FrameParser().feed(frame.encode())
    assert isinstance(parsed, Request) and parsed.continuation is Continuation.ABORT


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\n",
        b"MSRP x SEND\r\n",  # id too short
        b"MSRP abcd1234 send\r\n",  # lower-case method
        b"MSRP abcd1234 20 OK\r\n",  # two-digit status
        b"GET / HTTP/1.1",  # garbage without CRLF fails early
    ],
)
def test_broken_start_line_closes(data: bytes) -> None:
    """A start line that cannot be framed raises 400 and the parser stays broken."""
    parser = FrameParser()
    with pytest.raises(MsrpError) as info:
        parser.feed(data)
    assert info.value.close_connection and info.value.status == 400
    with pytest.raises(MsrpError):
        parser.feed(ex.FIG2_SEND)


def test_start_line_limit() -> None:
    """A start line over the limit closes the connection, even before its CRLF arrives."""
    parser = FrameParser(MsrpConfig(max_start_line=40))
    with pytest.raises(MsrpError) as info:
        parser.feed(b"MSRP abcd1234 200 " + b"x" * 40)
    assert info.value.close_connection


def _bad(data: bytes, config: MsrpConfig | None = None) -> BadFrame:
    out = FrameParser(config).feed(data)
    assert len(out) == 2, out  # the bad frame, then the good frame after it
    assert isinstance(out[1], Request | Response)
    assert isinstance(out[0], BadFrame)
    assert normal(out) == byte_at_a_time(data, config)
    return out[0]


def test_too_many_headers_skips_to_end_line() -> None:
    """Too many headers: 413 BadFrame with the paths recovered, then parsing goes on."""
    frame = _send("tid00004", b"x" * 10)
    data = frame.encode().replace(b"Content-Type", b"X-A: 1\r\nX-B: 2\r\nContent-Type")
    bad = _bad(data + ex.FIG2_200, MsrpConfig(max_headers=6))
    assert bad.error.status == 413 and not bad.error.close_connection
    assert bad.to_path == (BOB,) and bad.from_path == (ALICE,)
    assert bad.method == "SEND" and bad.transaction_id == "tid00004"


def test_header_line_and_section_limits() -> None:
    """Over-long header lines and header sections give 413 BadFrames."""
    long_line = (
        _send("tid00005", b"hello")
        .encode()
        .replace(b"Content-Type", b"X-Long: " + b"y" * 200 + b"\r\nContent-Type")
    )
    bad = _bad(long_line + ex.FIG2_200, MsrpConfig(max_header_line=100))
    assert bad.error.status == 413
    bad = _bad(long_line + ex.FIG2_200, MsrpConfig(max_header_bytes=300))
    assert bad.error.status == 413


def test_chunk_limit_discards_body_and_continues() -> None:
    """A chunk above max_chunk_size is skipped with bounded memory and answered 413."""
    config = MsrpConfig(max_chunk_size=64)
    frame = _send("tid00006", b"z" * 5000).encode()
    bad = _bad(frame + ex.FIG2_200, config)
    assert bad.error.status == 413 and bad.to_path == (BOB,)
    parser = FrameParser(config)
    peak = 0
    for i in range(0, len(frame), 7):
        parser.feed(frame[i : i + 7])
        peak = max(peak, parser.buffered)
    assert peak < 1000


def test_non_send_body_limit() -> None:
    """A REPORT body above 10240 octets is rejected with 413 (§7.1)."""
    report = Request(
        transaction_id="tid00007",
        method="REPORT",
        to_path=(ALICE,),
        from_path=(BOB,),
        message_id="msg0001",
        status=Status(200, "OK"),
        content_type="text/plain",
        body=b"r" * 10241,
    )
    bad = _bad(report.encode() + ex.FIG2_200)
    assert bad.error.status == 413


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Byte-Range: 1-25/25", b"Byte-Range: 0-25/25"),
        (b"Byte-Range: 1-25/25", b"Byte-Range: 1-30/25"),
        (b"Byte-Range: 1-25/25", b"Byte-Range: x"),
        (b"Byte-Range: 1-25/25", b"Failure-Report: maybe"),
        (b"Byte-Range: 1-25/25", b"Success-Report: perhaps"),
        (b"Byte-Range: 1-25/25", b"Byte-Range: 1-25/25\r\nTo-Path: msrp://x.example:1/a;tcp"),
        (b"Message-ID: 87652491", b"Message-ID: a"),
        (b"Message-ID: 87652491", b"Message-ID: 87652491\r\nMessage-ID: 87652492"),
        (b"Content-Type: text/plain", b"Content-Type: text/plain\r\nContent-Type: text/html"),
        (b"Message-ID: 87652491", b"X-Nothing"),
        (b"Message-ID: 87652491", b": empty-name"),
        (b"Message-ID: 87652491", b"X-Bin: \xff\xfe"),
        (b"Content-Type: text/plain\r\n", b""),  # body without Content-Type
        (b"From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n", b""),
        (b"To-Path: msrp://biloxi", b"To-Path: sip://biloxi"),
    ],
)
def test_malformed_headers_give_400_bad_frame(old: bytes, new: bytes) -> None:
    """A malformed header value yields a 400 BadFrame and the next frame still parses."""
    data = ex.FIG2_SEND.replace(old, new)
    assert data != ex.FIG2_SEND
    bad = _bad(data + ex.FIG2_200)
    assert bad.error.status == 400 and not bad.error.close_connection
    assert bad.method == "SEND"


def test_report_rules() -> None:
    """A REPORT without Status, or with Failure-Report, is a 400 BadFrame (§7.1.2)."""
    no_status = ex.POSITIVE_REPORT.replace(b"Status: 000 200 OK\r\n", b"")
    assert _bad(no_status + ex.FIG2_200).error.status == 400
    with_fr = ex.POSITIVE_REPORT.replace(b"Status:", b"Failure-Report: no\r\nStatus:")
    assert _bad(with_fr + ex.FIG2_200).error.status == 400


def test_response_with_body_or_plus_is_bad() -> None:
    """Responses carry no body and always end with '$' (§7.2)."""
    plus = ex.FIG2_200.replace(b"a786hjs2$", b"a786hjs2+")
    assert _bad(plus + ex.FIG2_200).method is None
    with_body = ex.FIG2_200.replace(b"-------", b"\r\nbody\r\n-------")
    assert _bad(with_body + ex.FIG2_200).error.status == 400


def test_unexpected_end_line_of_other_transaction() -> None:
    """A header-section end-line with another id is a 400 BadFrame; ours ends it."""
    data = ex.FIG2_200.replace(b"-------a786hjs2$", b"-------zzzz9999$\r\n-------a786hjs2$")
    assert _bad(data + ex.FIG2_200).error.status == 400


# -- properties ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_msrp_error(data: bytes) -> None:
    """Arbitrary bytes yield frames or MsrpError, never another exception."""
    with contextlib.suppress(MsrpError):
        FrameParser(MsrpConfig(max_chunk_size=64)).feed(data)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from([b"", ex.FIG2_SEND, ex.POSITIVE_REPORT]),
    junk=st.binary(max_size=80),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_any_split_equals_one_shot(prefix: bytes, junk: bytes, cuts: list[int]) -> None:
    """Feeding in arbitrary pieces gives the same frames (or the same error) as one piece."""
    data = prefix + ex.FIG3_CHUNK1 + junk

    def run(pieces: list[bytes]) -> tuple[list[object], object]:
        parser = FrameParser(MsrpConfig(max_chunk_size=64))
        out: list[object] = []
        try:
            for piece in pieces:
                out.extend(parser.feed(piece))
        except MsrpError as exc:
            return normal(out), (type(exc), exc.status, exc.reason)
        error = parser.error
        return normal(out), None if error is None else (type(error), error.status, error.reason)

    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole = run([data])
    assert run(pieces) == whole
    assert run([data[i : i + 1] for i in range(len(data))]) == whole


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    tid=_ids,
    mid=_ids,
    body=st.none() | st.binary(max_size=200),
    flag=st.sampled_from(list(Continuation)),
    success=st.sampled_from([None, True, False]),
    failure=st.sampled_from([None, *FailureReport]),
)
def test_serialize_parse_round_trip(
    tid: str,
    mid: str,
    body: bytes | None,
    flag: Continuation,
    success: bool | None,
    failure: FailureReport | None,
) -> None:
    """encode() then parse gives back the same request (bodies may contain anything)."""
    size = 0 if body is None else len(body)
    request = Request(
        transaction_id=tid,
        method="SEND",
        to_path=(BOB,),
        from_path=(ALICE, BOB),
        message_id=mid,
        byte_range=ByteRange(1, None, size),
        success_report=success,
        failure_report=failure,
        content_type=None if body is None else "text/plain",
        headers=(("X-Ext", "värde"),),
        body=body,
        continuation=flag,
    )
    data = request.encode()
    if body is not None and b"-------" + tid.encode() in body:
        return  # the serializer's id picker never produces this; see test_chunking
    assert FrameParser().feed(data) == [request]


def test_frames_before_breakage_are_delivered() -> None:
    """Frames completed before the stream breaks are returned; the error is kept."""
    parser = FrameParser()
    out = parser.feed(ex.FIG2_200 + b"NONSENSE\r\n")
    assert len(out) == 1 and isinstance(out[0], Response)
    assert parser.error is not None and parser.error.close_connection
    with pytest.raises(MsrpError):
        parser.feed(b"")


_header_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"Message-ID: m1",
                b"Byte-Range: 1-2/2",
                b"Failure-Report: partial",
                b"X-Long: " + b"v" * 40,
                b"Bad Name: x",
                b":novalue",
                b"NoColon",
                b"X-Utf8: \xc3\xa9",
                b"X-CR: a\rb",
                b"-------other$",
                b"",
            ]
        ),
        st.from_regex(rb"[A-Za-z][A-Za-z0-9-]{0,8}:[ \t]{0,2}[ -~]{0,12}", fullmatch=True),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    lines=_header_lines,
    body=st.sampled_from([None, b"hi", b"\r\n-------t1234567$\r\n"]),
    limits=st.sampled_from([(4096, 32, 16384), (30, 32, 16384), (4096, 4, 16384), (4096, 32, 120)]),
)
def test_header_block_fast_path_equals_line_by_line(
    lines: list[bytes], body: bytes | None, limits: tuple[int, int, int]
) -> None:
    """A header section parsed in one block (one-shot feed) gives exactly what the line-by-
    line parser gives (byte-at-a-time feed): same frames, same errors, same limits."""
    head = [
        b"MSRP t1234567 SEND",
        b"To-Path: " + str(BOB).encode(),
        b"From-Path: " + str(ALICE).encode(),
        *lines,
    ]
    if body is None:
        data = b"\r\n".join(head) + b"\r\n-------t1234567$\r\n"
    else:
        data = (
            b"\r\n".join(head)
            + b"\r\nContent-Type: text/plain\r\n\r\n"
            + body
            + b"\r\n-------t1234567$\r\n"
        )
    line, count, total = limits
    config = MsrpConfig(max_header_line=line, max_headers=count, max_header_bytes=total)

    def run(pieces: list[bytes]) -> tuple[list[object], object]:
        parser = FrameParser(config)
        out: list[object] = []
        try:
            for piece in pieces:
                out.extend(parser.feed(piece))
        except MsrpError as exc:
            return normal(out), (type(exc), exc.status, exc.reason)
        error = parser.error
        return normal(out), None if error is None else (type(error), error.status, error.reason)

    assert run([data]) == run([data[i : i + 1] for i in range(len(data))])
