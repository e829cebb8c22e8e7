"""Incremental, bounded, restartable MSRP frame parser (RFC 4975 §7, §9).

Feed it bytes as they arrive; it returns every frame completed so far.  The result does not
depend on how the input was split: an end-line may be cut at any byte, and the parser
remembers where its last search stopped so no byte is scanned twice for the same pattern
(the body search is ``bytearray.find`` on the receive buffer, RFC 4975 §7.3.1 notes this is
as fast as length-based framing).

Framing.  A request or response starts with ``MSRP <transact-id> ...`` CRLF; header lines
follow; the frame ends with the end-line ``-------<transact-id><flag>`` CRLF, either right
after the last header (no body) or after a blank line, the body and a CRLF (RFC 4975 §7.1).
Only *this* transaction's id ends a body, so a body may contain the end-line of another
transaction.

Errors.  Two kinds:

* the framing itself is lost (start line too long or not ``MSRP <id> ...``): without a
  transaction id there is nothing to resynchronise on, so :meth:`FrameParser.feed` raises an
  :class:`MsrpError` with ``close_connection=True`` and every later call raises it again;
* the transaction id is known but the frame is bad (malformed header, too many headers, a
  chunk above the limit): the parser skips to this transaction's end-line, keeping only a
  tail of the buffer (bounded memory), and yields a :class:`BadFrame` carrying the error and
  whatever it learnt (paths, Failure-Report) so the connection can answer 400/413.

Leniency (RFC 4975's own examples are laxer than its ABNF; Postel): header order is free
(To-Path/From-Path need not be first, but must both be present once), a response may carry
only To-Path and From-Path (the ABNF demands ``1*header`` more), header names are
case-insensitive, the SP after the colon may be missing or repeated, Content-Type need
not be the last header, a body-less SEND may lack a Message-ID, and empty lines between
frames are skipped (keep-alives).  Serialising (``frame.py``) is strict.
"""

from __future__ import annotations

import enum
import functools
import re

import attrs

from ._grammar import HEADER_NAME_RE, START_LINE_RE
from .config import MsrpConfig
from .errors import MsrpError, MsrpLimitExceeded, MsrpParseError
from .frame import (
    NON_SEND_BODY_LIMIT,
    Continuation,
    FailureReport,
    Frame,
    Header,
    build_frame,
    is_ident,
)
from .uri import MsrpUri, parse_path

__all__ = ["BadFrame", "FrameParser"]

# Control characters other than HTAB (RFC 4975 §9 utf8text excludes them).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# The same without CR and LF, for a header block whose line breaks are already checked.
_CONTROL_BUT_CRLF = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FLAGS = {
    ord("$"): Continuation.COMPLETE,
    ord("+"): Continuation.MORE,
    ord("#"): Continuation.ABORT,
}


@functools.lru_cache(maxsize=256)
def _valid_name(name: str) -> bool:
    """A header name is a token (RFC 4975 §9); the same few names repeat, so cached."""
    return HEADER_NAME_RE.fullmatch(name.encode("ascii")) is not None


class _State(enum.Enum):
    START = enum.auto()
    HEADERS = enum.auto()
    BODY = enum.auto()
    DISCARD = enum.auto()
    BROKEN = enum.auto()


@attrs.frozen
class BadFrame:
    """A frame whose transaction id is known but whose content was rejected.

    ``method`` is ``None`` for a response.  ``to_path``/``from_path``/``failure_report`` are
    what could be recovered, so the receiver can answer the request with ``error.status``
    when RFC 4975 §7.2 asks for a response; ``message_id`` lets it refuse the later chunks
    of a message whose chunk was too large (413, §10.5).
    """

    transaction_id: str
    method: str | None
    error: MsrpError
    to_path: tuple[MsrpUri, ...] = ()
    from_path: tuple[MsrpUri, ...] = ()
    failure_report: FailureReport | None = None
    message_id: str | None = None


