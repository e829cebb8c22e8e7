"""Real samples from each package's own tests, and byte-level mutations of them.

The samples are collected by looking at what the other test packages already hold (the
RFC 4475 torture messages, the RFC 4975/7701 figures, the SDP and CPIM examples, the
MIKEY golden vectors), so the fuzzers start from valid wire data and follow those
fixtures as they grow.  The same functions feed the atheris harnesses in bench/fuzz/.
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Callable, Iterable
from types import ModuleType

from hypothesis import strategies as st

TESTS = pathlib.Path(__file__).resolve().parent.parent

#: Byte strings that are separators or boundary values in one of the grammars.
TOKENS: tuple[bytes, ...] = (
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"\xc3\x28",  # invalid UTF-8
    b":",
    b";",
    b",",
    b"=",
    b"<",
    b">",
    b'"',
    b"\\",
    b"%",
    b"%00",
    b" ",
    b"\t",
    b"-------",
    b"$",
    b"+",
    b"#",
    b"/",
    b"*",
    b"@",
    b"0",
    b"-1",
    b"4294967296",
    b"99999999999999999999",
    b"Content-Length: 99999999\r\n",
    b"a=key-mgmt:mikey AAAA\r\n",
    b"m=message 9 TCP/TLS/MSRP *\r\n",
    b"Byte-Range: 1-*/*\r\n",
)


def _constants(module: ModuleType, kind: type) -> list[bytes]:
    """Module-level upper-case constants of ``kind`` (bytes or str), as bytes."""
    out = []
    for name, value in vars(module).items():
        if name.isupper() and isinstance(value, kind) and len(value) > 8:
            out.append(value.encode("utf-8") if isinstance(value, str) else value)
    return out


@functools.cache
def sip_samples() -> tuple[bytes, ...]:
    """The RFC 4475 torture messages kept by tests/sip (valid and invalid ones)."""
    files = sorted((TESTS / "sip" / "fixtures" / "rfc4475").glob("*.dat"))
    return tuple(f.read_bytes() for f in files)


@functools.cache
def msrp_samples() -> tuple[bytes, ...]:
    """The RFC 4975 / RFC 7701 frames of tests/msrp/examples.py."""
    from tests.msrp import examples

    return tuple(examples.ALL_FRAMES)


@functools.cache
def sdp_samples() -> tuple[bytes, ...]:
    """Every SDP text the SDP tests keep as a module constant (RFC 8866, 4975, 4567, 7701)."""
    from tests.sdp import test_description, test_msrp_attributes

    found = _constants(test_description, str) + _constants(test_msrp_attributes, str)
    return tuple(s for s in found if s.startswith(b"v=0"))


@functools.cache
def cpim_samples() -> tuple[bytes, ...]:
    """RFC 3862's example and every message/cpim body of the MSRP example frames."""
    from focus.msrp import FrameParser, Request
    from tests.msrp import test_cpim

    bodies = [test_cpim.RFC3862_EXAMPLE]
    for frame in msrp_samples():
        for item in FrameParser().feed(frame):
            if (
                isinstance(item, Request)
                and item.body
                and (item.content_type or "").lower().startswith("message/cpim")
            ):
                bodies.append(item.body)
    return tuple(bodies)


@functools.cache
def mikey_samples() -> tuple[bytes, ...]:
    """Every MIKEY message of the golden vectors (REQUEST_INIT … TRANSFER_RESP, ERROR)."""
    data = json.loads((TESTS / "mikey" / "fixtures" / "golden.json").read_text())
    out = []
    for case in data["cases"]:
        for name, value in case["expected"].items():
            if name.isupper() and name != "BASE_TICKET" and isinstance(value, str):
                out.append(bytes.fromhex(value))
    return tuple(out)


@functools.cache
def base_ticket_samples() -> tuple[bytes, ...]:
    """The sealed base tickets of the golden vectors (RFC 6043 Appendix A)."""
    data = json.loads((TESTS / "mikey" / "fixtures" / "golden.json").read_text())
    return tuple(bytes.fromhex(c["expected"]["BASE_TICKET"]) for c in data["cases"])


# -- mutation ------------------------------------------------------------------------------


def mutate(data: bytes, ops: Iterable[tuple[int, int, int, bytes]]) -> bytes:
    """Apply (kind, position, amount, insert) edits: 0 flip a bit, 1 insert, 2 delete a run,
    3 duplicate a run, 4 overwrite.  Positions are taken modulo the current length so any
    integers are valid, which lets atheris and Hypothesis drive the same function."""
    buf = bytearray(data)
    for kind, pos, amount, insert in ops:
        size = len(buf)
        at = pos % (size + 1)
        if kind % 5 == 0 and size:
            buf[at % size] ^= 1 << (amount % 8)
        elif kind % 5 == 1:
            buf[at:at] = insert
        elif kind % 5 == 2:
            del buf[at : at + 1 + amount % 64]
        elif kind % 5 == 3:
            buf[at:at] = buf[at : at + 1 + amount % 64]
        elif kind % 5 == 4:
            buf[at : at + len(insert)] = insert
    return bytes(buf)


_insert = st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=12))
_op = st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.integers(0, 255), _insert)


def mutated(samples: Callable[[], tuple[bytes, ...]]) -> st.SearchStrategy[bytes]:
    """A real sample with one to eight byte-level edits (flip, insert, delete, repeat)."""
    return st.builds(
        mutate,
        st.deferred(lambda: st.sampled_from(samples())),
        st.lists(_op, min_size=1, max_size=8),
    )


def inputs(samples: Callable[[], tuple[bytes, ...]]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, real samples untouched, and mutated samples."""
    return st.one_of(
        st.binary(max_size=2048),
        st.deferred(lambda: st.sampled_from(samples())),
        mutated(samples),
    )
