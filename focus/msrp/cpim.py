"""Message/CPIM (RFC 3862): parse and build, keeping the exact header bytes.

In MSRP the MIME part "m:" of RFC 3862 §2 is the MSRP ``Content-Type: message/cpim``
header, so an MSRP body of that type is::

    h: message headers (From, To, cc, DateTime, Subject, NS, Require, extensions)
    s: CRLF
    e: encapsulated MIME entity: MIME headers (at least Content-Type), CRLF, content

RFC 3862 §2.2: "Message headers MUST NOT be modified, reformatted or reordered in
transit" and "processors MUST preserve all octets of all headers exactly".  A parsed
:class:`CpimMessage` therefore keeps the raw bytes of both header blocks, and
``encode()`` returns the input unchanged; the parsed views (:attr:`CpimMessage.headers`,
:attr:`from_`, :attr:`to` …) are for looking only.  An RFC 7701 switch relays
``message.encode()`` (or simply the original body).

Parsing is strict about what RFC 3862 §3.6 makes structural (``Name:`` then optional
``;params``, then one SP; CRLF line ends; no control characters) and raises
:class:`MsrpParseError` (400) otherwise.  Header values are kept escaped; use
:func:`unescape` (RFC 3862 §2.3) to read a human-readable value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Self

import attrs

from .errors import MsrpParseError

__all__ = [
    "CpimAddress",
    "CpimHeader",
    "CpimMessage",
    "quote",
    "unescape",
]

# NAMECHAR = %x21 / %x23-27 / %x2a-2b / %x2d / %x5e-60 / %x7c / %x7e / ALPHA / DIGIT
_NAME = r"[!#-'*+\-^-`|~A-Za-z0-9]+"
_HEADER_RE = re.compile(
    rf"(?P<name>(?:{_NAME}\.)?{_NAME}):(?P<params>(?:;[^;\s]+)*) (?P<value>.*)", re.DOTALL
)
_CONTENT_LINE_RE = re.compile(rb"(?:^|(?<=\r\n))[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[A-Za-z-]*:")
_CTL_RE = re.compile(r"[\x00-\x1f\x7f]")
# [ Formal-name ] "<" URI ">" ; Formal-name = 1*( Token SP ) / String (RFC 3862 §3.6)
_ADDRESS_RE = re.compile(r'(?:(?P<name>"(?:[^"\\]|\\.)*"|[^<"]*?) ?)?<(?P<uri>[^<>\s]+)>')
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.|$)", re.DOTALL)
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def unescape(value: str) -> str:
    """Undo the RFC 3862 §2.3 escape mechanism (``\\uXXXX``, ``\\n``, ``\\"`` …).

    An unknown escape stands for the character after the backslash; a trailing lone
    backslash is dropped (§2.3.1).
    """

    def sub(match: re.Match[str]) -> str:
        seq = match.group(1)
        if not seq:
            return ""
        if len(seq) == 5 and seq[0] == "u":
            return chr(int(seq[1:], 16))
        return _SIMPLE_ESCAPES.get(seq, seq)

    return _ESCAPE_RE.sub(sub, value)


_REVERSE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Formal-name = 1*( Token SP ): tokens of TOKENCHAR (no CTL, no SEPARATORS), single spaces.
_FORMAL_WORD = r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?={}]+'
_FORMAL_TOKENS_RE = re.compile(rf"{_FORMAL_WORD}(?: {_FORMAL_WORD})*")


def quote(text: str) -> str:
    """``text`` as an RFC 3862 ``String``: double quotes, escapes per §2.3.1."""

    def one(ch: str) -> str:
        if ch in _REVERSE_ESCAPES:
            return _REVERSE_ESCAPES[ch]
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return f"\\u{ord(ch):04x}"
        return ch

    return '"' + "".join(one(ch) for ch in text) + '"'


@attrs.frozen
class CpimAddress:
    """``[ Formal-name ] "<" URI ">"`` of From, To and cc (RFC 3862 §4.1–4.3)."""

    uri: str
    formal_name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Self:
        match = _ADDRESS_RE.fullmatch(text)
        if match is None:
            raise MsrpParseError("malformed CPIM address")
        name = match["name"]
        return cls(uri=match["uri"], formal_name=name if name else None)

    @classmethod
    def named(cls, uri: str, name: str | None) -> Self:
        """An address with a human ``name``, quoted and escaped only when needed."""
        if not name:
            return cls(uri)
        if _FORMAL_TOKENS_RE.fullmatch(name):
            return cls(uri, name)
        return cls(uri, quote(name))

    @property
    def display_name(self) -> str | None:
        """The Formal-name as text: quotes removed and escapes undone."""
        name = self.formal_name
        if name is not None and len(name) >= 2 and name[0] == name[-1] == '"':
            return unescape(name[1:-1])
        return name

    def __str__(self) -> str:
        if self.formal_name:
            return f"{self.formal_name} <{self.uri}>"
        return f"<{self.uri}>"


@attrs.frozen
class CpimHeader:
    """One message header: name (case-sensitive, §3), ``;params``, value and raw line."""

    name: str
    value: str
    params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, line: str) -> Self:
        if _CTL_RE.search(line):
            raise MsrpParseError("control character in a CPIM header")
        if line != line.strip(" \t"):
            raise MsrpParseError("whitespace around a CPIM header line")
        match = _HEADER_RE.fullmatch(line)
        if match is None:
            raise MsrpParseError("malformed CPIM header")
        params = tuple(match["params"].split(";")[1:])
        return cls(name=match["name"], value=match["value"], params=params)

    def __str__(self) -> str:
        params = "".join(";" + p for p in self.params)
        return f"{self.name}:{params} {self.value}"


def _split_lines(block: bytes, what: str) -> list[str]:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MsrpParseError(f"{what} are not UTF-8") from exc
    if not text:
        return []
    if not text.endswith("\r\n"):
        raise MsrpParseError(f"{what} must end with CRLF")
    lines = text[:-2].split("\r\n")
    if any("\n" in line or "\r" in line for line in lines):
        raise MsrpParseError(f"{what} must use CRLF line ends")
    return lines


def _parse_mime_headers(block: bytes) -> tuple[tuple[str, str], ...]:
    """RFC 2045/5322 header fields of the encapsulated entity, unfolded."""
    headers: list[tuple[str, str]] = []
    for line in _split_lines(block, "encapsulated MIME headers"):
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or not re.fullmatch(r"[!-9;-~]+", name):
            raise MsrpParseError("malformed encapsulated MIME header")
        headers.append((name, value.strip()))
    return tuple(headers)


@attrs.frozen
class CpimMessage:
    """A Message/CPIM body; ``encode()`` gives back exactly the parsed (or built) bytes."""

    header_block: bytes
    entity_header_block: bytes
    content: bytes = attrs.field(repr=lambda c: f"<{len(c)} bytes>")
    headers: tuple[CpimHeader, ...] = ()
    entity_headers: tuple[tuple[str, str], ...] = ()
    #: False for the RFC examples' form without the blank line after the CPIM headers.
    separator: bool = True

    @classmethod
    def parse(cls, body: bytes) -> Self:
        """Parse the body of an MSRP ``message/cpim`` request (400 on malformed input).

        Lenient where RFC 4975 §11.4 and RFC 7701 §9.3-9.5 are: their examples omit the
        blank line between the CPIM headers and the encapsulated MIME headers.  A line
        ``Content-…:`` (never a CPIM header name, RFC 3862 §4) therefore also starts the
        encapsulated entity; ``encode()`` reproduces the input either way.
        """
        cut = body.find(b"\r\n\r\n")
        if body.startswith(b"\r\n"):
            header_block, rest, separator = b"", body[2:], True
        elif cut < 0:
            raise MsrpParseError("CPIM message headers are not terminated")
        else:
            header_block, rest, separator = body[: cut + 2], body[cut + 4 :], True
            match = _CONTENT_LINE_RE.search(header_block)
            if match is not None:
                # The RFC examples' form: no separator, the entity starts at Content-*.
                header_block, rest, separator = (
                    body[: match.start()],
                    body[match.start() :],
                    False,
                )
        headers = tuple(
            CpimHeader.parse(line) for line in _split_lines(header_block, "CPIM headers")
        )
        if rest.startswith(b"\r\n"):
            entity_block, content = b"", rest[2:]
        else:
            cut = rest.find(b"\r\n\r\n")
            if cut < 0:
                raise MsrpParseError("encapsulated MIME headers are not terminated")
            entity_block, content = rest[: cut + 2], rest[cut + 4 :]
        entity_headers = _parse_mime_headers(entity_block)
        message = cls(header_block, entity_block, content, headers, entity_headers, separator)
        if message.content_type is None:
            # RFC 3862 §2.4: the MIME content headers MUST include a Content-Type.
            raise MsrpParseError("encapsulated entity without Content-Type")
        return message

    @classmethod
    def build(
        cls,
        *,
        from_: CpimAddress,
        to: Iterable[CpimAddress],
        content_type: str,
        content: bytes,
        cc: Iterable[CpimAddress] = (),
        datetime: str | None = None,
        subject: str | None = None,
        ns: Iterable[str] = (),
        require: Iterable[str] = (),
        extra_headers: Iterable[CpimHeader] = (),
        entity_headers: Iterable[tuple[str, str]] = (),
    ) -> Self:
        """Compose a CPIM message; NS declarations come first so prefixes are declared
        before use (RFC 3862 §3.4), then From, To, cc, DateTime, Subject, Require, extras.
        """
        headers: list[CpimHeader] = [CpimHeader("NS", value) for value in ns]
        headers.append(CpimHeader("From", str(from_)))
        headers.extend(CpimHeader("To", str(address)) for address in to)
        headers.extend(CpimHeader("cc", str(address)) for address in cc)
        if datetime is not None:
            headers.append(CpimHeader("DateTime", datetime))
        if subject is not None:
            headers.append(CpimHeader("Subject", subject))
        require = tuple(require)
        if require:
            headers.append(CpimHeader("Require", ",".join(require)))
        headers.extend(extra_headers)
        for header in headers:
            if _CTL_RE.search(header.value) or _CTL_RE.search(header.name):
                raise MsrpParseError("control character in a CPIM header (escape it)")
        entity = [("Content-Type", content_type), *entity_headers]
        header_block = "".join(f"{h}\r\n" for h in headers).encode("utf-8")
        entity_block = "".join(f"{n}: {v}\r\n" for n, v in entity).encode("utf-8")
        return cls.parse(header_block + b"\r\n" + entity_block + b"\r\n" + content)

    def encode(self) -> bytes:
        """The exact bytes: header block, CRLF, entity headers, CRLF, content."""
        separator = b"\r\n" if self.separator else b""
        parts = (self.header_block, separator, self.entity_header_block, b"\r\n", self.content)
        return b"".join(parts)

    # -- views ---------------------------------------------------------------------------

    def values(self, name: str) -> list[str]:
        """Values of every message header called ``name`` (exact, case-sensitive, §3)."""
        return [h.value for h in self.headers if h.name == name]

    @property
    def from_(self) -> list[CpimAddress]:
        """Every From header (RFC 7701 expects exactly one)."""
        return [CpimAddress.parse(value) for value in self.values("From")]

    @property
    def to(self) -> list[CpimAddress]:
        return [CpimAddress.parse(value) for value in self.values("To")]

    @property
    def cc(self) -> list[CpimAddress]:
        return [CpimAddress.parse(value) for value in self.values("cc")]

    @property
    def datetime(self) -> str | None:
        found = self.values("DateTime")
        return found[0] if found else None

    @property
    def subjects(self) -> list[tuple[str | None, str]]:
        """``(lang, subject)`` pairs; ``lang`` from a ``;lang=`` parameter (§3.3)."""
        out: list[tuple[str | None, str]] = []
        for header in self.headers:
            if header.name == "Subject":
                lang = next((p[5:] for p in header.params if p.startswith("lang=")), None)
                out.append((lang, unescape(header.value)))
        return out

    @property
    def namespaces(self) -> list[tuple[str | None, str]]:
        """``(prefix, uri)`` of every NS header (§4.6)."""
        out: list[tuple[str | None, str]] = []
        for value in self.values("NS"):
            address = CpimAddress.parse(value)
            out.append((address.formal_name, address.uri))
        return out

    @property
    def required(self) -> list[str]:
        """Header names listed by Require headers (§4.7)."""
        return [name.strip() for value in self.values("Require") for name in value.split(",")]

    @property
    def content_type(self) -> str | None:
        """The encapsulated entity's Content-Type (the "wrapped type", RFC 4975 §8.6)."""
        for name, value in self.entity_headers:
            if name.lower() == "content-type":
                return value
        return None
