"""Identifiers, chunking and reassembly (RFC 4975 §5.1, §7.1, §7.1.1, §7.3.1)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import (
    ByteRange,
    Continuation,
    MsrpError,
    MsrpLimitExceeded,
    MsrpParseError,
    Reassembly,
    is_ident,
    new_ident,
    pick_transaction_id,
    split_message,
)


def counter_random() -> tuple[list[int], object]:
    calls: list[int] = []
    counter = itertools.count()

    def random(n: int) -> bytes:
        calls.append(n)
        return next(counter).to_bytes(n, "big")

    return calls, random


def test_new_ident_is_the_hex_of_the_random_bytes() -> None:
    """An id is the random bytes in lower-case hex (C speed on the relay hot path; base32
    was a Python loop per 5 bytes), always an RFC 4975 ident."""
    assert new_ident(lambda n: bytes(range(0xA0, 0xA0 + n)), 8) == "a0a1a2a3a4a5a6a7"
    assert len(new_ident(lambda n: b"\x00" * n, 16)) == 32


def test_new_ident_has_64_bits_and_is_an_ident() -> None:
    """Ids draw at least 8 random bytes and are valid RFC 4975 idents."""
    calls, random = counter_random()
    ident = new_ident(random, 8)  # type: ignore[arg-type]
    assert calls == [8] and is_ident(ident)
    assert is_ident(new_ident(lambda n: b"\xff" * n, 16))
    with pytest.raises(MsrpError):
        new_ident(lambda n: b"", 8)


def test_pick_transaction_id_avoids_end_line_in_body() -> None:
    """If the body contains '-------<id>', a new id is drawn (RFC 4975 §7.1)."""
    first = new_ident(bytes, 8)
    body = b"text -------" + first.encode() + b"$ more"
    draws = iter([bytes(8), b"\x01" * 8])
    chosen = pick_transaction_id(body, lambda n: next(draws), 8)
    assert chosen != first and b"-------" + chosen.encode() not in body
    with pytest.raises(MsrpError):
        pick_transaction_id(body, bytes, 8)


def test_split_small_message_single_chunk() -> None:
    """A small message is one '$' chunk with a numeric range."""
    (chunk,) = split_message(b"abcdEFGH", 2048)
    assert chunk.byte_range == ByteRange(1, 8, 8)
    assert chunk.continuation is Continuation.COMPLETE


def test_split_empty_message() -> None:
    """An empty message is sent as 1-0/0 (RFC 4975 §7.1.1)."""
    (chunk,) = split_message(b"", 2048)
    assert str(chunk.byte_range) == "1-0/0"


def test_split_large_message_is_interruptible() -> None:
    """Chunks above 2048 octets carry range-end '*'; all but the last end with '+'."""
    body = bytes(range(256)) * 40  # 10240 octets
    chunks = split_message(body, 4096)
    assert [str(c.byte_range) for c in chunks] == ["1-*/10240", "4097-*/10240", "8193-10240/10240"]
    assert [c.continuation for c in chunks] == [Continuation.MORE] * 2 + [Continuation.COMPLETE]
    assert b"".join(c.body for c in chunks) == body
    small = split_message(body, 2048)
    assert str(small[0].byte_range) == "1-2048/10240"


def test_reassembly_rfc_figure3() -> None:
    """The two chunks of RFC 4975 Figure 3 give "abcdEFGH"."""
    r = Reassembly("4564dpWd", 100)
    assert not r.add(ByteRange(1, None, 8), b"abcd", Continuation.MORE, "text/plain")
    assert r.add(ByteRange(5, 8, 8), b"EFGH", Continuation.COMPLETE, "text/plain")
    assert r.body() == b"abcdEFGH" and r.content_type == "text/plain"


def test_reassembly_out_of_order_and_overlap_last_wins() -> None:
    """Chunks may arrive in any order; overlapping bytes take the last received (§7.3.1)."""
    r = Reassembly("m1234", 1000)
    assert not r.add(ByteRange(5, 8, 8), b"EFGH", Continuation.COMPLETE)
    assert r.add(ByteRange(1, 6, 8), b"abcdXY", Continuation.MORE)
    # bytes 1-6 arrived last, so X and Y overwrite E and F.
    assert r.received == 8 and r.body() == b"abcdXYGH"


def test_reassembly_gap_not_complete() -> None:
    """A missing range keeps the message incomplete even after '$'."""
    r = Reassembly("m1234", 1000)
    assert not r.add(ByteRange(1, 2, 6), b"ab", Continuation.MORE)
    assert not r.add(ByteRange(5, 6, 6), b"ef", Continuation.COMPLETE)
    assert r.received == 4
    assert r.add(ByteRange(3, 4, 6), b"cd", Continuation.MORE)
    assert r.body() == b"abcdef"


def test_reassembly_actual_length_wins() -> None:
    """The body length, not range-end, places the data (an interrupted chunk)."""
    r = Reassembly("m1234", 1000)
    assert r.add(ByteRange(1, 25, 25), b"Hey Bob, are you there?", Continuation.COMPLETE)
    assert r.total == 23


def test_reassembly_limits() -> None:
    """Messages beyond the limit (declared or actual) raise 413."""
    with pytest.raises(MsrpLimitExceeded):
        Reassembly("m1234", 10).add(ByteRange(1, None, 11), b"a", Continuation.MORE)
    with pytest.raises(MsrpLimitExceeded):
        Reassembly("m1234", 10).add(ByteRange(8, None, None), b"abcd", Continuation.MORE)


def test_reassembly_contradictions() -> None:
    """Chunks beyond the known length, or two finals that disagree, raise 400."""
    r = Reassembly("m1234", 100)
    r.add(ByteRange(1, 4, 4), b"abcd", Continuation.COMPLETE)
    with pytest.raises(MsrpParseError):
        r.add(ByteRange(5, 6, None), b"ef", Continuation.MORE)
    with pytest.raises(MsrpParseError):
        r.add(ByteRange(1, 6, 6), b"abcdef", Continuation.COMPLETE)
    r2 = Reassembly("m1234", 100)
    r2.add(ByteRange(1, None, 8), b"abcdefgh", Continuation.MORE)
    with pytest.raises(MsrpParseError):
        r2.add(ByteRange(1, 4, 4), b"abcd", Continuation.COMPLETE)


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=3000),
    size=st.integers(1, 700),
    order=st.randoms(use_true_random=False),
)
def test_split_then_reassemble_any_order(body: bytes, size: int, order: object) -> None:
    """split_message then Reassembly in any order gives the message back."""
    chunks = split_message(body, size)
    order.shuffle(chunks)  # type: ignore[attr-defined]
    r = Reassembly("m1234", 5000)
    done = [r.add(c.byte_range, c.body, c.continuation) for c in chunks]
    assert done[-1] and not any(done[:-1])
    assert r.body() == body


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(1, 200),
    writes=st.lists(
        st.tuples(st.integers(0, 199), st.integers(1, 60), st.integers(0, 255)), max_size=12
    ),
)
def test_last_received_wins_against_a_model(total: int, writes: list[tuple[int, int, int]]) -> None:
    """Overlapping chunks in any order behave like writes into one buffer (§7.3.1)."""
    model = bytearray(total)
    covered = [False] * total
    r = Reassembly("m1234", 1000)
    for offset, length, fill in writes:
        start = offset % total
        piece = bytes([fill]) * min(length, total - start)
        r.add(ByteRange(start + 1, None, total), piece, Continuation.MORE)
        model[start : start + len(piece)] = piece
        covered[start : start + len(piece)] = [True] * len(piece)
    # The final chunk covers the last byte and fixes the length.
    done = r.add(ByteRange(total, total, total), b"Z", Continuation.COMPLETE)
    model[total - 1] = ord("Z")
    covered[total - 1] = True
    assert done == all(covered)
    if done:
        assert r.body() == bytes(model)
    assert r.received == sum(covered)


def test_errors_compare_by_value() -> None:
    """MsrpErrors are values: same class, reason, status and close flag compare equal."""
    assert MsrpLimitExceeded("x") == MsrpLimitExceeded("x")
    assert MsrpLimitExceeded("x") != MsrpLimitExceeded("y")
    assert MsrpLimitExceeded("x") != MsrpLimitExceeded("x", close_connection=True)
    assert MsrpLimitExceeded("x") != MsrpParseError("x", status=413)
    assert len({MsrpParseError("a"), MsrpParseError("a")}) == 1


def test_reassembly_bounds_the_number_of_gaps() -> None:
    """A sender that scatters tiny chunks with gaps between them is stopped with 413
    once the message has ``max_fragments`` separate pieces: each chunk is merged into
    the piece list, so an unbounded list would make reassembly quadratic in the number
    of chunks (one peer stalling the reactor for everyone)."""
    r = Reassembly("m1234", 1 << 20, max_fragments=8)
    for i in range(8):
        r.add(ByteRange(1 + 2 * i, 1 + 2 * i, None), b"x", Continuation.MORE)
    with pytest.raises(MsrpLimitExceeded):
        r.add(ByteRange(1 + 2 * 8, 1 + 2 * 8, None), b"x", Continuation.MORE)
    # Filling gaps is always fine: it merges pieces.
    r.add(ByteRange(2, 2, None), b"y", Continuation.MORE)


def test_reassembly_default_fragment_bound() -> None:
    """The connection's reassembly refuses a message scattered into more than 256 pieces."""
    r = Reassembly("m1234", 1 << 20)
    with pytest.raises(MsrpLimitExceeded):
        for i in range(1000):
            r.add(ByteRange(1 + 2 * i, 1 + 2 * i, None), b"x", Continuation.MORE)