def _salvage(
    transaction_id: str, method: str | None, headers: list[Header], error: MsrpError
) -> BadFrame:
    """Recover what is safe to recover from a rejected frame's headers (never raises)."""
    to_path: tuple[MsrpUri, ...] = ()
    from_path: tuple[MsrpUri, ...] = ()
    failure: FailureReport | None = None
    message_id: str | None = None
    for name, value in headers:
        key = name.lower()
        try:
            if key == "message-id" and message_id is None and is_ident(value):
                message_id = value
            elif key == "to-path" and not to_path:
                to_path = parse_path(value)
            elif key == "from-path" and not from_path:
                from_path = parse_path(value)
            elif key == "failure-report" and failure is None:
                failure = FailureReport(value)
        except (MsrpError, ValueError):
            continue
    return BadFrame(transaction_id, method, error, to_path, from_path, failure, message_id)


class FrameParser:
    """Turns a byte stream into :class:`Request`/:class:`Response`/:class:`BadFrame` values."""

    def __init__(self, config: MsrpConfig | None = None) -> None:
        self._config = config if config is not None else MsrpConfig()
        self._buf = bytearray()
        self._state = _State.START
        self._error: MsrpError | None = None
        self._reset_frame()

    def _reset_frame(self) -> None:
        self._state = _State.START
        self._scan = 0  # where the next search in the buffer starts
        self._line_start = 0
        self._tid = ""
        self._method: str | None = None
        self._code: int | None = None
        self._comment: str | None = None
        self._headers: list[Header] = []
        self._header_bytes = 0
        self._body_start = 0
        self._body_limit = 0
        self._end_pattern = b""
        self._pending: MsrpError | None = None

    @property
    def buffered(self) -> int:
        """Octets held in the receive buffer (bounded by the configured limits)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        """Add received bytes; return every frame completed by them, in order.

        Raises :class:`MsrpError` (``close_connection=True``) when the stream cannot be
        framed any more; the parser then stays broken.  If frames were completed in the
        same call before the breakage, they are returned and the error is only recorded in
        :attr:`error` (check it after each call; the next call raises it).
        """
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Frame | BadFrame] = []
        try:
            while self._step(out):
                pass
        except MsrpError as exc:
            exc.close_connection = True
            self._error = exc
            self._state = _State.BROKEN
            self._buf.clear()
            if not out:
                raise
            # Frames completed before the breakage are still delivered; the error is
            # visible in :attr:`error` now and raised by the next call.
        return out

    @property
    def error(self) -> MsrpError | None:
        """The error that broke the stream, if any (every later ``feed`` raises it)."""
        return self._error

    # -- the state machine ------------------------------------------------------------

    def _step(self, out: list[Frame | BadFrame]) -> bool:
        state = self._state
        if state is _State.START:
            return self._parse_start()
        if state is _State.HEADERS:
            if not self._headers and self._parse_block(out):
                return True
            return self._parse_header(out)
        if state is _State.BODY:
            return self._parse_body(out)
        return self._discard(out)

    def _parse_start(self) -> bool:
        buf = self._buf
        # Lenient: CRLFs between frames are skipped (keep-alive style padding).
        skip = 0
        while buf.startswith(b"\r\n", skip):
            skip += 2
        if skip:
            del buf[:skip]
            self._scan = 0
        idx = buf.find(b"\r\n", self._scan)
        limit = self._config.max_start_line
        if idx < 0:
            if len(buf) > limit:
                raise MsrpParseError("start line too long")
            if buf != b"\r" and not b"MSRP ".startswith(bytes(buf[:5])):
                raise MsrpParseError("malformed start line")  # fail early on garbage
            self._scan = max(0, len(buf) - 1)
            return False
        if idx > limit:
            raise MsrpParseError("start line too long")
        match = START_LINE_RE.fullmatch(buf, 0, idx)
        if match is None:
            raise MsrpParseError("malformed start line")
        self._tid = match[1].decode("ascii")
        if match[2] is not None:
            self._method = match[2].decode("ascii")
            self._body_limit = (
                self._config.max_chunk_size if self._method == "SEND" else NON_SEND_BODY_LIMIT
            )
        else:
            self._code = int(match[3])
            self._body_limit = NON_SEND_BODY_LIMIT
            if match[4] is not None:
                try:
                    self._comment = match[4].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise MsrpParseError("start line comment is not UTF-8") from exc
        self._end_pattern = b"\r\n-------" + match[1]
        self._line_start = self._scan = idx + 2
        self._state = _State.HEADERS
        return True

    def _start_discard(self, error: MsrpError, scan_from: int) -> bool:
        """Skip to this transaction's end-line, then report ``error`` as a BadFrame."""
        self._pending = error
        self._state = _State.DISCARD
        self._scan = scan_from
        return True

    def _parse_block(self, out: list[Frame | BadFrame]) -> bool:
        """Fast path: the whole header section is in the buffer and is plain and valid.

        One search for its end (the blank line before a body, or a line starting with
        seven dashes: the end-line of a body-less frame, RFC 4975 §7.1), one ASCII
        decode and one split instead of a state-machine step per line.  Anything else
        (section incomplete, over a limit, non-ASCII, a bad or odd line, an end-line
        not complete or not ours) returns False *without changing any state*, and the
        line-by-line parser below takes over from the same place, so errors, limits and
        split-anywhere behaviour are exactly the line-by-line ones.
        """
        buf = self._buf
        start = self._line_start
        blank = buf.find(b"\r\n\r\n", start - 2)
        dashes = buf.find(b"\r\n-------", start - 2, blank if blank >= 0 else len(buf))
        end = dashes if dashes >= 0 else blank
        if end < 0:
            return False
        config = self._config
        headers: list[Header] = []
        if end > start:
            block = bytes(buf[start:end])
            if len(block) + 2 > config.max_header_bytes or not block.isascii():
                return False
            lines = block.decode("ascii").split("\r\n")
            breaks = len(lines) - 1
            if block.count(b"\r") != breaks or block.count(b"\n") != breaks:
                return False  # a bare CR or LF: the line-by-line parser decides
            if _CONTROL_BUT_CRLF.search(block) is not None:
                return False  # a control character: the line-by-line parser refuses it
            max_line = config.max_header_line
            for line in lines:
                name, colon, value = line.partition(":")
                if not colon or len(line) > max_line or not _valid_name(name):
                    return False
                headers.append((name, value.strip(" \t")))
            if len(headers) > config.max_headers:
                return False
        if dashes < 0:
            self._headers = headers
            self._header_bytes = end + 2 - start
            self._body_start = self._scan = end + 4
            self._state = _State.BODY
            return True
        # A body-less frame: the end-line must be complete and ours, else line by line.
        tid_end = end + len(self._end_pattern)
        if len(buf) < tid_end + 3 or not buf.startswith(self._end_pattern, end):
            return False
        flag = _FLAGS.get(buf[tid_end])
        if flag is None or buf[tid_end + 1] != 13 or buf[tid_end + 2] != 10:
            return False
        self._headers = headers
        del buf[: tid_end + 3]
        self._finish(out, None, flag)
        return True

    def _parse_header(self, out: list[Frame | BadFrame]) -> bool:
        buf = self._buf
        config = self._config
        start = self._line_start
        idx = buf.find(b"\r\n", self._scan)
        if idx < 0:
            if len(buf) - start > config.max_header_line:
                return self._start_discard(MsrpLimitExceeded("header line too long"), start - 2)
            self._scan = max(start, len(buf) - 1)
            return False
        if idx - start > config.max_header_line:
            return self._start_discard(MsrpLimitExceeded("header line too long"), start - 2)
        line = bytes(buf[start:idx])
        if line.startswith(b"-------"):
            tid = self._end_pattern[9:]
            if line[7:-1] == tid and line[-1] in _FLAGS:
                del buf[: idx + 2]
                self._finish(out, None, _FLAGS[line[-1]])
                return True
            return self._start_discard(MsrpParseError("unexpected end-line"), start - 2)
        if not line:
            self._body_start = self._scan = idx + 2
            self._state = _State.BODY
            return True
        self._header_bytes += len(line) + 2
        if len(self._headers) >= config.max_headers:
            return self._start_discard(MsrpLimitExceeded("too many header fields"), start - 2)
        if self._header_bytes > config.max_header_bytes:
            return self._start_discard(MsrpLimitExceeded("header section too large"), start - 2)
        colon = line.find(b":")
        name_match = HEADER_NAME_RE.fullmatch(line, 0, max(colon, 0))
        if colon <= 0 or name_match is None:
            return self._start_discard(MsrpParseError("malformed header line"), start - 2)
        # RFC 4975 §9: hval = utf8text = *(HTAB / %x20-7E / UTF8-NONASCII); a bare CR or
        # LF (or any other control character) is no part of a header value, and a frame
        # carrying one could not be encoded again.
        if _CONTROL.search(line, colon) is not None:
            return self._start_discard(
                MsrpParseError("control character in a header value"), start - 2
            )
        try:
            value = line[colon + 1 :].strip(b" \t").decode("utf-8")
        except UnicodeDecodeError:
            return self._start_discard(MsrpParseError("header value is not UTF-8"), start - 2)
        self._headers.append((line[:colon].decode("ascii"), value))
        self._line_start = self._scan = idx + 2
        return True

    def _parse_body(self, out: list[Frame | BadFrame]) -> bool:
        buf = self._buf
        pattern = self._end_pattern
        body_start = self._body_start
        while True:
            idx = buf.find(pattern, self._scan)
            if idx < 0:
                if len(buf) - body_start > self._body_limit + len(pattern):
                    return self._start_discard(
                        MsrpLimitExceeded("chunk larger than the configured limit"),
                        max(body_start, len(buf) - len(pattern) + 1),
                    )
                self._scan = max(body_start, len(buf) - len(pattern) + 1)
                return False
            flag_pos = idx + len(pattern)
            if len(buf) < flag_pos + 3:
                self._scan = idx
                return False
            flag = _FLAGS.get(buf[flag_pos])
            if flag is not None and buf[flag_pos + 1] == 13 and buf[flag_pos + 2] == 10:
                break
            # Text that only looks like our end-line (e.g. a longer id): part of the body.
            self._scan = idx + 1
        if idx - body_start > self._body_limit:
            self._pending = MsrpLimitExceeded("chunk larger than the configured limit")
            del buf[: flag_pos + 3]
            self._finish(out, None, flag)
            return True
        body = bytes(buf[body_start:idx])
        del buf[: flag_pos + 3]
        self._finish(out, body, flag)
        return True

    def _discard(self, out: list[Frame | BadFrame]) -> bool:
        buf = self._buf
        pattern = self._end_pattern
        while True:
            idx = buf.find(pattern, self._scan)
            if idx < 0:
                keep = max(self._scan, len(buf) - len(pattern) + 1)
                del buf[:keep]  # bounded: only a possible end-line prefix survives
                self._scan = 0
                return False
            flag_pos = idx + len(pattern)
            if len(buf) < flag_pos + 3:
                del buf[:idx]
                self._scan = 0
                return False
            flag = _FLAGS.get(buf[flag_pos])
            if flag is not None and buf[flag_pos + 1] == 13 and buf[flag_pos + 2] == 10:
                del buf[: flag_pos + 3]
                self._finish(out, None, flag)
                return True
            self._scan = idx + 1

    def _finish(self, out: list[Frame | BadFrame], body: bytes | None, flag: Continuation) -> None:
        error = self._pending
        if error is None:
            try:
                out.append(
                    build_frame(
                        transaction_id=self._tid,
                        method=self._method,
                        code=self._code,
                        comment=self._comment,
                        headers=self._headers,
                        body=body,
                        continuation=flag,
                    )
                )
            except MsrpError as exc:
                error = exc
        if error is not None:
            out.append(_salvage(self._tid, self._method, self._headers, error))
        self._reset_frame()
