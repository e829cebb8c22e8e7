"""The MSRP media line and its SDP attributes.

- ``m=message <port> TCP/MSRP *`` and ``TCP/TLS/MSRP *`` (RFC 4975 §8.1);
- ``a=path`` (RFC 4975 §8.2), ``a=accept-types``, ``a=accept-wrapped-types``,
  ``a=max-size`` (RFC 4975 §8.6);
- ``a=setup`` (RFC 4145 §4, as RFC 6135 §4.2 uses it for MSRP);
- ``a=key-mgmt`` (RFC 4567 §3.1), at session or media level, media level winning;
- ``a=chatroom`` (RFC 7701 §8);
- ``a=msrp-cema`` (RFC 6714 §5).

Attribute values are parsed on demand from the verbatim :class:`~focus.sdp.Attribute`
values, so a description with an attribute this module cannot read still parses and
serializes; only the offer/answer code that needs the value fails, with a
:class:`~focus.sdp.SdpNegotiationError` naming the attribute (never its key-mgmt data).

:class:`MsrpUri` is deliberately small: what SDP needs (scheme, authority, session-id,
transport, parameters, exact round trip).  The MSRP layer has its own full URI type.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
from collections.abc import Iterable
from typing import Self

import attrs

from focus.sdp import _grammar as g
from focus.sdp.description import Attribute, Connection, Media, SessionDescription
from focus.sdp.errors import (
    WARN_ATTRIBUTE_NOT_UNDERSTOOD,
    SdpNegotiationError,
)

__all__ = [
    "MEDIA_MESSAGE",
    "PROTO_MSRP",
    "PROTO_MSRP_TLS",
    "Chatroom",
    "KeyMgmt",
    "MsrpUri",
    "SetupRole",
    "accept_types",
    "accept_wrapped_types",
    "accepts_media_type",
    "address_matches",
    "chatroom",
    "effective_connection",
    "effective_key_mgmt",
    "effective_setup",
    "format_list",
    "format_path",
    "has_msrp_cema",
    "is_msrp",
    "key_mgmt_protocol_list",
    "max_size",
    "parse_format_list",
    "parse_path",
    "path",
]

MEDIA_MESSAGE = "message"
PROTO_MSRP = "TCP/MSRP"
PROTO_MSRP_TLS = "TCP/TLS/MSRP"


def _bad(attribute: str, what: str) -> SdpNegotiationError:
    return SdpNegotiationError(f"a={attribute}: {what}", warn_code=WARN_ATTRIBUTE_NOT_UNDERSTOOD)


# -- MSRP URI (RFC 4975 §9) --------------------------------------------------------------

# MSRP-URI = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter)
# authority per RFC 3986 §3.2; session-id = 1*( unreserved / "+" / "=" / "/" );
# transport = "tcp" / 1*ALPHANUM; URI-parameter = token ["=" token] (RFC 3261 token).
_SIP_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"  # noqa: S105 - a grammar rule
_URI_RE = re.compile(
    r"(?P<scheme>msrps?)://"
    r"(?:(?P<userinfo>[A-Za-z0-9\-._~%!$&'()*+,=:]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,=]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<session>[A-Za-z0-9\-._~+=/]+))?"
    r";(?P<transport>[A-Za-z0-9]+)"
    rf"(?P<params>(?:;{_SIP_TOKEN}(?:={_SIP_TOKEN})?)*)",
    re.IGNORECASE,
)


@attrs.frozen
class MsrpUri:
    """An ``msrp:``/``msrps:`` URI as it appears in ``a=path`` (RFC 4975 §6, §9).

    ``host`` keeps IPv6 brackets; ``str()`` gives back the exact text parsed.
    """

    scheme: str
    host: str
    port: int | None
    session_id: str | None
    transport: str = "tcp"
    userinfo: str | None = None
    parameters: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _URI_RE.fullmatch(text)
        if m is None:
            raise _bad("path", "malformed MSRP URI")
        port = m.group("port")
        if port is not None and int(port) > 65535:
            raise _bad("path", "MSRP URI port out of range")
        params = m.group("params")
        return cls(
            scheme=m.group("scheme"),
            host=m.group("host"),
            port=None if port is None else int(port),
            session_id=m.group("session"),
            transport=m.group("transport"),
            userinfo=m.group("userinfo"),
            parameters=tuple(params.split(";")[1:]) if params else (),
        )

    @property
    def secure(self) -> bool:
        """True for ``msrps``: TLS on the hop to this URI (RFC 4975 §6)."""
        return self.scheme.lower() == "msrps"

    @property
    def bare_host(self) -> str:
        """The host without IPv6 brackets, for connecting and for ``c=`` lines."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def __str__(self) -> str:
        userinfo = "" if self.userinfo is None else f"{self.userinfo}@"
        port = "" if self.port is None else f":{self.port}"
        session = "" if self.session_id is None else f"/{self.session_id}"
        params = "".join(f";{p}" for p in self.parameters)
        return f"{self.scheme}://{userinfo}{self.host}{port}{session};{self.transport}{params}"


