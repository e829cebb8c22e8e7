"""Identifiers, chunking of outgoing messages and reassembly of incoming chunks.

* Transaction ids and Message-IDs (RFC 4975 §7.1, §7.1.1) come from an injected random
  source (``random(n) -> n bytes``), at least 64 bits, hex so they are ``ident``s.
* A transaction id must not occur as an end-line inside the body it frames (RFC 4975 §7.1);
  :func:`pick_transaction_id` draws again until it does not.
* :func:`split_message` cuts a message into SEND chunks: chunks above 2048 octets are
  interruptible (``Byte-Range: a-*/total``), every chunk but the last ends with ``+``
  (RFC 4975 §5.1, §7.1.1).
* :class:`Reassembly` is RFC 4975 §7.3.1's "virtual buffer": chunks in any order, overlaps
  resolved with *last received wins*, actual body length trusted over ``range-end``, the
  ``$`` chunk fixes the total length, and the whole message is bounded.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .errors import MsrpError, MsrpLimitExceeded, MsrpParseError
from .frame import ByteRange, Continuation

__all__ = [
    "INTERRUPTIBLE_THRESHOLD",
    "Chunk",
    "RandomSource",
    "Reassembly",
    "new_ident",
    "pick_transaction_id",
    "split_message",
]

#: ``random(n)`` returns ``n`` random bytes (``os.urandom`` in production, injected).
RandomSource = Callable[[int], bytes]

#: RFC 4975 §7.1.1: any chunk with a body larger than 2048 octets MUST be interruptible.
INTERRUPTIBLE_THRESHOLD = 2048

_MAX_ID_DRAWS = 8


def new_ident(random: RandomSource, nbytes: int = 12) -> str:
    """A fresh ``ident`` with ``8 * nbytes`` bits of randomness: lower-case hex.

    Two ids are drawn per relayed message (Message-ID, transaction id).  Hex is done in
    C; ``base64.b32encode`` is a Python loop on 3.11 and cost ~3 us per id.  Hex digits
    are ALPHANUM, so any 2..16 bytes give a valid ``ident`` (4..32 chars, RFC 4975 §9)."""
    raw = random(nbytes)
    if len(raw) != nbytes:
        raise MsrpError("random source returned the wrong number of bytes", status=500)
    return raw.hex()


def pick_transaction_id(body: bytes | None, random: RandomSource, nbytes: int = 12) -> str:
    """A transaction id whose end-line text does not occur in ``body`` (RFC 4975 §7.1)."""
    for _ in range(_MAX_ID_DRAWS):
        candidate = new_ident(random, nbytes)
        if body is None or b"-------" + candidate.encode("ascii") not in body:
            return candidate
    raise MsrpError("random source keeps producing ids found in the body", status=500)


@attrs.frozen
class Chunk:
    """One SEND chunk of a message: its Byte-Range, body slice and end-line flag."""

    byte_range: ByteRange
    body: bytes
    continuation: Continuation


def split_message(body: bytes, chunk_size: int) -> list[Chunk]:
    """Cut ``body`` into chunks of at most ``chunk_size`` octets, in Byte-Range order.

    An empty message is one chunk ``1-0/0`` (RFC 4975 §7.1.1).  ``range-end`` is ``*`` for
    chunks above 2048 octets, so they may legally be interrupted (RFC 4975 §7.1.1).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    total = len(body)
    if total == 0:
        return [Chunk(ByteRange(1, 0, 0), b"", Continuation.COMPLETE)]
    if total <= chunk_size:
        # One chunk: the body itself, not a copy (a relayed message goes to every
        # recipient; its bytes are shared, never duplicated per copy).
        range_end = None if total > INTERRUPTIBLE_THRESHOLD else total
        return [Chunk(ByteRange(1, range_end, total), body, Continuation.COMPLETE)]
    view = memoryview(body)
    chunks = []
    for offset in range(0, total, chunk_size):
        piece = bytes(view[offset : offset + chunk_size])
        end = offset + len(piece)
        range_end = None if len(piece) > INTERRUPTIBLE_THRESHOLD else end
        flag = Continuation.COMPLETE if end == total else Continuation.MORE
        chunks.append(Chunk(ByteRange(offset + 1, range_end, total), piece, flag))
    return chunks


