"""RFC 7701 MSRP switch decisions, as pure functions the conference logic calls.

Nothing here keeps state: the conference passes the room, the sending participant and the
roster, and gets back who receives what, or an :class:`MsrpError` whose ``status`` is the
answer to the SEND/NICKNAME (RFC 7701 §6, §7):

* :func:`route_message` — a complete incoming SEND body:
  413 above the room's size limit; 415 if it is not ``Message/CPIM`` (§6.3); 400 if the
  CPIM is malformed; 403 if the CPIM From is not one of the sender's URIs or is missing
  (§6.1, §6.3); 403 if there is more than one CPIM To, or none (§6.1, §6.2); To = the room
  → a *regular* message for every session except the sending one (§6.1); To = a
  participant → a *private* message for that participant's sessions (§6.2): 403 if the
  room does not allow private messages, 404 unknown recipient, 428 recipient without
  private-message support, 415 when no session of the recipient can take the wrapped
  type.  Each copy keeps the CPIM bytes unchanged; recipients whose accept-wrapped-types
  exclude the wrapped type are skipped (SHOULD NOT forward, §6.1); a legacy recipient
  that did not list ``message/cpim`` gets the encapsulated content unwrapped (with its
  own Content-Type) if it accepts that type — an extension of ours, RFC 7701 assumes
  every participant accepts CPIM.
* :func:`decide_nickname` — a NICKNAME request's Use-Nickname: 403 if the room has no
  nicknames, 424 malformed, 425 in use by another user or reserved, empty → remove.
* :func:`nickname_key` — nickname comparison.  RFC 7701 §7.1 asks for RFC 7700 (PRECIS
  Nickname profile).  Simplified here (documented deviation): Unicode NFC, then full
  case folding, then leading/trailing spaces trimmed and inner runs of spaces collapsed to
  one (RFC 7700 §2.2's additional mapping rule).  Width mapping, NFKC and the PRECIS
  FreeformClass character rules are not applied; control characters are refused (424).

URI comparison (who is the sender, who is the recipient) is the caller's business when it
passes ``same_uri``; the default :func:`same_uri` compares scheme and host case-
insensitively, the user part exactly, the port, and ignores URI parameters and headers.
That is laxer than RFC 3261 §19.1.4 (a ``transport`` parameter would otherwise make the
RFC 7701 §9.3 room URI differ from the configured one), and this module cannot import
``focus.sip`` (sibling pure layers are independent).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping

import attrs

from .cpim import CpimMessage
from .errors import (
    MsrpForbidden,
    MsrpLimitExceeded,
    MsrpNicknameInUse,
    MsrpNicknameMalformed,
    MsrpPrivateMessagesUnsupported,
    MsrpRecipientNotFound,
    MsrpUnsupportedMediaType,
)
from .media import accepts, is_cpim

__all__ = [
    "ChatRoom",
    "Delivery",
    "NicknameDecision",
    "Participant",
    "Route",
    "decide_nickname",
    "nickname_key",
    "parse_use_nickname",
    "report_wrapper",
    "route_message",
    "same_uri",
]

UriEquality = Callable[[str, str], bool]

_URI_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+\-.]*):(?:(?P<user>[^@;?]*)@)?(?P<host>\[[^\]]*\]|[^:;?]*)"
    r"(?::(?P<port>[0-9]+))?"
)


def _uri_key(uri: str) -> tuple[str, str | None, str, str | None] | None:
    match = _URI_RE.match(uri.strip())
    if match is None:
        return None
    return (match["scheme"].lower(), match["user"], match["host"].lower(), match["port"])


def same_uri(a: str, b: str) -> bool:
    """Default URI equality for CPIM From/To (see the module docstring)."""
    key_a, key_b = _uri_key(a), _uri_key(b)
    if key_a is None or key_b is None:
        return a == b
    return key_a == key_b


@attrs.frozen
class ChatRoom:
    """Room policy the switch decisions need (RFC 7701 §4.1)."""

    uri: str
    max_message_size: int | None = None
    private_messages: bool = True
    nicknames: bool = True
    reserved_nicknames: frozenset[str] = frozenset()


@attrs.frozen
class Participant:
    """One participant *session* (a user joined from two UAs is two Participants).

    ``key`` names the session for the caller (leg id); ``uris`` are the URIs the user is
    known by (AoR, anonymous URI …, §6.1); the type lists are what the participant's SDP
    declared (RFC 4975 §8.6: a type may be wrapped if listed in either list);
    ``private_messages`` is the ``private-messages`` chatroom token (§8).
    """

    key: Hashable
    uris: tuple[str, ...]
    accept_types: tuple[str, ...] = ("message/cpim",)
    #: absent ``a=accept-wrapped-types`` means none: only accept-types may be wrapped.
    accept_wrapped_types: tuple[str, ...] = ()
    private_messages: bool = False
    nickname: str | None = None

    def known_as(self, uri: str, equal: UriEquality = same_uri) -> bool:
        return any(equal(mine, uri) for mine in self.uris)


@attrs.frozen
class Delivery:
    """Send ``body`` of type ``content_type`` to participant ``key``.

    ``unwrapped`` is True when the CPIM wrapper was removed for a legacy participant.
    """

    key: Hashable
    content_type: str
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    unwrapped: bool = False


@attrs.frozen
class Route:
    """Where a message goes: ``private`` or regular, deliveries, and who was skipped."""

    private: bool
    cpim: CpimMessage
    deliveries: tuple[Delivery, ...]
    skipped: tuple[Hashable, ...] = ()


_Form = tuple[str, bytes, bool] | None  # (content type, body, unwrapped) or not deliverable


def _form_for(
    accept_types: tuple[str, ...],
    accept_wrapped_types: tuple[str, ...],
    cpim: CpimMessage,
    body: bytes,
    content_type: str,
) -> _Form:
    """How (and whether) a participant with these type lists can take the message
    (RFC 4975 §8.6, RFC 7701 §6.1)."""
    inner = cpim.content_type or ""
    if accepts(accept_types, content_type):
        if accepts(accept_wrapped_types + accept_types, inner):
            return (content_type, body, False)
        return None
    if accepts(accept_types, inner):
        return (inner, cpim.content, True)
    return None


def _deliveries(
    recipients: Iterable[Participant], cpim: CpimMessage, body: bytes, content_type: str
) -> tuple[list[Delivery], list[Hashable]]:
    """Every recipient's Delivery, or its key in the skipped list.  The decision depends
    only on the recipient's two type lists, which a room's participants mostly share:
    decided once per distinct pair, not once per recipient (the fan-out hot path)."""
    deliveries: list[Delivery] = []
    skipped: list[Hashable] = []
    decided: dict[tuple[tuple[str, ...], tuple[str, ...]], _Form] = {}
    for recipient in recipients:
        caps = (tuple(recipient.accept_types), tuple(recipient.accept_wrapped_types))
        if caps in decided:
            form = decided[caps]
        else:
            form = decided[caps] = _form_for(*caps, cpim, body, content_type)
        if form is None:
            skipped.append(recipient.key)
        else:
            deliveries.append(Delivery(recipient.key, *form))
    return deliveries, skipped


def route_message(
    room: ChatRoom,
    sender: Participant,
    participants: Iterable[Participant],
    content_type: str | None,
    body: bytes,
    *,
    equal: UriEquality = same_uri,
) -> Route:
    """Decide where a complete SEND body goes, or raise the error to answer with."""
    if room.max_message_size is not None and len(body) > room.max_message_size:
        raise MsrpLimitExceeded("message larger than the room allows")
    if not is_cpim(content_type):
        raise MsrpUnsupportedMediaType("chat room messages must be Message/CPIM")
    assert content_type is not None
    cpim = CpimMessage.parse(body)
    froms = cpim.from_
    if len(froms) != 1 or not sender.known_as(froms[0].uri, equal):
        raise MsrpForbidden("CPIM From is not the sender's URI")
    tos = cpim.to
    if len(tos) != 1:
        raise MsrpForbidden("exactly one CPIM To is allowed")
    target = tos[0].uri
    others = [p for p in participants if p.key != sender.key]
    if equal(target, room.uri):
        deliveries, skipped = _deliveries(others, cpim, body, content_type)
        return Route(False, cpim, tuple(deliveries), tuple(skipped))
    if not room.private_messages:
        raise MsrpForbidden("this room does not allow private messages")
    sessions = [p for p in others if p.known_as(target, equal)]
    if not sessions:
        raise MsrpRecipientNotFound("no participant with that URI")
    capable = [p for p in sessions if p.private_messages]
    if not capable:
        raise MsrpPrivateMessagesUnsupported("recipient does not support private messages")
    deliveries, unable = _deliveries(capable, cpim, body, content_type)
    skipped = [p.key for p in sessions if not p.private_messages] + unable
    if not deliveries:
        raise MsrpUnsupportedMediaType("recipient does not accept the wrapped type")
    return Route(True, cpim, tuple(deliveries), tuple(skipped))


def report_wrapper(original: CpimMessage) -> tuple[str, bytes]:
    """``(content_type, body)`` for a REPORT about a private message (RFC 7701 §6.2).

    "Any potential REPORT request that the MSRP switch sends to the sender MUST include a
    Message/CPIM wrapper containing the original From header field ... and the To header
    field of the original Message/CPIM wrapper": both are copied verbatim, the wrapped
    entity is an empty text/plain.  Pass the result to ``MsrpConnection.report``.
    """
    headers = [h for h in original.headers if h.name in ("From", "To")]
    header_block = "".join(f"{h}\r\n" for h in headers).encode("utf-8")
    body = header_block + b"\r\nContent-Type: text/plain\r\n\r\n"
    return "message/cpim", body


# -- nicknames (RFC 7701 §7) -------------------------------------------------------------

_NICKNAME_RE = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\\\|\\")*)"')
_SPACES_RE = re.compile(r"\s+")


def parse_use_nickname(value: str | None) -> str:
    """The nickname in a Use-Nickname header value (RFC 7701 §7.1), unescaped.

    ``nickname = DQUOTE 1*1023(qdtext / qd-esc) DQUOTE``; §7.3 uses an empty quoted
    string to remove the nickname, so empty is accepted.  Raises 424 when malformed.
    """
    if value is None:
        raise MsrpNicknameMalformed("NICKNAME without Use-Nickname")
    match = _NICKNAME_RE.fullmatch(value)
    if match is None:
        raise MsrpNicknameMalformed("Use-Nickname is not a quoted string")
    inner = match[1]
    if len(inner.encode("utf-8")) > 1023:
        raise MsrpNicknameMalformed("nickname longer than 1023 octets")
    return inner.replace('\\"', '"').replace("\\\\", "\\")


def nickname_key(nickname: str) -> str:
    """Comparison form of a nickname (simplified RFC 7700; see the module docstring)."""
    folded = unicodedata.normalize("NFC", nickname).casefold()
    return _SPACES_RE.sub(" ", folded).strip(" ")


@attrs.frozen
class NicknameDecision:
    """Accepted NICKNAME: the user's new nickname (``None``: removed, §7.3)."""

    nickname: str | None
    key: str | None


def decide_nickname(
    room: ChatRoom,
    user: str,
    use_nickname: str | None,
    in_use: Mapping[str, str],
    *,
    equal: UriEquality = same_uri,
) -> NicknameDecision:
    """Decide a NICKNAME request of ``user`` (an AoR) given ``in_use``: key → owner AoR.

    The same user may reuse its own nickname from another session (§7.1); anyone else
    gets 425, as does a reserved nickname.
    """
    if not room.nicknames:
        raise MsrpForbidden("nicknames are not allowed in this room")
    nickname = parse_use_nickname(use_nickname)
    if nickname == "":
        return NicknameDecision(None, None)
    key = nickname_key(nickname)
    if not key or any(unicodedata.category(ch) == "Cc" for ch in key):
        raise MsrpNicknameMalformed("nickname has no visible characters")
    if key in {nickname_key(word) for word in room.reserved_nicknames}:
        raise MsrpNicknameInUse("nickname is reserved")
    owner = in_use.get(key)
    if owner is not None and not equal(owner, user):
        raise MsrpNicknameInUse("nickname in use by another user")
    return NicknameDecision(nickname, key)
