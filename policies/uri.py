"""Identity URIs and the patterns policies match them with.

Comparison follows RFC 3261 §19.1.4 as PROFILE §1 applies it to identities: the scheme
and the host compare case-insensitively, the user part case-sensitively (after decoding
percent-escapes of unreserved characters, which §19.1.4 treats as equal to the plain
character), the port compares as given, and URI parameters and headers are ignored.
The helper is deliberately small and independent of :mod:`focus.sip`: a policy only
needs the identity ``scheme:user@host[:port]`` of a URI.

Patterns (the values of ``allow``, ``deny``, ``moderators`` ...):

- ``*``                     anyone;
- ``sip:*@example.net``     any user at exactly that host (scheme must match too);
- ``sip:alice@example.net`` exactly that identity.
"""

from __future__ import annotations

import re
from typing import Self

import attrs

from policies.errors import PolicyError

__all__ = ["Identity", "UriPattern", "normalize_uri"]

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# host = hostname / IPv4address / IPv6reference (RFC 3261 §25.1), checked loosely.
_HOST_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
MAX_URI_LENGTH = 1024


def _normalize_user(user: str) -> str:
    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else f"%{m.group(1).upper()}"

    return _ESCAPE_RE.sub(fix, user)


@attrs.frozen
class Identity:
    """The comparable identity of a URI: ``scheme:[user@]host[:port]`` (RFC 3261 §19.1.4).

    ``user`` is None for URIs without a user part; for non-SIP schemes (``tel:``, ``im:``)
    ``host`` holds the whole scheme-specific part and compares exactly.
    """

    scheme: str
    user: str | None
    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse a bare URI (no display name; angle brackets are tolerated)."""
        raw = text.strip()
        if raw.startswith("<") and raw.endswith(">"):
            raw = raw[1:-1]
        if not raw or len(raw) > MAX_URI_LENGTH or ":" not in raw:
            raise PolicyError(f"not a URI: {text[:80]!r}")
        scheme, rest = raw.split(":", 1)
        if not _SCHEME_RE.fullmatch(scheme):
            raise PolicyError(f"not a URI scheme: {scheme[:20]!r}")
        scheme = scheme.lower()
        if scheme not in ("sip", "sips"):
            opaque = re.split(r"[;?]", rest, maxsplit=1)[0]
            if not opaque or any(c.isspace() for c in opaque):
                raise PolicyError(f"not a URI: {text[:80]!r}")
            return cls(scheme, None, opaque)
        # sip/sips (RFC 3261 §19.1.1): [userinfo "@"] hostport *(";" param) ["?" headers]
        user: str | None = None
        if "@" in rest:
            userinfo, rest = rest.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]  # a password is never part of the identity
            if not _USER_RE.fullmatch(user):
                raise PolicyError(f"bad user part in {text[:80]!r}")
            user = _normalize_user(user)
        hostport = re.split(r"[;?]", rest, maxsplit=1)[0]
        m = re.fullmatch(rf"({_HOST_RE.pattern})(?::([0-9]{{1,5}}))?", hostport)
        if m is None:
            raise PolicyError(f"bad host in {text[:80]!r}")
        port = None if m.group(2) is None else int(m.group(2))
        if port is not None and port > 65535:
            raise PolicyError(f"bad port in {text[:80]!r}")
        return cls(scheme, user, m.group(1).lower(), port)

    def __str__(self) -> str:
        if self.user is None and self.scheme not in ("sip", "sips"):
            return f"{self.scheme}:{self.host}"
        user = "" if self.user is None else f"{self.user}@"
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}:{user}{self.host}{port}"


def normalize_uri(text: str) -> str:
    """The canonical identity string of a URI (see :class:`Identity`)."""
    return str(Identity.parse(text))


@attrs.frozen
class UriPattern:
    """An ``allow``/``deny``-style pattern: ``*``, ``sip:*@host`` or an exact URI."""

    text: str
    identity: Identity | None  # None for "*"; user None for "sip:*@host"
    any_user: bool = False

    @classmethod
    def parse(cls, text: str) -> Self:
        if text.strip() == "*":
            return cls("*", None)
        if "*@" in text:
            scheme, _, host = text.partition(":*@")
            if not scheme or not host or "*" in host:
                raise PolicyError(f"bad pattern {text[:80]!r}: use *, sip:*@host or a URI")
            identity = Identity.parse(f"{scheme}:{host}")
            if identity.scheme not in ("sip", "sips"):
                raise PolicyError(f"bad pattern {text[:80]!r}: wildcards need sip: or sips:")
            return cls(text, identity, any_user=True)
        if "*" in text:
            raise PolicyError(f"bad pattern {text[:80]!r}: use *, sip:*@host or a URI")
        return cls(text, Identity.parse(text))

    @property
    def is_domain(self) -> bool:
        return self.any_user

    def matches(self, uri: Identity | str) -> bool:
        """Whether ``uri`` (an :class:`Identity` or URI text) is matched by this pattern.
        Unparseable URI text matches only ``*``."""
        if self.identity is None:
            return True
        if isinstance(uri, str):
            try:
                uri = Identity.parse(uri)
            except PolicyError:
                return False
        if self.any_user:
            return (
                uri.scheme == self.identity.scheme
                and uri.user is not None
                and uri.host == self.identity.host
                and uri.port == self.identity.port
            )
        return uri == self.identity

    def __str__(self) -> str:
        return self.text
