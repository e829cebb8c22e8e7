"""MSRP requests and responses as frozen values (RFC 4975 §7, §9).

``Request``/``Response`` are what :class:`focus.msrp.parser.FrameParser` produces and what
``encode()`` turns back into bytes.  Parsing of a header section is lenient where the RFC's
own examples are laxer than its ABNF; serialising is always strict: start line, To-Path,
From-Path, Message-ID, Byte-Range, Success-Report, Failure-Report, Status, other headers,
Content-Type last, then the body and the end-line (RFC 4975 §7.1).

Header values are kept as ``str`` (UTF-8, RFC 4975 §9); the body is kept as ``bytes``
exactly as received.  ``body is None`` means a body-less request, ``b""`` an empty body
with a Content-Type (RFC 4975 §7.1 distinguishes the two).
"""

from __future__ import annotations

import enum
from typing import Self

import attrs

from ._grammar import BYTE_RANGE_RE, IDENT_RE, STATUS_RE
from .errors import MsrpLimitExceeded, MsrpParseError
from .uri import MsrpUri, format_path, parse_path

__all__ = [
    "NON_SEND_BODY_LIMIT",
    "ByteRange",
    "Continuation",
    "FailureReport",
    "Frame",
    "Header",
    "Request",
    "Response",
    "Status",
    "end_line",
    "is_ident",
    "reason_phrase",
]

Header = tuple[str, str]

#: RFC 4975 §7.1: non-SEND request bodies MUST NOT be larger than 10240 octets.
NON_SEND_BODY_LIMIT = 10240

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Recipient Not Found",
    408: "Request Timeout",
    413: "Stop Sending Message",
    415: "Unsupported Media Type",
    423: "Parameter Out Of Bounds",
    424: "Nickname Malformed",
    425: "Nickname Reserved Or Already In Use",
    428: "Private Messages Unsupported",
    481: "Session Does Not Exist",
    501: "Unknown Method",
    506: "Session Already Bound",
}


def reason_phrase(code: int) -> str:
    """A default comment for a status code (RFC 4975 §10, RFC 7701 §10.3)."""
    return _REASONS.get(code, "Unknown")


def is_ident(text: str) -> bool:
    """True if ``text`` is an RFC 4975 ``ident`` (transaction id or Message-ID)."""
    return IDENT_RE.fullmatch(text) is not None


def end_line(transaction_id: str, flag: Continuation) -> bytes:
    """``-------<transact-id><flag>`` CRLF (RFC 4975 §7.1)."""
    return b"-------" + transaction_id.encode("ascii") + flag.value.encode("ascii") + b"\r\n"


class Continuation(enum.Enum):
    """The end-line continuation flag (RFC 4975 §7.1)."""

    COMPLETE = "$"
    MORE = "+"
    ABORT = "#"


class FailureReport(enum.Enum):
    """Failure-Report values (RFC 4975 §5.3); absent means YES (§7.1.1)."""

    YES = "yes"
    NO = "no"
    PARTIAL = "partial"


@attrs.frozen
class ByteRange:
    """``Byte-Range: start-end/total``, 1-based; ``None`` stands for ``*`` (RFC 4975 §7.1.1)."""

    start: int
    end: int | None
    total: int | None

    @classmethod
    def parse(cls, text: str) -> Self:
        match = BYTE_RANGE_RE.fullmatch(text)
        if match is None:
            raise MsrpParseError("malformed Byte-Range")
        start = int(match[1])
        end = None if match[2] == "*" else int(match[2])
        total = None if match[3] == "*" else int(match[3])
        if start < 1:
            raise MsrpParseError("Byte-Range start must be at least 1")
        if end is not None and end < start - 1:
            raise MsrpParseError("Byte-Range end before start")
        if end is not None and total is not None and end > total:
            raise MsrpParseError("Byte-Range end beyond total")
        if total is not None and start > total + 1:
            raise MsrpParseError("Byte-Range start beyond total")
        return cls(start, end, total)

    def __str__(self) -> str:
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"


