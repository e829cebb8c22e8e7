"""The SDP session description model (RFC 8866) with its parser and serializer.

``SessionDescription.parse`` and ``SessionDescription.__str__`` / ``encode`` are inverses:
``parse(encode(d)) == d`` for every description, and ``encode(parse(b)) == b`` for every
description already in canonical form (CRLF line ends, RFC 8866 §5 line order).  Attributes
are kept verbatim, in order, at the level they appeared, so that unknown ones survive a
round trip (RFC 8866 §5: "An SDP parser MUST ignore any attribute it doesn't understand").

Strictness (RFC 8866 §5, §9): the type letters are the fixed set v o s i u e p c b t r z k a
m, each line is ``<type>=<value>`` with no whitespace around "=", the lines come in the
order of §5, single-occurrence lines occur once, and every field matches its ABNF.  An
unknown type letter is rejected (§5 allows "ignore or reject"; rejecting keeps garbage out).

Deliberate tolerances, each seen in RFC examples or common peers:

- lines may end in LF instead of CRLF (§5 "parsers SHOULD be tolerant"), the last line may
  lack its line end, and trailing empty lines are ignored;
- a missing ``t=`` line is accepted (the RFC 7701 §9.1 examples omit it); the description
  then has no time descriptions and serializes without one;
- a session-level ``c=`` or ``b=`` line may follow the time descriptions (the RFC 4567 §5
  examples put ``c=`` after ``t=``); it serializes back in §5 order;
- ``z=`` may follow ``t=`` directly (RFC 4566 placed it after all time descriptions; RFC 8866
  §9 after ``r=``); it belongs to the time description it follows;
- an empty ``s=`` value or an empty attribute value after ``:`` is accepted and preserved.

Size and line count are bounded (``max_size``, ``max_lines``); exceeding them is a syntax
error, so a hostile peer cannot make the parser hold an unbounded description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self

import attrs

from focus.sdp import _grammar as g
from focus.sdp.errors import SdpSyntaxError

__all__ = [
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_SIZE",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Media",
    "Origin",
    "SessionDescription",
    "TimeDescription",
]

DEFAULT_MAX_SIZE = 65536
"""Bytes; an MSRP offer with a MIKEY-TICKET TRANSFER_INIT is a few kilobytes at most."""
DEFAULT_MAX_LINES = 512


_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _matches(pattern: re.Pattern[str]) -> _Validator:
    """An attrs validator: the string value must fully match ``pattern``."""

    def check(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise ValueError(f"{attribute.name} does not match the SDP grammar")

    return check


def _optional_matches(pattern: re.Pattern[str]) -> _Validator:
    inner = _matches(pattern)

    def check(inst: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None:
            inner(inst, attribute, value)

    return check


def _each_matches(pattern: re.Pattern[str]) -> _Validator:
    def check(_inst: object, attribute: attrs.Attribute[tuple[str, ...]], value: object) -> None:
        if not isinstance(value, tuple) or not all(
            isinstance(v, str) and pattern.fullmatch(v) for v in value
        ):
            raise ValueError(f"{attribute.name} does not match the SDP grammar")

    return check


def _port(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"{attribute.name} must be 0..65535")


def _non_negative(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative")


_TEXT = g.TEXT_RE  # text, where RFC 8866's 1*byte-string is relaxed to allow empty
_NONEMPTY_TEXT = g.BYTE_STRING_RE


@attrs.frozen
class Origin:
    """``o=`` (RFC 8866 §5.2): originator and session identifier.

    ``session_version`` increases with every changed description of the session
    (RFC 3264 §8); an unchanged re-answer repeats the same origin (RFC 4975 §8.4).
    """

    username: str = attrs.field(validator=_matches(g.NON_WS_RE))
    session_id: int = attrs.field(validator=_non_negative)
    session_version: int = attrs.field(validator=_non_negative)
    address: str = attrs.field(validator=_matches(g.NON_WS_RE))
    nettype: str = attrs.field(default="IN", validator=_matches(g.TOKEN_RE))
    addrtype: str = attrs.field(default="IP4", validator=_matches(g.TOKEN_RE))

    @classmethod
    def parse(cls, value: str) -> Self:
        m = g.ORIGIN_RE.fullmatch(value)
        if m is None:
            raise SdpSyntaxError("malformed o= line")
        user, sid, ver, nettype, addrtype, address = m.groups()
        return cls(user, int(sid), int(ver), address, nettype, addrtype)

    def next_version(self) -> Self:
        """The same origin with ``session_version`` + 1 (RFC 3264 §8: a changed offer or
        answer increments the version)."""
        return attrs.evolve(self, session_version=self.session_version + 1)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@attrs.frozen
class Connection:
    """``c=`` (RFC 8866 §5.7).  ``address`` keeps any multicast ``/ttl/n`` suffix as is."""

    address: str = attrs.field(validator=_matches(g.NON_WS_RE))
    nettype: str = attrs.field(default="IN", validator=_matches(g.TOKEN_RE))
    addrtype: str = attrs.field(default="IP4", validator=_matches(g.TOKEN_RE))

    @classmethod
    def parse(cls, value: str) -> Self:
        m = g.CONNECTION_RE.fullmatch(value)
        if m is None:
            raise SdpSyntaxError("malformed c= line")
        nettype, addrtype, address = m.groups()
        return cls(address, nettype, addrtype)

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@attrs.frozen
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (RFC 8866 §5.8)."""

    bwtype: str = attrs.field(validator=_matches(g.TOKEN_RE))
    bandwidth: int = attrs.field(validator=_non_negative)

    @classmethod
    def parse(cls, value: str) -> Self:
        m = g.BANDWIDTH_RE.fullmatch(value)
        if m is None:
            raise SdpSyntaxError("malformed b= line")
        return cls(m.group(1), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@attrs.frozen
class TimeDescription:
    """``t=`` with its ``r=`` lines and optional ``z=`` line (RFC 8866 §5.9-§5.11).

    Repeat and zone values are kept as validated text: the focus never schedules by them.
    """

    start: int = attrs.field(default=0, validator=_non_negative)
    stop: int = attrs.field(default=0, validator=_non_negative)
    repeats: tuple[str, ...] = attrs.field(default=(), validator=_each_matches(g.REPEAT_RE))
    zone: str | None = attrs.field(default=None, validator=_optional_matches(g.ZONE_RE))

    def lines(self) -> Iterator[str]:
        yield f"t={self.start} {self.stop}"
        for r in self.repeats:
            yield f"r={r}"
        if self.zone is not None:
            yield f"z={self.zone}"


@attrs.frozen
class Attribute:
    """``a=<name>[:<value>]`` (RFC 8866 §5.13), kept verbatim.

    ``value`` is None for a property attribute (``a=recvonly``) and a string, possibly
    empty, for a value attribute.
    """

    name: str = attrs.field(validator=_matches(g.TOKEN_RE))
    value: str | None = attrs.field(default=None, validator=_optional_matches(_TEXT))

    @classmethod
    def parse(cls, text: str) -> Self:
        m = g.ATTRIBUTE_RE.fullmatch(text)
        if m is None:
            raise SdpSyntaxError("malformed a= line")
        return cls(m.group(1), m.group(2))

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


class _HasAttributes:
    """Look-ups shared by the session and media levels.  Attribute names compare exactly:
    every name this package interprets is registered in lower case."""

    attributes: tuple[Attribute, ...]

    def get_attributes(self, name: str) -> tuple[Attribute, ...]:
        """Every attribute named ``name``, in order."""
        return tuple(a for a in self.attributes if a.name == name)

    def get_attribute(self, name: str) -> Attribute | None:
        """The first attribute named ``name``, or None."""
        for a in self.attributes:
            if a.name == name:
                return a
        return None

    def has_attribute(self, name: str) -> bool:
        return self.get_attribute(name) is not None


def _attribute_tuple(value: Iterable[Attribute]) -> tuple[Attribute, ...]:
    return tuple(value)


@attrs.frozen
class Media(_HasAttributes):
    """A media description (RFC 8866 §5.14): the ``m=`` line and the lines under it."""

    media: str = attrs.field(validator=_matches(g.TOKEN_RE))
    port: int = attrs.field(validator=_port)
    proto: str = attrs.field(validator=_matches(g.PROTO_RE))
    formats: tuple[str, ...] = attrs.field(validator=_each_matches(g.TOKEN_RE))
    port_count: int | None = attrs.field(default=None)
    information: str | None = attrs.field(default=None, validator=_optional_matches(_NONEMPTY_TEXT))
    connections: tuple[Connection, ...] = ()
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = attrs.field(default=None, validator=_optional_matches(g.KEY_RE))
    attributes: tuple[Attribute, ...] = attrs.field(default=(), converter=_attribute_tuple)

    @formats.validator
    def _check_formats(self, _attribute: object, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError("an m= line needs at least one format")

    @port_count.validator
    def _check_port_count(self, _attribute: object, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("port_count must be positive")

    def lines(self) -> Iterator[str]:
        port = f"{self.port}" if self.port_count is None else f"{self.port}/{self.port_count}"
        yield f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"
        if self.information is not None:
            yield f"i={self.information}"
        for c in self.connections:
            yield f"c={c}"
        for b in self.bandwidths:
            yield f"b={b}"
        if self.key is not None:
            yield f"k={self.key}"
        for a in self.attributes:
            yield f"a={a}"


@attrs.frozen
class SessionDescription(_HasAttributes):
    """A whole session description (RFC 8866 §5): the session level and its media."""

    origin: Origin
    session_name: str = attrs.field(default="-", validator=_matches(_TEXT))
    information: str | None = attrs.field(default=None, validator=_optional_matches(_NONEMPTY_TEXT))
    uri: str | None = attrs.field(default=None, validator=_optional_matches(g.NON_WS_RE))
    emails: tuple[str, ...] = attrs.field(default=(), validator=_each_matches(_NONEMPTY_TEXT))
    phones: tuple[str, ...] = attrs.field(default=(), validator=_each_matches(_NONEMPTY_TEXT))
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    times: tuple[TimeDescription, ...] = (TimeDescription(),)
    key: str | None = attrs.field(default=None, validator=_optional_matches(g.KEY_RE))
    attributes: tuple[Attribute, ...] = attrs.field(default=(), converter=_attribute_tuple)
    media: tuple[Media, ...] = ()
    version: int = attrs.field(default=0)

    @version.validator
    def _check_version(self, _attribute: object, value: int) -> None:
        if value != 0:
            raise ValueError("only SDP version 0 exists (RFC 8866 §5.1)")

    # -- serialization -------------------------------------------------------------------

    def lines(self) -> Iterator[str]:
        yield f"v={self.version}"
        yield f"o={self.origin}"
        yield f"s={self.session_name}"
        if self.information is not None:
            yield f"i={self.information}"
        if self.uri is not None:
            yield f"u={self.uri}"
        for e in self.emails:
            yield f"e={e}"
        for p in self.phones:
            yield f"p={p}"
        if self.connection is not None:
            yield f"c={self.connection}"
        for b in self.bandwidths:
            yield f"b={b}"
        for t in self.times:
            yield from t.lines()
        if self.key is not None:
            yield f"k={self.key}"
        for a in self.attributes:
            yield f"a={a}"
        for m in self.media:
            yield from m.lines()

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self.lines())

    def encode(self) -> bytes:
        """The description as an ``application/sdp`` body (CRLF line ends, RFC 8866 §5)."""
        return str(self).encode("utf-8", "surrogateescape")

    # -- parsing -------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        data: bytes | str,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_lines: int = DEFAULT_MAX_LINES,
    ) -> SessionDescription:
        """Parse an ``application/sdp`` body; raise :class:`SdpSyntaxError` (only) on bad
        input.  ``str`` input is treated as its UTF-8 encoding."""
        if isinstance(data, str):
            try:
                raw = data.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as exc:
                raise SdpSyntaxError("description is not encodable text") from exc
        else:
            raw = bytes(data)
        if len(raw) > max_size:
            raise SdpSyntaxError(f"description larger than {max_size} bytes")
        if raw.count(b"\n") > max_lines:
            raise SdpSyntaxError(f"description has more than {max_lines} lines")
        text = raw.decode("utf-8", "surrogateescape")
        return _parse_text(text)


_SESSION_RANK = {"v": 0, "o": 1, "s": 2, "i": 3, "u": 4, "e": 5, "p": 6, "c": 7, "b": 8}
_SESSION_RANK.update({"t": 9, "r": 9, "z": 9, "k": 10, "a": 11})
_TIME_RANK = 9
_MEDIA_RANK = {"m": 0, "i": 1, "c": 2, "b": 3, "k": 4, "a": 5}


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    # Trailing empty lines (including the one after the final line end) are ignored.
    while lines and lines[-1] in ("", "\r"):
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@attrs.define
class _TimeBuilder:
    start: int
    stop: int
    repeats: list[str] = attrs.Factory(list)
    zone: str | None = None

    def build(self) -> TimeDescription:
        return TimeDescription(self.start, self.stop, tuple(self.repeats), self.zone)


@attrs.define
class _MediaBuilder:
    """One media description being collected; ``rank`` enforces the §5 line order."""

    media: str
    port: int
    port_count: int | None
    proto: str
    formats: tuple[str, ...]
    information: str | None = None
    connections: list[Connection] = attrs.Factory(list)
    bandwidths: list[Bandwidth] = attrs.Factory(list)
    key: str | None = None
    attributes: list[Attribute] = attrs.Factory(list)
    rank: int = 0

    @classmethod
    def start(cls, value: str) -> _MediaBuilder:
        m = g.MEDIA_RE.fullmatch(value)
        if m is None:
            raise SdpSyntaxError("malformed m= line")
        media, port, count, proto, formats = m.groups()
        if int(port) > 65535:
            raise SdpSyntaxError("m= port out of range")
        return cls(
            media, int(port), None if count is None else int(count), proto, tuple(formats.split())
        )

    def add(self, kind: str, value: str) -> None:
        new_rank = _MEDIA_RANK.get(kind)
        if new_rank is None:
            raise SdpSyntaxError(f"unknown or misplaced type {kind}= in a media description")
        if new_rank < self.rank:
            raise SdpSyntaxError(f"{kind}= line out of order (RFC 8866 §5)")
        if kind == "i":
            if self.information is not None:
                raise SdpSyntaxError("repeated i= line")
            self.information = _text(value)
        elif kind == "c":
            self.connections.append(Connection.parse(value))
        elif kind == "b":
            self.bandwidths.append(Bandwidth.parse(value))
        elif kind == "k":
            if self.key is not None:
                raise SdpSyntaxError("repeated k= line")
            self.key = _full(g.KEY_RE, value, "k=")
        else:  # "a"
            self.attributes.append(Attribute.parse(value))
        self.rank = new_rank

    def build(self) -> Media:
        return Media(
            media=self.media,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            port_count=self.port_count,
            information=self.information,
            connections=tuple(self.connections),
            bandwidths=tuple(self.bandwidths),
            key=self.key,
            attributes=tuple(self.attributes),
        )


@attrs.define
class _SessionBuilder:
    """The session level being collected, one line at a time, in RFC 8866 §5 order."""

    origin: Origin | None = None
    session_name: str | None = None
    information: str | None = None
    uri: str | None = None
    emails: list[str] = attrs.Factory(list)
    phones: list[str] = attrs.Factory(list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = attrs.Factory(list)
    times: list[_TimeBuilder] = attrs.Factory(list)
    key: str | None = None
    attributes: list[Attribute] = attrs.Factory(list)
    media: list[_MediaBuilder] = attrs.Factory(list)
    rank: int = 0
    lines: int = 0

    def add(self, kind: str, value: str) -> None:
        self.lines += 1
        if self.lines == 1:
            if kind != "v" or value != "0":
                raise SdpSyntaxError("the first line must be v=0 (RFC 8866 §5.1)")
            return
        if kind == "m":
            self.media.append(_MediaBuilder.start(value))
            return
        if self.media:
            self.media[-1].add(kind, value)
            return
        if (self.lines == 2) != (kind == "o") or (self.lines == 3) != (kind == "s"):
            raise SdpSyntaxError("v= must be followed by o= and s= (RFC 8866 §5)")
        new_rank = _SESSION_RANK.get(kind)
        if new_rank is None or kind == "v":
            raise SdpSyntaxError(f"unknown or misplaced type {kind}=")
        # Tolerance: c= and b= after the time descriptions (RFC 4567 §5 examples).
        late = kind in "cb" and self.rank == _TIME_RANK
        if new_rank < self.rank and not late:
            raise SdpSyntaxError(f"{kind}= line out of order (RFC 8866 §5)")
        if new_rank == self.rank and kind in "iuk":
            raise SdpSyntaxError(f"repeated {kind}= line")
        self._store(kind, value)
        if not late:
            self.rank = new_rank

    def _store(self, kind: str, value: str) -> None:
        if kind == "o":
            self.origin = Origin.parse(value)
        elif kind == "s":
            self.session_name = _text(value, allow_empty=True)
        elif kind == "i":
            self.information = _text(value)
        elif kind == "u":
            self.uri = _full(g.NON_WS_RE, value, "u=")
        elif kind == "e":
            self.emails.append(_text(value))
        elif kind == "p":
            self.phones.append(_text(value))
        elif kind == "c":
            if self.connection is not None:
                raise SdpSyntaxError("repeated session-level c= line")
            self.connection = Connection.parse(value)
        elif kind == "b":
            self.bandwidths.append(Bandwidth.parse(value))
        elif kind == "t":
            m = g.TIME_RE.fullmatch(value)
            if m is None:
                raise SdpSyntaxError("malformed t= line")
            self.times.append(_TimeBuilder(int(m.group(1)), int(m.group(2))))
        elif kind == "r":
            if not self.times or self.times[-1].zone is not None:
                raise SdpSyntaxError("r= line without its t= line")
            self.times[-1].repeats.append(_full(g.REPEAT_RE, value, "r="))
        elif kind == "z":
            if not self.times or self.times[-1].zone is not None:
                raise SdpSyntaxError("z= line without its t= line")
            self.times[-1].zone = _full(g.ZONE_RE, value, "z=")
        elif kind == "k":
            self.key = _full(g.KEY_RE, value, "k=")
        else:  # "a"
            self.attributes.append(Attribute.parse(value))

    def build(self) -> SessionDescription:
        if self.origin is None or self.session_name is None:
            raise SdpSyntaxError("missing o= or s= line")
        return SessionDescription(
            origin=self.origin,
            session_name=self.session_name,
            information=self.information,
            uri=self.uri,
            emails=tuple(self.emails),
            phones=tuple(self.phones),
            connection=self.connection,
            bandwidths=tuple(self.bandwidths),
            times=tuple(t.build() for t in self.times),
            key=self.key,
            attributes=tuple(self.attributes),
            media=tuple(m.build() for m in self.media),
        )


def _parse_text(text: str) -> SessionDescription:
    lines = _split_lines(text)
    if not lines:
        raise SdpSyntaxError("empty description")
    builder = _SessionBuilder()
    for number, line in enumerate(lines, start=1):
        # RFC 8866 §5: <type>=<value>, type one lower-case letter, no space around "=".
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpSyntaxError(f"line {number} is not <type>=<value>")
        if "\r" in line or "\x00" in line:
            raise SdpSyntaxError(f"line {number} contains CR or NUL")
        try:
            builder.add(line[0], line[2:])
        except SdpSyntaxError as exc:
            raise SdpSyntaxError(f"line {number}: {exc.reason}") from None
    try:
        return builder.build()
    except ValueError as exc:  # pragma: no cover - the line checks above agree with validators
        raise SdpSyntaxError("description violates the SDP grammar") from exc


def _text(value: str, *, allow_empty: bool = False) -> str:
    if not value and not allow_empty:
        raise SdpSyntaxError("empty text field")
    return value


def _full(pattern: re.Pattern[str], value: str, what: str) -> str:
    if pattern.fullmatch(value) is None:
        raise SdpSyntaxError(f"malformed {what} line")
    return value
