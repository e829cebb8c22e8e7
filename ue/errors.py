"""The UE's one error family; each error knows the exit code the CLI ends with.

Messages are for operators: they say what failed and why (SIP status and Warning text,
MIKEY reason, KMS HTTP status and ERR code) and never carry key material.
"""

from __future__ import annotations

__all__ = [
    "JoinTimeout",
    "KeyingFailure",
    "KmsFailure",
    "LegFailure",
    "RemoteHangup",
    "SdpFailure",
    "SipFailure",
    "UeError",
]


class UeError(Exception):
    """Root of every failure of a UE session; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class KmsFailure(UeError):
    """The KMS could not be reached or refused the ticket request (PROFILE §3)."""

    exit_code = 3


class SipFailure(UeError):
    """The INVITE got a final error response (or none: 408/503 made up by the core).

    ``status``, ``reason`` and ``warning`` (the Warning header value, RFC 3261 §20.43)
    are kept for programs; the message holds them all.
    """

    exit_code = 4

    def __init__(self, status: int, reason: str, warning: str | None) -> None:
        text = f"INVITE failed: {status} {reason}"
        if warning:
            text += f" (Warning: {warning})"
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.warning = warning


class SdpFailure(UeError):
    """The SDP answer cannot be used (RFC 3264 §6, RFC 4975 §8, RFC 6135)."""

    exit_code = 5


class KeyingFailure(UeError):
    """The TRANSFER_RESP of the answer did not verify or did not fit (PROFILE §5)."""

    exit_code = 5


class LegFailure(UeError):
    """The TLS-PSK MSRP leg could not be set up, or broke while chatting."""

    exit_code = 6


class JoinTimeout(UeError):
    """Joining took longer than allowed."""

    exit_code = 6


class RemoteHangup(UeError):
    """The focus ended the session (BYE) while we were in it."""

    exit_code = 7