#: Separate received pieces one message may have (see :class:`Reassembly`).
MAX_FRAGMENTS = 256


class Reassembly:
    """The receive buffer of one message (RFC 4975 §7.3.1), bounded by ``limit`` octets
    and by ``max_fragments`` separate received pieces: every chunk is merged into the
    sorted piece list, so a sender scattering tiny chunks with gaps would otherwise make
    reassembly quadratic in its chunk count (413 beyond, like any other size limit)."""

    def __init__(self, message_id: str, limit: int, max_fragments: int = MAX_FRAGMENTS) -> None:
        self.message_id = message_id
        self.limit = limit
        self.max_fragments = max_fragments
        self.total: int | None = None
        self.content_type: str | None = None
        self._data = bytearray()
        self._ranges: list[tuple[int, int]] = []  # received, 0-based half-open, merged
        self._final_seen = False

    @property
    def received(self) -> int:
        """Octets received so far (overlaps counted once)."""
        return sum(end - start for start, end in self._ranges)

    @property
    def complete(self) -> bool:
        """All octets up to the length fixed by the ``$`` chunk have arrived."""
        if not self._final_seen or self.total is None:
            return False
        return self.total == 0 or self._ranges == [(0, self.total)]

    def add(
        self,
        byte_range: ByteRange | None,
        body: bytes,
        continuation: Continuation,
        content_type: str | None = None,
    ) -> bool:
        """Place one chunk; return True when the message is complete.

        Raises :class:`MsrpLimitExceeded` (413) beyond the limit and :class:`MsrpParseError`
        (400) when the chunk contradicts the length already known.  ``#`` chunks are the
        caller's business (the message is dropped).
        """
        start = 0 if byte_range is None else byte_range.start - 1
        end = start + len(body)  # the actual length wins over range-end (§7.3.1)
        declared = None if byte_range is None else byte_range.total
        if end > self.limit or (declared is not None and declared > self.limit):
            raise MsrpLimitExceeded("message larger than the configured limit")
        total = self.total
        if continuation is Continuation.COMPLETE:
            # The chunk with "$" defines the total length of the message (§7.3.1); its
            # own Byte-Range total is not trusted (RFC 4975 §4's example is off by two).
            if self._final_seen and total != end:
                raise MsrpParseError("two final chunks disagree on the message length")
            total = end
        elif total is None:
            total = declared
        if total is not None:
            if end > total:
                raise MsrpParseError("chunk beyond the message length")
            if self._ranges and self._ranges[-1][1] > total:
                raise MsrpParseError("earlier chunk beyond the message length")
        self.total = total
        if continuation is Continuation.COMPLETE:
            self._final_seen = True
        if content_type is not None and (self.content_type is None or start == 0):
            self.content_type = content_type
        if end > start:
            if len(self._data) < end:
                self._data.extend(bytes(end - len(self._data)))
            self._data[start:end] = body  # last received wins (§7.3.1)
            self._merge(start, end)
        return self.complete

    def _merge(self, start: int, end: int) -> None:
        ranges = self._ranges
        if not ranges or start > ranges[-1][1]:
            # In order after a gap (or the first chunk): a new piece at the end.
            if len(ranges) >= self.max_fragments:
                raise MsrpLimitExceeded("message scattered into too many pieces")
            ranges.append((start, end))
            return
        if start >= ranges[-1][0]:
            # The usual case, in order: extend the last piece.
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
            return
        merged: list[tuple[int, int]] = []
        placed = False
        for lo, hi in self._ranges:
            if hi < start:
                merged.append((lo, hi))
            elif lo > end:
                if not placed:
                    merged.append((start, end))
                    placed = True
                merged.append((lo, hi))
            else:
                start, end = min(lo, start), max(hi, end)
        if not placed:
            merged.append((start, end))
        if len(merged) > self.max_fragments:
            raise MsrpLimitExceeded("message scattered into too many pieces")
        self._ranges = merged

    def body(self) -> bytes:
        """The reassembled message (only meaningful once :attr:`complete`)."""
        return bytes(memoryview(self._data)[: self.total or 0])
