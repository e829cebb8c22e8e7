"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) as frozen values.

``parse_uri(text)`` returns a :class:`SipURI`, :class:`TelURI` or :class:`AbsoluteURI`;
``str(uri)`` is its inverse.  :func:`uri_equal` implements the comparison rules of
RFC 3261 §19.1.4, which decide whether two identities are the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import unquote

import attrs

from . import _grammar as g
from .errors import SipParseError

__all__ = [
    "URI",
    "AbsoluteURI",
    "Parameters",
    "SipURI",
    "TelURI",
    "parse_uri",
    "uri_equal",
]

_IPV4_RE = re.compile(g.IPV4)


@attrs.frozen
class Parameters:
    """An ordered list of ``;name[=value]`` parameters; names compare case-insensitively
    (RFC 3261 §7.3.1, §19.1.4)."""

    items: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Parameters:
        """Parse ``;a=b;c`` (URI parameter syntax, no whitespace)."""
        if not text:
            return cls()
        if not text.startswith(";"):
            raise SipParseError(f"parameters must start with ';': {text[:40]!r}")
        out: list[tuple[str, str | None]] = []
        for part in text[1:].split(";"):
            name, eq, value = part.partition("=")
            if not name:
                raise SipParseError("empty parameter name")
            out.append((name, value if eq else None))
        return cls(tuple(out))

    def __str__(self) -> str:
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.items)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self.items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        low = name.lower()
        return any(n.lower() == low for n, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first parameter called ``name`` (``None`` for a flag)."""
        low = name.lower()
        for n, v in self.items:
            if n.lower() == low:
                return v
        return default

    def set(self, name: str, value: str | None = None) -> Parameters:
        """A copy with ``name`` set (replacing it in place, or appended)."""
        low = name.lower()
        if any(n.lower() == low for n, _ in self.items):
            return Parameters(
                tuple((n, value) if n.lower() == low else (n, v) for n, v in self.items)
            )
        return Parameters((*self.items, (name, value)))

    def remove(self, name: str) -> Parameters:
        """A copy without any parameter called ``name``."""
        low = name.lower()
        return Parameters(tuple((n, v) for n, v in self.items if n.lower() != low))

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str | None]]) -> Parameters:
        """Build from pairs."""
        return cls(tuple(pairs))


@attrs.frozen
class SipURI:
    """``sip:`` / ``sips:`` URI (§19.1.1).  Strings are kept escaped as on the wire."""

    host: str
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    port: int | None = None
    params: Parameters = attrs.field(factory=Parameters)
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str) -> SipURI:
        """Parse a SIP or SIPS URI, raising :class:`SipParseError`."""
        m = g.SIP_URI_RE.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed SIP URI {text[:80]!r}")
        port = m["port"]
        if port is not None and int(port) > 65535:
            raise SipParseError(f"port out of range in {text[:80]!r}")
        host = m["host"]
        if _IPV4_RE.fullmatch(host) and any(int(o) > 255 for o in host.split(".")):
            raise SipParseError(f"bad IPv4 address {host!r}")
        headers: list[tuple[str, str]] = []
        if m["headers"]:
            for h in m["headers"].split("&"):
                name, _, value = h.partition("=")
                headers.append((name, value))
        return cls(
            scheme=m["scheme"].lower(),
            user=m["user"],
            password=m["password"],
            host=host,
            port=int(port) if port is not None else None,
            params=Parameters.parse(m["params"]),
            headers=tuple(headers),
        )

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(str(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(out)

    @property
    def secure(self) -> bool:
        """True for ``sips:`` (§19.1.1: TLS on every hop)."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, if any."""
        t = self.params.get("transport")
        return t.lower() if t else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, if any."""
        return self.params.get("maddr")

    @property
    def lr(self) -> bool:
        """True if the URI carries the loose-routing flag ``lr`` (§19.1.1, §16.12)."""
        return "lr" in self.params

    @property
    def host_is_ip(self) -> bool:
        """True when the host is an IPv4 or IPv6 literal (§19.1.4, RFC 3263 §4.2)."""
        return bool(_IPV4_RE.fullmatch(self.host)) or self.host.startswith("[")

    def with_(self, **changes: object) -> SipURI:
        """``attrs.evolve`` under a shorter name."""
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def address_of_record(self) -> SipURI:
        """The URI without parameters, headers or password (PROFILE §1: identity form)."""
        return SipURI(scheme=self.scheme, user=self.user, host=self.host.lower(), port=self.port)


@attrs.frozen
class TelURI:
    """``tel:`` URI (RFC 3966), enough to carry and compare telephone numbers."""

    number: str
    params: Parameters = attrs.field(factory=Parameters)
    scheme: str = "tel"

    @classmethod
    def parse(cls, text: str) -> TelURI:
        """Parse a tel URI, raising :class:`SipParseError`."""
        m = g.TEL_URI_RE.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed tel URI {text[:80]!r}")
        return cls(number=m["number"], params=Parameters.parse(m["params"]))

    def __str__(self) -> str:
        return f"tel:{self.number}{self.params}"


@attrs.frozen
class AbsoluteURI:
    """Any other absolute URI (§25.1 absoluteURI): carried opaquely, never served."""

    scheme: str
    rest: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteURI:
        """Parse ``scheme:rest``, raising :class:`SipParseError`."""
        m = g.ABSOLUTE_URI_RE.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed URI {text[:80]!r}")
        return cls(scheme=m["scheme"].lower(), rest=m["rest"])

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


URI = SipURI | TelURI | AbsoluteURI


def parse_uri(text: str) -> URI:
    """Parse any URI; the scheme picks the grammar (§19.1.1, §25.1)."""
    scheme = text.partition(":")[0].lower()
    if scheme in ("sip", "sips"):
        return SipURI.parse(text)
    if scheme == "tel":
        return TelURI.parse(text)
    return AbsoluteURI.parse(text)


# --- comparison (§19.1.4) ----------------------------------------------------------------
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def _norm(value: str | None) -> str | None:
    return None if value is None else unquote(value, errors="surrogateescape").lower()


def _sip_equal(a: SipURI, b: SipURI) -> bool:
    if a.scheme != b.scheme:
        return False
    # Userinfo is compared case-sensitively after unescaping.
    ua = None if a.user is None else unquote(a.user, errors="surrogateescape")
    ub = None if b.user is None else unquote(b.user, errors="surrogateescape")
    if ua != ub:
        return False
    if (a.password or None) != (b.password or None):
        return False
    if a.host.lower() != b.host.lower() or a.port != b.port:
        return False
    pa = {n.lower(): _norm(v) for n, v in a.params}
    pb = {n.lower(): _norm(v) for n, v in b.params}
    for name in _MUST_MATCH:
        if (name in pa or name in pb) and pa.get(name) != pb.get(name):
            return False
    for name in pa.keys() & pb.keys():
        if pa[name] != pb[name]:
            return False
    ha = sorted((n.lower(), unquote(v)) for n, v in a.headers)
    hb = sorted((n.lower(), unquote(v)) for n, v in b.headers)
    return ha == hb


def _tel_digits(number: str) -> str:
    return re.sub(r"[\-.()]", "", number).lower()


def uri_equal(a: URI, b: URI) -> bool:
    """RFC 3261 §19.1.4 URI equivalence (tel: RFC 3966 §4, ignoring visual separators)."""
    if isinstance(a, SipURI) and isinstance(b, SipURI):
        return _sip_equal(a, b)
    if isinstance(a, TelURI) and isinstance(b, TelURI):
        if _tel_digits(a.number) != _tel_digits(b.number):
            return False
        pa = {n.lower(): _norm(v) for n, v in a.params}
        pb = {n.lower(): _norm(v) for n, v in b.params}
        return pa == pb
    if isinstance(a, AbsoluteURI) and isinstance(b, AbsoluteURI):
        return a.scheme == b.scheme and a.rest == b.rest
    return False
