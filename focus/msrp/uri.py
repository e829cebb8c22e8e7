"""MSRP URIs (RFC 4975 §6, §9) and path lists (To-Path, From-Path, SDP ``a=path``).

``MsrpUri.parse`` and ``str()`` are inverses.  Equality and hashing follow the comparison
rules of RFC 4975 §6.1, *not* string identity, so a ``dict`` keyed by ``MsrpUri`` finds a
session whatever case the peer used for the scheme or host:

1. scheme compared case-insensitively;
2. host compared after decoding percent-encoded unreserved characters, case-insensitively;
   IP literals compared as addresses (``[::1]`` equals ``[0:0::1]``); userinfo ignored;
3. a URI with a port never equals one without;
4. session-id compared case-sensitively, absent never equals present;
5. transport compared case-insensitively; other URI parameters are ignored.

Profile note (DIGEST §8.1): with TLS-PSK there is no certificate, so RFC 4975 §5.4's
SubjectAltName check for ``msrps`` URIs cannot apply; the PSK authenticates the peer.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Self

import attrs

from ._grammar import MSRP_URI_RE
from .errors import MsrpParseError

__all__ = ["MsrpUri", "format_path", "parse_path"]

_IPV4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _decode_unreserved(text: str) -> str:
    """Decode %XX only where XX is an unreserved character (RFC 3986 §6.2.2.2)."""

    def sub(match: re.Match[str]) -> str:
        value = int(match.group(1), 16)
        return chr(value) if value in _UNRESERVED else match.group(0).upper()

    return _PCT_RE.sub(sub, text)


def _host_key(host: str) -> str:
    """The comparison form of a host: an IP address normalised, a name lower-cased."""
    if host.startswith("["):
        try:
            return "[" + str(ipaddress.IPv6Address(host[1:-1])) + "]"
        except ValueError:
            return host.lower()
    if _IPV4_RE.fullmatch(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            pass
    if "%" in host:
        return _decode_unreserved(host).lower()
    return host.lower()


def _is_ip(host: str) -> bool:
    return host.startswith("[") or _IPV4_RE.fullmatch(host) is not None


@attrs.frozen(eq=False)
class MsrpUri:
    """An ``msrp:`` or ``msrps:`` URI; ``==`` and ``hash`` follow RFC 4975 §6.1."""

    scheme: str
    host: str
    port: int | None
    session_id: str | None
    transport: str = "tcp"
    userinfo: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse one MSRP URI; raise :class:`MsrpParseError` (400) if it is malformed."""
        match = MSRP_URI_RE.fullmatch(text)
        if match is None:
            raise MsrpParseError("malformed MSRP URI")
        host = match["host"]
        port_text = match["port"]
        port = int(port_text) if port_text is not None else None
        if port is not None and port > 65535:
            raise MsrpParseError("MSRP URI port out of range")
        if port is None and _is_ip(host):
            # RFC 4975 §6: a numeric IP authority MUST also contain a port.
            raise MsrpParseError("MSRP URI with an IP address must carry a port")
        if host.startswith("["):
            try:
                ipaddress.IPv6Address(host[1:-1])
            except ValueError as exc:
                raise MsrpParseError("MSRP URI with a bad IPv6 literal") from exc
        params: list[tuple[str, str | None]] = []
        for item in match["params"].split(";")[1:]:
            name, sep, value = item.partition("=")
            params.append((name, value if sep else None))
        return cls(
            scheme=match["scheme"],
            host=host,
            port=port,
            session_id=match["session"],
            transport=match["transport"],
            userinfo=match["userinfo"],
            params=tuple(params),
        )

    def __str__(self) -> str:
        return self._text

    @property
    def secure(self) -> bool:
        """``msrps`` requires TLS on the connection (RFC 4975 §6)."""
        return self.scheme.lower() == "msrps"

    # Computed once: URIs are dict keys on the per-request hot path (session lookup).
    _key: tuple[str, str, int | None, str | None, str] = attrs.field(
        init=False, repr=False, alias="_key"
    )

    @_key.default
    def _compute_key(self) -> tuple[str, str, int | None, str | None, str]:
        return (
            self.scheme.lower(),
            _host_key(self.host),
            self.port,
            self.session_id,
            self.transport.lower(),
        )

    # Also computed once: every frame sent serialises its To-Path and From-Path.
    _text: str = attrs.field(init=False, repr=False, alias="_text")

    # And the hash of the key: a relayed copy looks its session URI up in several dicts.
    _hash: int = attrs.field(init=False, repr=False, alias="_hash")

    @_hash.default
    def _compute_hash(self) -> int:
        return hash(self._key)

    @_text.default
    def _compute_text(self) -> str:
        userinfo = "" if self.userinfo is None else self.userinfo + "@"
        port = "" if self.port is None else f":{self.port}"
        session = "" if self.session_id is None else "/" + self.session_id
        params = "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.params)
        return f"{self.scheme}://{userinfo}{self.host}{port}{session};{self.transport}{params}"

    @property
    def comparison_key(self) -> tuple[str, str, int | None, str | None, str]:
        """The parts RFC 4975 §6.1 compares, normalised."""
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MsrpUri):
            return NotImplemented
        return self is other or self._key == other._key

    def __hash__(self) -> int:
        return self._hash


#: Distinct path texts remembered by :func:`parse_path` (bounded; least recently used out).
PATH_CACHE_SIZE = 1024


def parse_path(text: str) -> tuple[MsrpUri, ...]:
    """Parse a To-Path/From-Path value or an SDP ``a=path`` value: URIs separated by SP.

    Leftmost is the first hop, rightmost the final destination (RFC 4975 §7.1).  Runs of
    whitespace are tolerated (lenient parsing, strict serialising).

    Every request and response of a session repeats the same two paths (RFC 4975 §7.1),
    and parsing a URI (regex, IP normalisation for the §6.1 comparison key) was most of
    the cost of framing a 100-byte chat message; the values are immutable, so parses
    are shared through a bounded LRU cache.  Malformed text is not cached (it raises).
    """
    return _parse_path(text)


@functools.lru_cache(maxsize=PATH_CACHE_SIZE)
def _parse_path(text: str) -> tuple[MsrpUri, ...]:
    parts = text.split()
    if not parts:
        raise MsrpParseError("empty MSRP path")
    return tuple(MsrpUri.parse(part) for part in parts)


def format_path(path: Iterable[MsrpUri]) -> str:
    """Serialise a path list, one SP between URIs."""
    return " ".join(str(uri) for uri in path)