def parse_path(value: str) -> tuple[MsrpUri, ...]:
    """``a=path`` value: ``MSRP-URI *(SP MSRP-URI)`` (RFC 4975 §8.2).  URIs in SDP MUST
    carry explicit ports (§8.2); the rightmost is the peer, the leftmost the first hop."""
    parts = value.split(" ")
    if not value or "" in parts:
        raise _bad("path", "empty or badly spaced path list")
    uris = tuple(MsrpUri.parse(p) for p in parts)
    if any(u.port is None for u in uris):
        raise _bad("path", "MSRP URI without a port (RFC 4975 §8.2)")
    return uris


def format_path(uris: Iterable[MsrpUri]) -> str:
    return " ".join(str(u) for u in uris)


# -- accept-types / accept-wrapped-types / max-size (RFC 4975 §8.6) ---------------------

# format-entry = ((type "/" subtype) / (type "/" "*")) *(";" type-param) / "*"
_FORMAT_ENTRY_RE = re.compile(
    rf"\*|{g.TOKEN}/(?:\*|{g.TOKEN})(?:;{g.TOKEN}=(?:{g.TOKEN}|\"[^\"\\\r\n]*\"))*"
)


def parse_format_list(value: str, attribute: str = "accept-types") -> tuple[str, ...]:
    """``format-list = format-entry *( SP format-entry)`` (RFC 4975 §8.6)."""
    entries = value.split(" ")
    if not value or not all(_FORMAT_ENTRY_RE.fullmatch(e) for e in entries):
        raise _bad(attribute, "malformed format list")
    return tuple(entries)


def format_list(entries: Iterable[str]) -> str:
    text = " ".join(entries)
    parse_format_list(text)  # refuse to emit what we would not accept
    return text


def accepts_media_type(entries: Iterable[str], media_type: str) -> bool:
    """Whether a format list admits ``media_type`` (RFC 4975 §8.6): explicitly, by
    ``type/*`` or by ``*``.  Media types compare case-insensitively (RFC 2045 §5.1) and
    parameters are ignored ("a format-entry with one or more parameters is assumed to
    match the same format-entry with no parameters")."""
    wanted = media_type.split(";", 1)[0].strip().lower()
    top = wanted.split("/", 1)[0]
    for entry in entries:
        bare = entry.split(";", 1)[0].lower()
        if bare in ("*", wanted, f"{top}/*"):
            return True
    return False


def _single_value(media: Media, name: str) -> str | None:
    found = media.get_attributes(name)
    if not found:
        return None
    if len(found) > 1:
        raise _bad(name, "repeated attribute")
    if found[0].value is None:
        raise _bad(name, "value missing")
    return found[0].value


def path(media: Media) -> tuple[MsrpUri, ...]:
    """The mandatory ``a=path`` of an MSRP media line (RFC 4975 §8)."""
    value = _single_value(media, "path")
    if value is None:
        raise _bad("path", "missing (RFC 4975 §8.2)")
    return parse_path(value)


def accept_types(media: Media) -> tuple[str, ...]:
    """The mandatory ``a=accept-types`` (RFC 4975 §8.6)."""
    value = _single_value(media, "accept-types")
    if value is None:
        raise _bad("accept-types", "missing (RFC 4975 §8.6)")
    return parse_format_list(value)


def accept_wrapped_types(media: Media) -> tuple[str, ...]:
    """The optional ``a=accept-wrapped-types`` (RFC 4975 §8.6); () when absent."""
    value = _single_value(media, "accept-wrapped-types")
    return () if value is None else parse_format_list(value, "accept-wrapped-types")


