"""The one error family of :mod:`focus.msrp`.

Every error knows the MSRP status code to answer with (RFC 4975 §10, RFC 7701 §10.3)
and whether the offending *connection* must be closed because the framing has been lost
(for example a start line that never ends: without a transaction id there is no end-line
to resynchronise on).  Errors never carry message bodies or key material.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "MsrpError",
    "MsrpForbidden",
    "MsrpLimitExceeded",
    "MsrpMethodNotSupported",
    "MsrpNicknameInUse",
    "MsrpNicknameMalformed",
    "MsrpParseError",
    "MsrpPrivateMessagesUnsupported",
    "MsrpRecipientNotFound",
    "MsrpSessionBoundElsewhere",
    "MsrpSessionUnknown",
    "MsrpTimeout",
    "MsrpUnsupportedMediaType",
]


class MsrpError(Exception):
    """Root of every error raised by :mod:`focus.msrp`.

    ``status`` is the MSRP status code to send back (in a response or in the Status header
    of a failure REPORT); ``close_connection`` says the connection cannot be used any more.
    """

    default_status: ClassVar[int] = 400
    default_close: ClassVar[bool] = False

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        close_connection: bool | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status: int = self.default_status if status is None else status
        self.close_connection: bool = (
            self.default_close if close_connection is None else close_connection
        )

    def _key(self) -> tuple[type, str, int, bool]:
        return (type(self), self.reason, self.status, self.close_connection)

    def __eq__(self, other: object) -> bool:
        # Value equality, so events carrying errors (FrameRejected, CloseConnection) compare
        # like the frozen values they are.
        if not isinstance(other, MsrpError):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.reason!r}, status={self.status}, "
            f"close_connection={self.close_connection})"
        )


class MsrpParseError(MsrpError):
    """400: the request is unintelligible (RFC 4975 §10.2)."""

    default_status = 400


class MsrpLimitExceeded(MsrpError):
    """413: a configured bound was exceeded; the sender must stop this message (§10.5)."""

    default_status = 413


class MsrpForbidden(MsrpError):
    """403: the attempted action is not allowed (RFC 4975 §10.3, RFC 7701 §6.3)."""

    default_status = 403


class MsrpRecipientNotFound(MsrpError):
    """404: the CPIM To of a private message names no participant (RFC 7701 §6.2)."""

    default_status = 404


class MsrpTimeout(MsrpError):
    """408: no response within the transaction timeout (RFC 4975 §7.1.1, §10.4)."""

    default_status = 408


class MsrpUnsupportedMediaType(MsrpError):
    """415: the media type is not acceptable (RFC 4975 §7.3.1, §10.6)."""

    default_status = 415


class MsrpNicknameMalformed(MsrpError):
    """424: the Use-Nickname header is malformed (RFC 7701 §7.1)."""

    default_status = 424


class MsrpNicknameInUse(MsrpError):
    """425: the nickname is reserved or used by another user (RFC 7701 §7.1)."""

    default_status = 425


class MsrpPrivateMessagesUnsupported(MsrpError):
    """428: the recipient does not support private messages (RFC 7701 §6.2)."""

    default_status = 428


class MsrpSessionUnknown(MsrpError):
    """481: the To-Path names no session of this connection (RFC 4975 §5.4, §7.3)."""

    default_status = 481


class MsrpMethodNotSupported(MsrpError):
    """501: unknown request method (RFC 4975 §10.9, §12)."""

    default_status = 501


class MsrpSessionBoundElsewhere(MsrpError):
    """506: the session is already bound to another connection (RFC 4975 §5.4)."""

    default_status = 506
