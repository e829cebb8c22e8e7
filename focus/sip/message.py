"""The SIP message model (RFC 3261 §7): frozen requests and responses.

Header lines are kept in order as ``(name, value)`` text pairs (§7.3): names are stored
in their canonical long form, values unfolded and trimmed.  Typed views (``cseq``,
``vias``, ``from_``...) parse on access.  Change a message with ``attrs.evolve`` or the
``with_*`` helpers; :meth:`Request.encode` recomputes Content-Length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import attrs

from . import _grammar as g
from .errors import BadRequest, MessageTooLarge, SipParseError, VersionNotSupported
from .headers import LIST_HEADERS, Address, CSeq, Via, canonical_name, split_list
from .uri import URI, SipURI, parse_uri

__all__ = [
    "Headers",
    "Limits",
    "Message",
    "Request",
    "Response",
    "answerable_head",
    "check_request",
    "check_response",
    "content_length",
    "parse_head",
    "parse_message",
]


@attrs.frozen
class Limits:
    """Bounds on what we accept from the network (§18.3, §21.5.11)."""

    max_start_line: int = 4096
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 200
    max_body_bytes: int = 256 * 1024


DEFAULT_LIMITS = Limits()


@attrs.frozen
class Headers:
    """Ordered header lines.  Lookups are case-insensitive and understand compact forms."""

    fields: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, object]]) -> Headers:
        """Build from ``(name, value)`` pairs; values are turned into text with ``str``."""
        return cls(tuple((canonical_name(n), str(v)) for n, v in pairs))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.count(name) > 0

    def count(self, name: str) -> int:
        """How many lines carry ``name``."""
        return len(self.lines(name))

    def lines(self, name: str) -> list[str]:
        """The values of every line called ``name``, unsplit."""
        # Parsed and built messages carry canonical names (parse_head, ``of``, ``set``),
        # so the exact comparison nearly always decides; names of another length cannot
        # match case-insensitively, and only same-length ones are lower-cased. This keeps
        # the many lookups per transaction cheap without an index that every retained
        # message would carry (a dict per message: ~3 KiB per idle leg).
        canon = canonical_name(name)
        size = len(canon)
        key = canon.lower()
        return [v for n, v in self.fields if n == canon or (len(n) == size and n.lower() == key)]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first line called ``name``."""
        found = self.lines(name)
        return found[0] if found else default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, list headers split at commas (§7.3.1)."""
        values = self.lines(name)
        if canonical_name(name).lower() not in LIST_HEADERS:
            return values
        out: list[str] = []
        for v in values:
            out.extend(x for x in split_list(v) if x)
        return out

    def set(self, name: str, value: object) -> Headers:
        """Replace every line called ``name`` by one line (where the first one was)."""
        canon = canonical_name(name)
        key = canon.lower()
        out: list[tuple[str, str]] = []
        done = False
        for n, v in self.fields:
            if n.lower() == key:
                if not done:
                    out.append((canon, str(value)))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((canon, str(value)))
        return Headers(tuple(out))

    def add(self, name: str, value: object) -> Headers:
        """Append a line."""
        return Headers((*self.fields, (canonical_name(name), str(value))))

    def prepend(self, name: str, value: object) -> Headers:
        """Insert a line before the first line of that name (or at the top)."""
        canon = canonical_name(name)
        key = canon.lower()
        for i, (n, _) in enumerate(self.fields):
            if n.lower() == key:
                return Headers((*self.fields[:i], (canon, str(value)), *self.fields[i:]))
        return Headers(((canon, str(value)), *self.fields))

    def remove(self, name: str) -> Headers:
        """Drop every line called ``name``."""
        key = canonical_name(name).lower()
        return Headers(tuple((n, v) for n, v in self.fields if n.lower() != key))

    def replace_all(self, name: str, values: Iterable[object]) -> Headers:
        """Replace every line called ``name`` by one line per value, keeping position."""
        canon = canonical_name(name)
        key = canon.lower()
        new = [(canon, str(v)) for v in values]
        out: list[tuple[str, str]] = []
        done = False
        for n, v in self.fields:
            if n.lower() == key:
                if not done:
                    out.extend(new)
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.extend(new)
        return Headers(tuple(out))


class _Typed:
    """Typed views shared by requests and responses; each parses on access."""

    headers: Headers
    body: bytes

    def _single(self, name: str) -> str:
        values = self.headers.lines(name)
        if not values:
            raise BadRequest(f"missing {name} header (RFC 3261 §8.1.1)")
        if len(values) > 1:
            raise BadRequest(f"more than one {name} header (RFC 3261 §7.3.1)")
        return values[0]

    @property
    def call_id(self) -> str:
        """The Call-ID (§20.8)."""
        value = self._single("Call-ID")
        if not re.fullmatch(rf"{g.WORD}(?:@{g.WORD})?", value):
            raise SipParseError(f"malformed Call-ID {value[:60]!r}")
        return value

    @property
    def cseq(self) -> CSeq:
        """The CSeq (§20.16)."""
        return CSeq.parse(self._single("CSeq"))

    @property
    def from_(self) -> Address:
        """The From address (§20.20)."""
        return Address.parse(self._single("From"))

    @property
    def to(self) -> Address:
        """The To address (§20.39)."""
        return Address.parse(self._single("To"))

    @property
    def vias(self) -> list[Via]:
        """Every Via, top first (§20.42)."""
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        """The topmost Via."""
        first = self.headers.get_all("Via")
        if not first:
            raise BadRequest("missing Via header (RFC 3261 §8.1.1.7)")
        return Via.parse(first[0])

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (§20.22), ``None`` when absent (RFC 2543 peers)."""
        values = self.headers.lines("Max-Forwards")
        if not values:
            return None
        value = self._single("Max-Forwards")
        if not value.isdigit() or len(value) > 10 or int(value) > 255:
            raise BadRequest(f"Max-Forwards out of range: {value[:20]!r}")
        return int(value)

    @property
    def contacts(self) -> list[Address]:
        """Contact addresses (§20.10); ``*`` is not returned here."""
        return [Address.parse(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    @property
    def routes(self) -> list[Address]:
        """Route addresses, top first (§20.34)."""
        return [Address.parse(v) for v in self.headers.get_all("Route")]

    @property
    def record_routes(self) -> list[Address]:
        """Record-Route addresses, top first (§20.30)."""
        return [Address.parse(v) for v in self.headers.get_all("Record-Route")]

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower-cased and without parameters (§20.15)."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip(" \t").lower()

    def tokens(self, name: str) -> list[str]:
        """A token-list header (Allow, Supported, Require, ...) as lower-case tokens."""
        return [v.lower() for v in self.headers.get_all(name)]


def _encode_head(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    seen_length = False
    for name, value in headers:
        if name == "Content-Length":
            if seen_length:
                continue
            seen_length = True
            lines.append(f"{name}: {len(body)}")
        else:
            lines.append(f"{name}: {value}")
    if not seen_length:
        lines.append(f"Content-Length: {len(body)}")
    text = "\r\n".join(lines) + "\r\n\r\n"
    return text.encode("utf-8", "surrogateescape") + body


@attrs.frozen
class Request(_Typed):
    """A SIP request (§7.1)."""

    method: str
    uri: URI
    headers: Headers = attrs.field(factory=Headers)
    body: bytes = b""

    def encode(self) -> bytes:
        """Serialise; Content-Length is set to the body length (§20.14)."""
        return _encode_head(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)

    def __bytes__(self) -> bytes:
        return self.encode()

    def with_headers(self, headers: Headers) -> Request:
        """A copy with other headers."""
        return attrs.evolve(self, headers=headers)

    def with_body(self, body: bytes, content_type: str | None) -> Request:
        """A copy with a body and its Content-Type (or none when ``content_type`` is None)."""
        h = self.headers.remove("Content-Type")
        if content_type is not None:
            h = h.set("Content-Type", content_type)
        return attrs.evolve(self, headers=h, body=body)


@attrs.frozen
class Response(_Typed):
    """A SIP response (§7.2)."""

    status: int
    reason: str
    headers: Headers = attrs.field(factory=Headers)
    body: bytes = b""

    def encode(self) -> bytes:
        """Serialise; Content-Length is set to the body length (§20.14)."""
        return _encode_head(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)

    def __bytes__(self) -> bytes:
        return self.encode()

    def with_headers(self, headers: Headers) -> Response:
        """A copy with other headers."""
        return attrs.evolve(self, headers=headers)

    def with_body(self, body: bytes, content_type: str | None) -> Response:
        """A copy with a body and its Content-Type."""
        h = self.headers.remove("Content-Type")
        if content_type is not None:
            h = h.set("Content-Type", content_type)
        return attrs.evolve(self, headers=h, body=body)


Message = Request | Response

_LINE_SPLIT = re.compile(r"\r?\n")
_HEADER_LINE = re.compile(rf"(?P<name>{g.TOKEN}){g.SWS}:{g.SWS}(?P<value>.*)", re.DOTALL)


def _parse_start(line: str) -> tuple[str, str, str] | tuple[int, str]:
    if line.startswith("SIP/") and (m := g.STATUS_LINE_RE.fullmatch(line)):
        if m["version"] != "SIP/2.0":
            raise VersionNotSupported(f"unsupported version {m['version']!r}")
        status = int(m["status"])
        if status < 100:
            raise SipParseError(f"status code out of range: {status}")
        return status, m["reason"]
    m = g.REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        raise SipParseError(f"malformed start line {line[:80]!r}")
    if m["version"].upper() != "SIP/2.0":
        raise VersionNotSupported(f"unsupported version {m['version']!r}")
    return m["method"], m["uri"], m["version"]


def parse_head(
    head: bytes, limits: Limits = DEFAULT_LIMITS
) -> tuple[tuple[str, str, str] | tuple[int, str], Headers]:
    """Parse a start line and header block (without the blank line) into parts.

    Folded lines are unfolded (§7.3.1); header names are canonicalised.
    """
    if len(head) > limits.max_header_bytes:
        raise MessageTooLarge("header block too large")
    text = head.decode("utf-8", "surrogateescape")
    raw_lines = _LINE_SPLIT.split(text)
    start = raw_lines[0]
    if len(start) > limits.max_start_line:
        raise MessageTooLarge("start line too long")
    logical: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t"):
            if not logical:
                raise SipParseError("continuation line before any header")
            logical[-1] = logical[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            logical.append(line)
        if len(logical) > limits.max_header_count:
            raise MessageTooLarge("too many header lines")
    fields: list[tuple[str, str]] = []
    bad_length: str | None = None
    for line in logical:
        m = _HEADER_LINE.fullmatch(line)
        if m is None or "\r" in line:
            raise SipParseError(f"malformed header line {line[:60]!r}")
        name = canonical_name(m["name"])
        value = m["value"].strip(" \t")
        if name == "Content-Length":
            if value.isdigit() and len(value) <= 12:
                value = str(int(value))
            else:
                bad_length = value
        fields.append((name, value))
    headers = Headers(tuple(fields))
    # The header block parsed: a request with a bad start line or Content-Length can
    # still be answered (RFC 4475 §3.1.2.3, §3.1.2.7-§3.1.2.10, §3.1.2.16), so the
    # errors below carry the headers.  Responses and ACKs are never answered.
    answerable = None if start.startswith(("SIP/", "ACK ")) else headers
    try:
        if "\r" in start:
            raise SipParseError("bare CR in start line")
        parsed_start = _parse_start(start)
    except SipParseError as exc:
        exc.head = answerable
        raise
    if bad_length is not None:
        raise SipParseError(f"malformed Content-Length {bad_length[:20]!r}", head=answerable)
    return parsed_start, headers


def answerable_head(
    start: tuple[str, str, str] | tuple[int, str], headers: Headers
) -> Headers | None:
    """The headers of a request other than ACK (which may be answered), else None."""
    return headers if len(start) == 3 and start[0] != "ACK" else None


def content_length(headers: Headers, head: Headers | None = None) -> int | None:
    """The Content-Length value, ``None`` when absent; repeated values are an error
    (RFC 4475 §3.3.9) that carries ``head`` so that it can be answered."""
    values = headers.lines("Content-Length")
    if not values:
        return None
    if len(set(values)) > 1:
        raise BadRequest("conflicting Content-Length headers", head=head)
    return int(values[0])


def build_message(
    start: tuple[str, str, str] | tuple[int, str], headers: Headers, body: bytes
) -> Message:
    """Assemble a message from :func:`parse_head` parts and a body."""
    if len(start) == 2:
        status, reason = start
        assert isinstance(status, int)
        return Response(status=status, reason=reason, headers=headers, body=body)
    method, uri_text, _ = start
    assert isinstance(method, str)
    answerable = None if method == "ACK" else headers
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        exc.head = answerable
        raise
    if isinstance(uri, SipURI) and uri.headers:
        # §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise SipParseError("headers are not allowed in a Request-URI", head=answerable)
    return Request(method=method, uri=uri, headers=headers, body=body)


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Parse one datagram (§18.3): the body is Content-Length octets, extra octets are
    discarded (RFC 4475 §3.1.1.8); a shorter body is an error (§3.1.2.2).  Without a
    Content-Length the body runs to the end of the datagram (§18.3).

    Leading CRLFs are ignored (§7.5).
    """
    data = data.lstrip(b"\r\n")
    sep = data.find(b"\r\n\r\n")
    sep_len = 4
    if sep < 0:
        sep = data.find(b"\n\n")
        sep_len = 2
    if sep < 0:
        if len(data) > limits.max_header_bytes:
            raise MessageTooLarge("header block too large")
        raise SipParseError("no blank line after the header block")
    start, headers = parse_head(data[:sep], limits)
    rest = data[sep + sep_len :]
    length = content_length(headers, answerable_head(start, headers))
    if length is None:
        length = len(rest)
    if length > limits.max_body_bytes or length > len(rest):
        head = build_message(start, headers, b"")
        if length > limits.max_body_bytes:
            raise MessageTooLarge("body too large", head=head)
        raise SipParseError(
            "Content-Length larger than the datagram (RFC 4475 §3.1.2.2)", head=head
        )
    return build_message(start, headers, rest[:length])


_REQUIRED = ("To", "From", "Call-ID", "CSeq")


def _check_common(msg: Message) -> None:
    if "Via" not in msg.headers:
        raise BadRequest("missing Via header (RFC 3261 §8.1.1.7)")
    msg.vias  # noqa: B018 - parse every Via
    for name in _REQUIRED:
        msg._single(name)
    msg.to  # noqa: B018
    msg.from_  # noqa: B018
    msg.call_id  # noqa: B018
    content_length(msg.headers)
    msg.contacts  # noqa: B018
    msg.routes  # noqa: B018
    msg.record_routes  # noqa: B018


def check_request(req: Request) -> None:
    """Raise :class:`SipParseError` (400) unless the request carries the mandatory
    headers of §8.1.1 exactly once, parseable, and a CSeq method equal to the request
    method (§8.1.1.5; RFC 4475 §3.1.2.17, §3.1.2.18, §3.3.1, §3.3.8)."""
    _check_common(req)
    if req.cseq.method != req.method:
        raise BadRequest("CSeq method does not match the request method (RFC 3261 §8.1.1.5)")
    req.max_forwards  # noqa: B018


def check_response(resp: Response) -> None:
    """Raise :class:`SipParseError` unless the response's mandatory headers parse."""
    _check_common(resp)
    resp.cseq  # noqa: B018
    if resp.status > 699:
        raise SipParseError("status code out of range")