def max_size(media: Media) -> int | None:
    """The optional ``a=max-size`` in octets (RFC 4975 §8.6), advisory."""
    value = _single_value(media, "max-size")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise _bad("max-size", "not a decimal size")
    return int(value)


def is_msrp(media: Media) -> bool:
    """An MSRP media line: ``m=message <port> TCP/MSRP|TCP/TLS/MSRP ...`` (RFC 4975 §8.1)."""
    return media.media.lower() == MEDIA_MESSAGE and media.proto.upper() in (
        PROTO_MSRP,
        PROTO_MSRP_TLS,
    )


# -- a=setup (RFC 4145 §4, RFC 6135 §4.2) ------------------------------------------------


class SetupRole(enum.Enum):
    """``a=setup`` values (RFC 4145 §4): who opens the TCP (and, per RFC 6135 §6, TLS)
    connection."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"

    @classmethod
    def parse(cls, value: str) -> SetupRole:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise _bad("setup", "unknown role (RFC 4145 §4)") from None

    def attribute(self) -> Attribute:
        return Attribute("setup", self.value)


def effective_setup(media: Media, session: SessionDescription) -> SetupRole | None:
    """The ``a=setup`` for ``media``: media level, else session level (RFC 4145 §4 allows
    both).  ``holdconn`` counts as absent: RFC 6135 §4.2.1 "MUST ignore it and process the
    message as if it did not contain an a=setup attribute"."""
    for level in (media, session):
        found = level.get_attributes("setup")
        if len(found) > 1:
            raise _bad("setup", "repeated attribute")
        if found:
            if found[0].value is None:
                raise _bad("setup", "value missing")
            role = SetupRole.parse(found[0].value)
            return None if role is SetupRole.HOLDCONN else role
    return None


# -- a=key-mgmt (RFC 4567 §3.1) ----------------------------------------------------------

# key-mgmt-att-value = 0*1SP prtcl-id SP keymgmt-data; prtcl-id = KMPID = 1*(ALPHA / DIGIT)
_KEY_MGMT_RE = re.compile(r" ?([A-Za-z0-9]+) (\S*)")
MAX_KEY_MGMT_DATA = 16384
"""Decoded bytes; a MIKEY-TICKET TRANSFER_INIT is well below one kilobyte."""


