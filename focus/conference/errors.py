"""The one error family of :mod:`focus.conference`; each error knows its wire answer.

Admission refusals answer the INVITE (SIP status, RFC 3261 §21 / RFC 4579 §5.2); relay
and nickname refusals answer the participant's MSRP request (RFC 4975 §7.2, RFC 7701
§6-§7 status codes).  Reasons name rules and roles, never message content or keys.
"""

from __future__ import annotations

__all__ = ["AdmissionRefused", "ConferenceError", "RelayRefused", "UnknownLeg"]


class ConferenceError(Exception):
    """Root of the conference errors."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AdmissionRefused(ConferenceError):
    """A caller may not join: 404 no such room, 403 not allowed, 480 closed, 486 full."""

    def __init__(self, sip_status: int, reason: str) -> None:
        super().__init__(reason)
        self.sip_status = sip_status


class RelayRefused(ConferenceError):
    """A SEND or NICKNAME is refused; ``msrp_status`` is the MSRP response code."""

    def __init__(self, msrp_status: int, reason: str) -> None:
        super().__init__(reason)
        self.msrp_status = msrp_status


class UnknownLeg(ConferenceError):
    """No participant has this leg id (it left already)."""
