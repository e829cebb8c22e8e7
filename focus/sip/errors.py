"""The one error family of :mod:`focus.sip`.

Every error knows the SIP response a server would answer with (RFC 3261 §21), in the
h11 manner: ``status`` and ``reason`` are class attributes, ``detail`` says what was wrong
and goes into a Warning header (RFC 3261 §20.43, code 399) when we answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Headers, Request, Response

__all__ = [
    "BadRequest",
    "MessageTooLarge",
    "ProtocolError",
    "ServiceUnavailable",
    "SipError",
    "SipParseError",
    "UnsupportedScheme",
    "VersionNotSupported",
]


class SipError(Exception):
    """Root of every error raised by :mod:`focus.sip`."""

    status: int = 500
    reason: str = "Server Internal Error"

    def __init__(
        self, detail: str = "", *, head: Request | Response | Headers | None = None
    ) -> None:
        super().__init__(detail or self.reason)
        self.detail = detail or self.reason
        #: The message whose start line and headers parsed before the error (body
        #: problems), so that a server can still answer it; else None.
        self.head = head


class SipParseError(SipError):
    """Bytes that are not a well-formed SIP message or header value (RFC 3261 §25).

    The remote peer is at fault; a server answers 400 (§21.4.1) when it can.
    """

    status = 400
    reason = "Bad Request"


class BadRequest(SipParseError):
    """Syntactically fine, but the request breaks a MUST of §8.1.1 (missing or repeated
    mandatory header, CSeq method mismatch, out-of-range scalar).  RFC 4475 §3.1.2.4,
    §3.1.2.17, §3.3.1, §3.3.8 expect 400."""


class MessageTooLarge(SipParseError):
    """A start-line, header block or body above our limits (RFC 3261 §21.5.11: 513)."""

    status = 513
    reason = "Message Too Large"


class VersionNotSupported(SipParseError):
    """A SIP-Version other than SIP/2.0 (RFC 3261 §21.5.7; RFC 4475 §3.1.2.16)."""

    status = 505
    reason = "Version Not Supported"


class UnsupportedScheme(SipError):
    """A Request-URI scheme we do not serve (RFC 3261 §8.2.2.1: 416)."""

    status = 416
    reason = "Unsupported URI Scheme"


class ServiceUnavailable(SipError):
    """We are overloaded (a table is full): RFC 3261 §21.5.4, 503."""

    status = 503
    reason = "Service Unavailable"


class ProtocolError(SipError):
    """Local misuse of the API, e.g. answering a transaction that is already terminated."""
