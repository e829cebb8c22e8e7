"""The one error family of :mod:`focus.sdp`.

Every error knows its SIP answer (RFC 3261 §21): a session description that cannot be
parsed is a malformed request body (400), an offer or answer that parses but cannot be
accepted is 488 Not Acceptable Here.  Each error also carries the text for a SIP
``Warning`` header (RFC 3261 §20.43: ``Warning: <code> <host> "<text>"``).  The text names
the offending line number or field and never echoes key material: ``a=key-mgmt`` data is
never quoted back (PROFILE §8).
"""

from __future__ import annotations

__all__ = ["SdpError", "SdpNegotiationError", "SdpSyntaxError"]

# RFC 3261 §20.43 warn-codes used here.
WARN_INCOMPATIBLE_PROTOCOL = 302
WARN_MEDIA_TYPE_NOT_AVAILABLE = 304
WARN_INCOMPATIBLE_MEDIA_FORMAT = 305
WARN_ATTRIBUTE_NOT_UNDERSTOOD = 306
WARN_PARAMETER_NOT_UNDERSTOOD = 307
WARN_MISCELLANEOUS = 399


def _quotable(text: str) -> str:
    """Make ``text`` safe inside a SIP quoted-string (RFC 3261 §25.1): printable ASCII only,
    no DQUOTE or backslash, bounded length."""
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)
    return cleaned[:200]


class SdpError(Exception):
    """Root of the :mod:`focus.sdp` errors; ``sip_status`` is the SIP response to send."""

    sip_status: int = 488
    warn_code: int = WARN_MISCELLANEOUS

    def __init__(self, reason: str, *, warn_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if warn_code is not None:
            self.warn_code = warn_code

    @property
    def warning_text(self) -> str:
        """The quoted-string body of a SIP Warning header for this error."""
        return _quotable(f"SDP: {self.reason}")


class SdpSyntaxError(SdpError):
    """The bytes are not a session description (RFC 8866 §9 grammar, order or limits)."""

    sip_status = 400


class SdpNegotiationError(SdpError):
    """A well-formed offer or answer that cannot be accepted (RFC 3264, RFC 4975 §8,
    RFC 4567, RFC 6135); answered with 488 Not Acceptable Here."""

    sip_status = 488