@attrs.frozen
class Status:
    """The REPORT ``Status`` header: namespace (``000``), code and comment (RFC 4975 §9)."""

    code: int
    comment: str | None = None
    namespace: int = 0

    @classmethod
    def parse(cls, text: str) -> Self:
        match = STATUS_RE.fullmatch(text)
        if match is None:
            raise MsrpParseError("malformed Status")
        return cls(code=int(match[2]), comment=match[3], namespace=int(match[1]))

    def __str__(self) -> str:
        comment = "" if self.comment is None else " " + self.comment
        return f"{self.namespace:03d} {self.code:03d}{comment}"


def _check_ident(value: str, what: str) -> None:
    if not is_ident(value):
        raise MsrpParseError(f"malformed {what}")


def _check_value(value: str) -> None:
    # Header values are utf8text (RFC 4975 §9): no CR/LF may slip into a header line.
    if "\r" in value or "\n" in value:
        raise MsrpParseError("header value contains CR or LF")


def _header_lines(
    transaction_id: str,
    start: str,
    to_path: tuple[MsrpUri, ...],
    from_path: tuple[MsrpUri, ...],
    headers: list[Header],
) -> list[str]:
    lines = [
        f"MSRP {transaction_id} {start}",
        "To-Path: " + format_path(to_path),
        "From-Path: " + format_path(from_path),
    ]
    for name, value in headers:
        _check_value(value)
        lines.append(f"{name}: {value}")
    return lines


