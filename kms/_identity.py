"""SIP URI identities and the `may_act_as` patterns of KMS accounts.

PROFILE.md section 1: identities are bare SIP URIs (no display name, no parameters),
compared after normalising per RFC 3261 section 19.1.4: scheme and host are
case-insensitive, the user part is case-sensitive. PROFILE.md section 6: an account
lists the identities its key may act as, either exact URIs or `sip:*@domain` patterns.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["IdentityPattern", "InvalidIdentity", "normalise_uri"]

# scheme ":" user "@" host, with no parameters, headers or port games: the bare form
# PROFILE.md section 1 puts into IDR payloads. The user part may not contain '@', ';',
# '?' or whitespace; the host is a domain name or an IPv4/IPv6 literal.
_URI = re.compile(
    r"(?P<scheme>sips?):(?P<user>[^@;?\s:]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)",
    re.IGNORECASE,
)


class InvalidIdentity(ValueError):
    """A string is not a bare `sip:user@host` URI or `sip:*@host` pattern."""


def normalise_uri(uri: str) -> str:
    """Return *uri* with scheme and host lowered (RFC 3261 section 19.1.4).

    Raises InvalidIdentity when *uri* is not a bare SIP(S) URI with a user part.
    """
    match = _URI.fullmatch(uri)
    if match is None or match["user"] == "*":
        raise InvalidIdentity(f"not a bare sip:user@host URI: {uri!r}")
    return f"{match['scheme'].lower()}:{match['user']}@{match['host'].lower()}"


@attrs.frozen
class IdentityPattern:
    """One `may_act_as` entry: an exact URI, or `sip:*@domain` for any user at a domain."""

    scheme: str
    user: str | None  # None = any user ("*")
    host: str

    @classmethod
    def parse(cls, text: str) -> IdentityPattern:
        """Parse an exact URI or a `sip:*@domain` pattern; inverse of `__str__`."""
        match = _URI.fullmatch(text)
        if match is None:
            raise InvalidIdentity(f"not a sip:user@host URI or sip:*@host pattern: {text!r}")
        user = None if match["user"] == "*" else match["user"]
        if user is not None and "*" in user:
            raise InvalidIdentity(f"only a whole '*' user part is a pattern: {text!r}")
        return cls(scheme=match["scheme"].lower(), user=user, host=match["host"].lower())

    def __str__(self) -> str:
        return f"{self.scheme}:{'*' if self.user is None else self.user}@{self.host}"

    def matches(self, uri: str) -> bool:
        """True when *uri* (any case of scheme/host) is covered by this pattern."""
        match = _URI.fullmatch(uri)
        if match is None or match["user"] == "*":
            return False
        if match["scheme"].lower() != self.scheme or match["host"].lower() != self.host:
            return False
        return self.user is None or match["user"] == self.user
