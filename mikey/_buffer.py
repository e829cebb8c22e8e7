"""A tiny binary reader/writer in the style of aioquic's ``Buffer``.

MIKEY payloads are byte aligned and big-endian (RFC 3830 §6). Every read is bounds
checked and raises :class:`mikey.errors.DecodeError` (never ``struct.error`` or
``IndexError``), so the payload parsers above it can stay free of defensive code.
"""

from __future__ import annotations

from mikey.errors import DecodeError

__all__ = ["Buffer", "Writer"]


class Buffer:
    """Read cursor over immutable bytes; ``pull_*`` consume, ``eof``/``tell`` report."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end

    @property
    def data(self) -> bytes:
        return self._data

    def tell(self) -> int:
        return self._pos

    def eof(self) -> bool:
        return self._pos >= self._end

    def remaining(self) -> int:
        return self._end - self._pos

    def pull_bytes(self, length: int) -> bytes:
        if length < 0 or self._pos + length > self._end:
            raise DecodeError(
                f"truncated: need {length} bytes at offset {self._pos}, "
                f"have {self._end - self._pos}"
            )
        out = self._data[self._pos : self._pos + length]
        self._pos += length
        return out

    def pull_uint(self, length: int) -> int:
        return int.from_bytes(self.pull_bytes(length), "big")

    # The fixed-size reads are the decoders' most frequent calls (a KMS exchange reads a
    # few hundred fields): one method call each instead of three.
    def pull_uint8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            self.pull_bytes(1)  # raises the truncation error
        self._pos = pos + 1
        return self._data[pos]

    def pull_uint16(self) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            self.pull_bytes(2)
        self._pos = pos + 2
        data = self._data
        return (data[pos] << 8) | data[pos + 1]

    def pull_uint32(self) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            self.pull_bytes(4)
        self._pos = pos + 4
        return int.from_bytes(self._data[pos : pos + 4], "big")

    def pull_uint64(self) -> int:
        return self.pull_uint(8)

    def sub(self, length: int) -> Buffer:
        """Carve a length-prefixed block; the caller must consume it exactly (``expect_end``)."""
        start = self._pos
        self.pull_bytes(length)
        return Buffer(self._data, start, start + length)

    def expect_end(self, what: str) -> None:
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} unexpected trailing bytes in {what}")


class Writer:
    """Append-only byte builder; ``push_*`` mirror :class:`Buffer`'s ``pull_*``."""

    __slots__ = ("_out",)

    def __init__(self) -> None:
        self._out = bytearray()

    def tell(self) -> int:
        return len(self._out)

    def getvalue(self) -> bytes:
        return bytes(self._out)

    def push_bytes(self, data: bytes) -> None:
        self._out += data

    def push_uint(self, value: int, length: int) -> None:
        if not 0 <= value < 1 << (8 * length):
            raise ValueError(f"{value} does not fit in {length} bytes")
        self._out += value.to_bytes(length, "big")

    def push_uint8(self, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{value} does not fit in 1 bytes")
        self._out.append(value)

    def push_uint16(self, value: int) -> None:
        self.push_uint(value, 2)

    def push_uint32(self, value: int) -> None:
        self.push_uint(value, 4)

    def push_uint64(self, value: int) -> None:
        self.push_uint(value, 8)

    def push_block16(self, data: bytes) -> None:
        """16-bit length prefix then data (ID, KEMAC, SP params, TP/Ticket data...)."""
        self.push_uint16(len(data))
        self.push_bytes(data)

    def push_block8(self, data: bytes) -> None:
        self.push_uint8(len(data))
        self.push_bytes(data)