@attrs.frozen
class Request:
    """An MSRP request (SEND, REPORT, NICKNAME or an extension method)."""

    transaction_id: str
    method: str
    to_path: tuple[MsrpUri, ...]
    from_path: tuple[MsrpUri, ...]
    message_id: str | None = None
    byte_range: ByteRange | None = None
    #: ``None`` = header absent (treated as "no", RFC 4975 §7.1.1).
    success_report: bool | None = None
    #: ``None`` = header absent (treated as "yes", RFC 4975 §7.1.1).
    failure_report: FailureReport | None = None
    status: Status | None = None
    content_type: str | None = None
    #: every other header, in the order received (extension and MIME headers).
    headers: tuple[Header, ...] = ()
    body: bytes | None = None
    continuation: Continuation = Continuation.COMPLETE

    @property
    def wants_success_report(self) -> bool:
        return self.success_report is True

    @property
    def failure_mode(self) -> FailureReport:
        return FailureReport.YES if self.failure_report is None else self.failure_report

    def header(self, name: str) -> str | None:
        """The first extension header called ``name`` (case-insensitive), if any."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def validate(self) -> None:
        """Check the method-specific rules of RFC 4975 §7.1 (raises 400/413)."""
        _check_ident(self.transaction_id, "transaction id")
        if not self.to_path or not self.from_path:
            raise MsrpParseError("To-Path and From-Path are required")
        if self.message_id is not None:
            _check_ident(self.message_id, "Message-ID")
        if self.body is not None and self.content_type is None:
            raise MsrpParseError("a request with a body needs a Content-Type")
        if self.body is None and self.content_type is not None:
            raise MsrpParseError("a body-less request must not carry a Content-Type")
        if self.method != "SEND":
            if self.continuation is not Continuation.COMPLETE:
                raise MsrpParseError("only SEND requests can be chunked")
            if self.body is not None and len(self.body) > NON_SEND_BODY_LIMIT:
                raise MsrpLimitExceeded("non-SEND body larger than 10240 octets")
        if self.method == "REPORT":
            if self.status is None or self.message_id is None:
                raise MsrpParseError("REPORT needs Status and Message-ID")
            if self.success_report is not None or self.failure_report is not None:
                raise MsrpParseError("REPORT must not carry Success-/Failure-Report")
        if self.method == "SEND" and self.body is not None and self.message_id is None:
            # Every chunk MUST carry the Message-ID (§7.1.1); a body-less SEND (binding,
            # keep-alive) is accepted without one, as peers differ here.
            raise MsrpParseError("SEND with a body needs a Message-ID")

    def encode(self) -> bytes:
        """Serialise strictly (RFC 4975 §7.1); the caller has picked a safe transaction id."""
        headers: list[Header] = []
        if self.message_id is not None:
            headers.append(("Message-ID", self.message_id))
        if self.byte_range is not None:
            headers.append(("Byte-Range", str(self.byte_range)))
        if self.success_report is not None:
            headers.append(("Success-Report", "yes" if self.success_report else "no"))
        if self.failure_report is not None:
            headers.append(("Failure-Report", self.failure_report.value))
        if self.status is not None:
            headers.append(("Status", str(self.status)))
        headers.extend(self.headers)
        if self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        lines = _header_lines(
            self.transaction_id, self.method, self.to_path, self.from_path, headers
        )
        head = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        tail = end_line(self.transaction_id, self.continuation)
        if self.body is None:
            return head + tail
        return b"".join((head, b"\r\n", self.body, b"\r\n", tail))


@attrs.frozen
class Response:
    """An MSRP response; it has no body and always ends with ``$`` (RFC 4975 §7.2)."""

    transaction_id: str
    code: int
    to_path: tuple[MsrpUri, ...]
    from_path: tuple[MsrpUri, ...]
    comment: str | None = None
    headers: tuple[Header, ...] = ()

    def validate(self) -> None:
        _check_ident(self.transaction_id, "transaction id")
        if not self.to_path or not self.from_path:
            raise MsrpParseError("To-Path and From-Path are required")

    def encode(self) -> bytes:
        start = f"{self.code:03d}" + ("" if self.comment is None else " " + self.comment)
        lines = _header_lines(
            self.transaction_id, start, self.to_path, self.from_path, list(self.headers)
        )
        head = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        return head + end_line(self.transaction_id, Continuation.COMPLETE)


Frame = Request | Response

#: headers that may appear once only (RFC 4975 §9 defines each as a single value).
_SINGLE_HEADERS = frozenset(
    {
        "to-path",
        "from-path",
        "message-id",
        "byte-range",
        "success-report",
        "failure-report",
        "status",
        "content-type",
    }
)


def build_frame(
    *,
    transaction_id: str,
    method: str | None,
    code: int | None,
    comment: str | None,
    headers: list[Header],
    body: bytes | None,
    continuation: Continuation,
) -> Frame:
    """Turn a parsed header list into a validated ``Request`` or ``Response``.

    Used by the parser; raises :class:`MsrpParseError` (400) for bad header values.
    """
    to_path: tuple[MsrpUri, ...] = ()
    from_path: tuple[MsrpUri, ...] = ()
    message_id: str | None = None
    byte_range: ByteRange | None = None
    success: bool | None = None
    failure: FailureReport | None = None
    status: Status | None = None
    content_type: str | None = None
    extra: list[Header] = []
    seen: set[str] = set()
    for name, value in headers:
        key = name.lower()
        if key in _SINGLE_HEADERS:
            if key in seen:
                raise MsrpParseError(f"duplicate {name} header")
            seen.add(key)
        if key == "to-path":
            to_path = parse_path(value)
        elif key == "from-path":
            from_path = parse_path(value)
        elif method is None:
            extra.append((name, value))
        elif key == "message-id":
            message_id = value
        elif key == "byte-range":
            byte_range = ByteRange.parse(value)
        elif key == "success-report":
            if value not in ("yes", "no"):
                raise MsrpParseError("malformed Success-Report")
            success = value == "yes"
        elif key == "failure-report":
            try:
                failure = FailureReport(value)
            except ValueError as exc:
                raise MsrpParseError("malformed Failure-Report") from exc
        elif key == "status":
            status = Status.parse(value)
        elif key == "content-type":
            content_type = value
        else:
            extra.append((name, value))
    frame: Frame
    if method is None:
        assert code is not None
        if body is not None:
            raise MsrpParseError("a response must not carry a body")
        if continuation is not Continuation.COMPLETE:
            raise MsrpParseError("a response always ends with $")
        frame = Response(
            transaction_id=transaction_id,
            code=code,
            comment=comment,
            to_path=to_path,
            from_path=from_path,
            headers=tuple(extra),
        )
    else:
        frame = Request(
            transaction_id=transaction_id,
            method=method,
            to_path=to_path,
            from_path=from_path,
            message_id=message_id,
            byte_range=byte_range,
            success_report=success,
            failure_report=failure,
            status=status,
            content_type=content_type,
            headers=tuple(extra),
            body=body,
            continuation=continuation,
        )
    frame.validate()
    return frame
