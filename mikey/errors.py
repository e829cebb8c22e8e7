"""The one error family of the MIKEY library; each error knows its MIKEY ERR number.

ERR numbers are RFC 3830 §6.12 Table 6.12 plus RFC 6043 §6.9 Table 6.14. Error texts
never carry key material (keys are only ever handled as ``bytes`` the library does not
format into messages).
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthenticationError",
    "DecodeError",
    "ErrCode",
    "MikeyError",
    "PolicyError",
    "ReplayError",
    "TimestampError",
]


class ErrCode(enum.IntEnum):
    """ERR payload "Error no" values (RFC 3830 §6.12, RFC 6043 §6.9)."""

    AUTH_FAILURE = 0
    INVALID_TS = 1
    INVALID_PRF = 2
    INVALID_MAC = 3
    INVALID_EA = 4
    INVALID_HA = 5
    INVALID_DH = 6
    INVALID_ID = 7
    INVALID_CERT = 8
    INVALID_SP = 9
    INVALID_SPPAR = 10
    INVALID_DT = 11
    UNSPECIFIED = 12
    UNSUPPORTED_MESSAGE_TYPE = 13  # RFC 4738
    INVALID_TICKET = 14
    INVALID_TPPAR = 15


class MikeyError(Exception):
    """Root of every error this package raises; ``err_code`` is the ERR to answer with."""

    default_code = ErrCode.UNSPECIFIED

    def __init__(self, message: str, err_code: ErrCode | None = None) -> None:
        super().__init__(message)
        self.err_code: ErrCode = self.default_code if err_code is None else err_code


class DecodeError(MikeyError):
    """Malformed input: truncated, trailing bytes, unknown payload, bad field value."""


class AuthenticationError(MikeyError):
    """A MAC (V payload, base-ticket V, AES key-wrap integrity) did not verify (ERR 0)."""

    default_code = ErrCode.AUTH_FAILURE


class TimestampError(MikeyError):
    """The T payload is outside the allowed clock skew, or a ticket is not valid now (ERR 1)."""

    default_code = ErrCode.INVALID_TS


class ReplayError(TimestampError):
    """The message was seen before, or cannot be proven fresh by the replay cache (ERR 1)."""


class PolicyError(MikeyError):
    """The message is well formed but violates the profile (ERR 15 by default, or 14/9/7/...)."""

    default_code = ErrCode.INVALID_TPPAR