@attrs.frozen
class KeyMgmt:
    """One ``a=key-mgmt:<prtcl-id> <base64>`` (RFC 4567 §3.1).

    ``data`` is the decoded key management message (for ``mikey``: a MIKEY message).  It
    is kept out of reprs and errors: it carries wrapped key material.
    """

    protocol_id: str = attrs.field()
    data: bytes = attrs.field(repr=False)

    @protocol_id.validator
    def _check_id(self, _attribute: object, value: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9]+", value):
            raise ValueError("a KMPID is 1*(ALPHA / DIGIT) (RFC 4567 §3)")

    @data.validator
    def _check_data(self, _attribute: object, value: bytes) -> None:
        if not value or len(value) > MAX_KEY_MGMT_DATA:
            raise ValueError("key management data must be 1..16384 bytes")

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse an attribute value; the base64 must match the SDP base64 grammar exactly
        (RFC 8866 §9: 4-character units, ``=`` padding only at the end, no whitespace)."""
        m = _KEY_MGMT_RE.fullmatch(value)
        if m is None:
            raise _bad("key-mgmt", "malformed (RFC 4567 §3.1)")
        protocol_id, data = m.groups()
        if not data or g.BASE64_RE.fullmatch(data) is None:
            raise _bad("key-mgmt", f"{protocol_id} data is not base64 (RFC 4567 §3.1)")
        if len(data) > MAX_KEY_MGMT_DATA * 4 // 3 + 4:
            raise _bad("key-mgmt", f"{protocol_id} data too long")
        try:
            decoded = base64.b64decode(data, validate=True)
        except binascii.Error:  # pragma: no cover - the grammar check is stricter
            raise _bad("key-mgmt", f"{protocol_id} data is not base64") from None
        return cls(protocol_id, decoded)

    def __str__(self) -> str:
        return f"{self.protocol_id} {base64.b64encode(self.data).decode('ascii')}"

    def attribute(self) -> Attribute:
        return Attribute("key-mgmt", str(self))


def _key_mgmt_at(level: Media | SessionDescription) -> tuple[KeyMgmt, ...]:
    found = level.get_attributes("key-mgmt")
    if any(a.value is None for a in found):
        raise _bad("key-mgmt", "value missing")
    return tuple(KeyMgmt.parse(a.value) for a in found if a.value is not None)


def effective_key_mgmt(
    media: Media, session: SessionDescription
) -> tuple[tuple[KeyMgmt, ...], str | None]:
    """The key management offers for ``media`` and the level they came from.

    RFC 4567 §3.1: "if the media-level attribute is present, the session level attribute
    MUST be ignored for this media".  Several attributes are alternative protocols in
    preference order (RFC 4567 §4.1.3).  Returns ``((), None)`` when there is none.
    """
    own = _key_mgmt_at(media)
    if own:
        return own, "media"
    shared = _key_mgmt_at(session)
    if shared:
        return shared, "session"
    return (), None


def key_mgmt_protocol_list(keys: Iterable[KeyMgmt]) -> str:
    """The ``prtcl-list`` for bidding-down protection (RFC 4567 §4.3): every offered KMPID
    in SDP order, ``;``-separated (``mikey`` or ``mikey;keyp1``).  MIKEY carries it in a
    GEN_EXT "SDP IDs" payload (PROFILE §5)."""
    return ";".join(k.protocol_id for k in keys)


# -- a=chatroom (RFC 7701 §8) and a=msrp-cema (RFC 6714 §5) ------------------------------

_CHAT_TOKEN_RE = re.compile(_SIP_TOKEN)


@attrs.frozen
class Chatroom:
    """``a=chatroom[:chat-token *(SP chat-token)]`` (RFC 7701 §8): a declaration of the
    chat-room features supported and allowed, not a negotiation.

    RFC 7701's prose says "nicknames" where its ABNF and examples say ``nickname``: we emit
    ``nickname`` and read both.  Unknown (extension) tokens are kept.
    """

    tokens: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str | None) -> Self:
        if value is None or value == "":
            return cls(())
        tokens = tuple(value.split(" "))
        if not all(_CHAT_TOKEN_RE.fullmatch(t) for t in tokens):
            raise _bad("chatroom", "malformed chat-token list (RFC 7701 §8)")
        return cls(tokens)

    @classmethod
    def declare(
        cls, *, nicknames: bool, private_messages: bool, extensions: Iterable[str] = ()
    ) -> Self:
        """The attribute a focus sends for a room's policy."""
        tokens = ("nickname",) * nicknames + ("private-messages",) * private_messages
        return cls(tokens + tuple(extensions))

    @property
    def nicknames(self) -> bool:
        return "nickname" in self.tokens or "nicknames" in self.tokens

    @property
    def private_messages(self) -> bool:
        return "private-messages" in self.tokens

    def attribute(self) -> Attribute:
        return Attribute("chatroom", " ".join(self.tokens) if self.tokens else None)

    def __str__(self) -> str:
        return str(self.attribute())


def chatroom(media: Media) -> Chatroom | None:
    """The media-level ``a=chatroom`` (RFC 7701 §8), or None when absent."""
    found = media.get_attributes("chatroom")
    if not found:
        return None
    return Chatroom.parse(found[0].value)


def has_msrp_cema(media: Media) -> bool:
    """Whether the media line carries ``a=msrp-cema`` (RFC 6714 §5.2)."""
    return media.has_attribute("msrp-cema")


def effective_connection(media: Media, session: SessionDescription) -> Connection | None:
    """The ``c=`` line that applies to ``media`` (RFC 8866 §5.7): its own, else the
    session's."""
    if media.connections:
        return media.connections[0]
    return session.connection


def address_matches(connection: Connection | None, port: int, uri: MsrpUri) -> bool | None:
    """RFC 6714 §4.4: do the c/m-line address and port match the MSRP URI?

    Pure code cannot resolve names, so the answer is None ("cannot tell") when one side
    is a domain name and the other an IP address, or when there is no ``c=`` line;
    addresses compare as IP addresses (RFC 5952 normal form) or case-insensitive names.
    """
    if connection is None or uri.port is None:
        return None
    if port != uri.port:
        return False
    left, right = _ip_or_none(connection.address), _ip_or_none(uri.bare_host)
    if left is not None and right is not None:
        return left == right
    if left is None and right is None:
        return connection.address.lower() == uri.bare_host.lower()
    return None


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
