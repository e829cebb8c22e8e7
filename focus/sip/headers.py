"""Typed SIP header values (RFC 3261 §20, §25.1): parse() and __str__ are inverses.

Header *lines* are kept as text in :class:`focus.sip.message.Headers`; these classes
give typed access to the values the stack acts on.  Whitespace (LWS/SWS) is accepted
wherever §25.1 allows it and dropped on output.
"""

from __future__ import annotations

import re

import attrs

from . import _grammar as g
from .errors import BadRequest, SipParseError
from .uri import URI, Parameters, SipURI, parse_uri

__all__ = [
    "COMPACT_FORMS",
    "LIST_HEADERS",
    "Address",
    "CSeq",
    "Via",
    "canonical_name",
    "parse_header_params",
    "split_list",
]

# §7.3.3 compact forms (and those of RFC 3265/3515/4028 that peers send).
COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "b": "Referred-By",
    "x": "Session-Expires",
}

_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "In-Reply-To",
    "Max-Forwards", "MIME-Version", "Min-Expires", "Organization", "P-Asserted-Identity",
    "Priority", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Reply-To", "Require", "Retry-After", "Route",
    "Server", "Session-Expires", "Subject", "Subscription-State", "Supported", "Timestamp",
    "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]  # fmt: skip
_CANONICAL = {n.lower(): n for n in _KNOWN}
_CANONICAL.update(COMPACT_FORMS)

# Headers whose grammar is a comma-separated list (§7.3.1: may be split or combined).
LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
        "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
        "In-Reply-To", "P-Asserted-Identity", "Proxy-Require", "Reason", "Record-Route",
        "Require", "Route", "Supported", "Unsupported", "Via", "Warning",
    )
)  # fmt: skip


def canonical_name(name: str) -> str:
    """The long, conventionally capitalised name of a header (§7.3.1: names are
    case-insensitive; §7.3.3: compact forms are equivalent).  Unknown names stay as sent."""
    return _CANONICAL.get(name.lower(), name)


def split_list(value: str) -> list[str]:
    """Split a header value at commas outside quoted strings and ``<...>`` (§7.3.1)."""
    out: list[str] = []
    start = 0
    i = 0
    n = len(value)
    angle = False
    while i < n:
        ch = value[i]
        if ch == '"':
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            if i >= n:
                raise SipParseError("unterminated quoted string")
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            out.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(" \t"))
    return out


_PARAM_VALUE = rf"(?:{g.QUOTED_STRING}|[A-Za-z0-9\-.!%*_+`'~:\[\]]+)"
_PARAM_RE = re.compile(
    rf"{g.SWS};{g.SWS}(?P<name>{g.TOKEN})(?:{g.SWS}={g.SWS}(?P<value>{_PARAM_VALUE}))?"
)


def parse_header_params(text: str, what: str) -> Parameters:
    """Parse ``*( SEMI generic-param )`` with optional whitespace (§25.1)."""
    pos = 0
    out: list[tuple[str, str | None]] = []
    while pos < len(text):
        m = _PARAM_RE.match(text, pos)
        if m is None:
            if text[pos:].strip(" \t") == "":
                break
            raise SipParseError(f"malformed parameters in {what}: {text[pos : pos + 40]!r}")
        out.append((m["name"], m["value"]))
        pos = m.end()
    return Parameters(tuple(out))


_DISPLAY_NAME_RE = re.compile(rf"{g.TOKEN}(?:{g.LWS}{g.TOKEN})*")
_QUOTED_RE = re.compile(g.QUOTED_STRING)


