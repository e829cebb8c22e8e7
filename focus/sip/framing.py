"""Message framing: Content-Length delimited streams (TCP/TLS) and datagrams (UDP).

RFC 3261 §18.3: on a stream the Content-Length header gives the body size; empty lines
before a start line are ignored (§7.5), which also swallows RFC 5626 CRLF keep-alives.
Everything is bounded by :class:`~focus.sip.message.Limits`: a header block that grows
past ``max_header_bytes`` without its blank line ends the stream with 513 instead of
being buffered, as does a Content-Length above ``max_body_bytes``.
"""

from __future__ import annotations

import attrs

from .errors import MessageTooLarge, SipError, SipParseError
from .message import (
    DEFAULT_LIMITS,
    Headers,
    Limits,
    Message,
    answerable_head,
    build_message,
    content_length,
    parse_head,
    parse_message,
)

__all__ = ["StreamError", "StreamParser", "parse_datagram"]


@attrs.frozen
class StreamError:
    """The stream can no longer be framed.  ``head`` is the message (or, when its start
    line was bad, the header block) read when the failure was detected, so that a 513 or
    400 can still be sent; else ``None``.  After this event the parser ignores further
    input; the connection must be closed (§18.3)."""

    error: SipError = attrs.field(
        eq=attrs.cmp_using(eq=lambda a, b: type(a) is type(b) and a.detail == b.detail)
    )
    head: Message | Headers | None = None


class StreamParser:
    """Incremental framer.  ``feed(bytes)`` returns the complete messages found so far,
    possibly followed by one :class:`StreamError`.  Splitting the input anywhere gives the
    same result as feeding it at once."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for the end of the header block
        self._head: tuple[Message, int] | None = None  # parsed head awaiting its body
        self._dead = False

    @property
    def failed(self) -> bool:
        """True once a :class:`StreamError` has been returned."""
        return self._dead

    @property
    def buffered(self) -> int:
        """Octets held while waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | StreamError]:
        """Add received octets; return what became complete."""
        if self._dead:
            return []
        self._buf += data
        out: list[Message | StreamError] = []
        while True:
            try:
                item = self._next()
            except SipError as exc:
                self._dead = True
                head = self._head[0] if self._head else exc.head
                self._buf.clear()
                out.append(StreamError(exc, head))
                return out
            if item is None:
                return out
            out.append(item)

    def _next(self) -> Message | None:
        if self._head is None:
            # §7.5: skip CRLFs between messages (keep-alives).
            strip = 0
            while strip < len(self._buf) and self._buf[strip] in (0x0D, 0x0A):
                strip += 1
            if strip:
                del self._buf[:strip]
                self._scan = 0
            if not self._buf:
                return None
            end = self._buf.find(b"\r\n\r\n", max(0, self._scan - 3))
            if end < 0:
                if len(self._buf) > self._limits.max_header_bytes:
                    raise MessageTooLarge("header block exceeds the limit")
                self._scan = len(self._buf)
                return None
            if end > self._limits.max_header_bytes:
                raise MessageTooLarge("header block exceeds the limit")
            start, headers = parse_head(bytes(self._buf[:end]), self._limits)
            del self._buf[: end + 4]
            self._scan = 0
            head = build_message(start, headers, b"")
            self._head = (head, 0)
            # §18.3: on a stream Content-Length is mandatory; we read a missing one as 0.
            length = content_length(headers, answerable_head(start, headers)) or 0
            if length > self._limits.max_body_bytes:
                raise MessageTooLarge("body exceeds the limit")
            self._head = (head, length)
        head, length = self._head
        if len(self._buf) < length:
            return None
        body = bytes(self._buf[:length])
        del self._buf[:length]
        self._head = None
        return attrs.evolve(head, body=body)


def parse_datagram(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Parse one UDP datagram into a message, raising :class:`SipParseError`."""
    if len(data) > limits.max_header_bytes + limits.max_body_bytes:
        raise MessageTooLarge("datagram too large")
    if not data.strip(b"\r\n"):
        raise SipParseError("empty datagram")
    return parse_message(data, limits)