@attrs.frozen
class Address:
    """name-addr or addr-spec with header parameters: From, To, Contact, Route, ...

    ``display_name`` is kept as on the wire (quoted or a token sequence), so that
    ``parse(str(a)) == a``; :attr:`display_text` gives the unquoted text.
    """

    uri: URI
    display_name: str | None = None
    params: Parameters = attrs.field(factory=Parameters)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``[display-name] <URI> *(;param)`` or ``addr-spec *(;param)`` (§20.10)."""
        text = text.strip(" \t")
        display: str | None = None
        rest = text
        if text.startswith('"'):
            m = _QUOTED_RE.match(text)
            if m is None:
                raise SipParseError(f"unterminated quoted display name in {text[:60]!r}")
            display = m.group()
            rest = text[m.end() :].lstrip(" \t")
            if not rest.startswith("<"):
                raise SipParseError(f"display name without <URI> in {text[:60]!r}")
        if "<" in rest.split(";", 1)[0] or rest.startswith("<"):
            lt = rest.index("<")
            if display is None and lt:
                candidate = rest[:lt].strip(" \t")
                if not _DISPLAY_NAME_RE.fullmatch(candidate):
                    raise SipParseError(f"bad display name {candidate[:40]!r}")
                display = candidate
            gt = rest.find(">", lt)
            if gt < 0:
                raise SipParseError(f"missing '>' in {text[:60]!r}")
            uri = parse_uri(rest[lt + 1 : gt])
            params = parse_header_params(rest[gt + 1 :], "address")
        else:
            # addr-spec: the URI ends at the first ';' or whitespace, and any parameters
            # after it belong to the header (§20: "URI parameters ... header parameters").
            m = re.match(r"[^; \t]+", rest)
            if m is None:
                raise SipParseError(f"missing URI in {text[:60]!r}")
            spec = m.group()
            if "?" in spec or "," in spec:
                # §20: a URI with headers or commas must be enclosed in <> (RFC 4475 §3.1.2.13)
                raise SipParseError(f"URI with '?' or ',' must be enclosed in <>: {spec[:60]!r}")
            uri = parse_uri(spec)
            params = parse_header_params(rest[m.end() :], "address")
        return cls(uri=uri, display_name=display, params=params)

    def __str__(self) -> str:
        prefix = f"{self.display_name} " if self.display_name else ""
        return f"{prefix}<{self.uri}>{self.params}"

    @property
    def display_text(self) -> str | None:
        """The display name without quotes and escapes."""
        d = self.display_name
        if d is None:
            return None
        if d.startswith('"'):
            return re.sub(r"\\(.)", r"\1", d[1:-1])
        return d

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (§19.3)."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> Address:
        """A copy carrying ``tag``."""
        return attrs.evolve(self, params=self.params.set("tag", tag))

    @property
    def sip_uri(self) -> SipURI:
        """The URI, which must be a SIP/SIPS URI (for Contact, Route and Record-Route)."""
        if not isinstance(self.uri, SipURI):
            raise SipParseError(f"expected a SIP URI, got {self.uri}")
        return self.uri


@attrs.frozen
class Via:
    """A single Via value (§20.42, §18.2.1, RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Parameters = attrs.field(factory=Parameters)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse ``SIP/2.0/UDP host[:port] *(;param)`` with free whitespace."""
        text = text.strip(" \t")
        m = g.VIA_RE.match(text)
        if m is None:
            raise SipParseError(f"malformed Via {text[:60]!r}")
        protocol = f"{m['name'].upper()}/{m['version']}"
        if protocol != "SIP/2.0":
            raise SipParseError(f"unsupported Via protocol {protocol!r}")
        port = m["port"]
        if port is not None and int(port) > 65535:
            raise SipParseError("Via port out of range")
        return cls(
            transport=m["transport"].upper(),
            host=m["host"],
            port=int(port) if port is not None else None,
            params=parse_header_params(text[m.end() :], "Via"),
            protocol=protocol,
        )

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params}"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (§8.1.1.7)."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (§18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The value of ``rport`` when filled in (RFC 3581 §4), else ``None``."""
        v = self.params.get("rport")
        if v is None or not v.isdigit():
            return None
        return int(v)

    @property
    def wants_rport(self) -> bool:
        """True when the client asked for ``rport`` (RFC 3581 §3)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter (§18.2.2)."""
        return self.params.get("maddr")

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch starts with the magic cookie z9hG4bK (§8.1.1.7)."""
        b = self.branch
        return b is not None and b.startswith("z9hG4bK")

    def with_params(self, params: Parameters) -> Via:
        """A copy with other parameters."""
        return attrs.evolve(self, params=params)


MAX_CSEQ = 2**31 - 1


@attrs.frozen
class CSeq:
    """``CSeq: 4711 INVITE`` (§20.16); the number is below 2**31 (§8.1.1.5)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse a CSeq value; an overlarge number is a :class:`BadRequest`."""
        m = g.CSEQ_RE.fullmatch(text.strip(" \t"))
        if m is None:
            raise SipParseError(f"malformed CSeq {text[:60]!r}")
        if len(m["seq"]) > 10 or int(m["seq"]) > MAX_CSEQ:
            raise BadRequest("CSeq number out of range (RFC 3261 §8.1.1.5)")
        return cls(int(m["seq"]), m["method"])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
