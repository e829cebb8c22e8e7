"""Offer/answer (RFC 3264) for a focus that serves only ``TCP/TLS/MSRP`` message lines.

Answerer (dial-in), in three pure steps the conference layer drives:

1. :func:`classify_offer` gives every offered m-line a :class:`LineVerdict` with a reason;
   :func:`examine_offer` also picks the line(s) to accept and raises
   :class:`SdpNegotiationError` (SIP 488) when the offer cannot be accepted.
2. The caller runs the key management (MIKEY-TICKET) on each accepted line's
   :class:`KeyMgmt` and allocates its listening port and MSRP URI.
3. :func:`build_answer` writes the answer: rejected lines echoed with port 0 (RFC 3264
   §6), accepted ones with ``a=path``, ``a=accept-types``, ``a=accept-wrapped-types``,
   ``a=max-size``, ``a=setup``, ``a=chatroom``, media-level ``a=key-mgmt`` (PROFILE §8),
   and the ``o=`` line versioned against the previous answer (RFC 3264 §8, RFC 4975 §8.4).

Offerer (dial-out): :func:`build_offer` writes ``m=message <port> TCP/TLS/MSRP *`` lines
with ``a=setup:actpass`` and ``a=key-mgmt``; :func:`interpret_answer` reads the answer
back (accepted lines, the focus's transport role, the peer's path and key-mgmt data).

Setup roles (RFC 4145 §4.1, RFC 6135 §4.2, PROFILE §8): the focus answers ``passive`` to
``actpass`` or ``active`` (or to no ``a=setup``: the RFC 4145 default offer is ``active``),
and ``active`` to ``passive``.  The active side opens the TCP connection, is the TLS client
and sends the first MSRP SEND (RFC 6135 §6).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence

import attrs

from focus.sdp.description import (
    Attribute,
    Connection,
    Media,
    Origin,
    SessionDescription,
    TimeDescription,
)
from focus.sdp.errors import (
    WARN_INCOMPATIBLE_MEDIA_FORMAT,
    WARN_INCOMPATIBLE_PROTOCOL,
    WARN_MEDIA_TYPE_NOT_AVAILABLE,
    WARN_MISCELLANEOUS,
    SdpError,
    SdpNegotiationError,
)
from focus.sdp.msrp import (
    MEDIA_MESSAGE,
    PROTO_MSRP,
    PROTO_MSRP_TLS,
    Chatroom,
    KeyMgmt,
    MsrpUri,
    SetupRole,
    accept_types,
    accept_wrapped_types,
    accepts_media_type,
    address_matches,
    chatroom,
    effective_connection,
    effective_key_mgmt,
    effective_setup,
    format_list,
    format_path,
    has_msrp_cema,
    key_mgmt_protocol_list,
    max_size,
    path,
)

__all__ = [
    "DISCARD_PORT",
    "AnswerResult",
    "AnsweredLine",
    "LineVerdict",
    "LocalMedia",
    "MsrpCapabilities",
    "OfferExamination",
    "OfferedLine",
    "build_answer",
    "build_offer",
    "classify_offer",
    "examine_offer",
    "interpret_answer",
]

DISCARD_PORT = 9
"""RFC 4145 §4.1: the ``active`` end SHOULD put port 9 on its m-line."""

CPIM = "message/cpim"


class LineVerdict(enum.Enum):
    """What the focus makes of one offered m-line."""

    ACCEPTED = "accepted"
    SURPLUS = "surplus"  # usable, but the focus already accepted enough lines
    DISABLED = "disabled"  # port 0 in the offer: already rejected (RFC 3264 §8.2)
    NOT_MESSAGE = "not-message"  # audio, video, ... (RTP or anything not m=message)
    NOT_TLS = "not-tls"  # TCP/MSRP: the focus accepts TCP only over TLS (DESIGN)
    UNSUPPORTED_PROTOCOL = "unsupported-protocol"  # m=message over some other proto
    BAD_ATTRIBUTE = "bad-attribute"  # a=path, a=accept-types, a=setup ... unreadable
    NO_CPIM = "no-cpim"  # accept-types lacks message/cpim (RFC 7701 §5)
    NO_KEY_MGMT = "no-key-mgmt"  # no a=key-mgmt at either level (PROFILE §8)
    OTHER_KEY_MGMT = "other-key-mgmt"  # only protocols other than mikey
    BAD_KEY_MGMT = "bad-key-mgmt"  # a=key-mgmt malformed or not base64 (RFC 4567 §3.1)
    ADDRESS_MISMATCH = "address-mismatch"  # c/m-line vs a=path without CEMA (RFC 6714 §4.3)

    @property
    def usable(self) -> bool:
        return self in (LineVerdict.ACCEPTED, LineVerdict.SURPLUS)


@attrs.frozen
class MsrpCapabilities:
    """What the focus declares on each MSRP line it sends (RFC 4975 §8.6, RFC 7701 §8).

    Defaults follow RFC 7701 §5: top-level ``message/cpim`` only, anything wrapped inside.
    A legacy room (policy ``require_cpim = false``) adds its plain types to
    ``accept_types``.
    """

    accept_types: tuple[str, ...] = (CPIM,)
    accept_wrapped_types: tuple[str, ...] = ("*",)
    max_size: int | None = None
    chatroom: Chatroom | None = attrs.field(
        factory=lambda: Chatroom.declare(nicknames=True, private_messages=True)
    )

    def attributes(self) -> list[Attribute]:
        attributes = [Attribute("accept-types", format_list(self.accept_types))]
        if self.accept_wrapped_types:
            attributes.append(
                Attribute("accept-wrapped-types", format_list(self.accept_wrapped_types))
            )
        if self.max_size is not None:
            attributes.append(Attribute("max-size", str(self.max_size)))
        if self.chatroom is not None:
            attributes.append(self.chatroom.attribute())
        return attributes


def _secure_path(_inst: object, _attribute: object, value: tuple[MsrpUri, ...]) -> None:
    if not value or any(u.port is None or not u.secure for u in value):
        raise ValueError("a TCP/TLS/MSRP path needs msrps URIs with ports (RFC 4975 §8.2)")


@attrs.frozen
class LocalMedia:
    """The focus's side of one MSRP line: its ``a=path`` (the focus's own URI last) and the
    key management message it sends there (a MIKEY TRANSFER_INIT in an offer, a
    TRANSFER_RESP in an answer)."""

    path: tuple[MsrpUri, ...] = attrs.field(validator=_secure_path)
    key_mgmt: KeyMgmt


@attrs.frozen
class OfferedLine:
    """One offered m-line and the focus's verdict on it."""

    index: int
    media: Media
    verdict: LineVerdict
    reason: str
    focus_role: SetupRole | None = None
    """ACTIVE or PASSIVE: the focus's transport (and TLS client/server) role."""
    peer_path: tuple[MsrpUri, ...] = ()
    key_mgmt: KeyMgmt | None = None
    """The offered key management message of the focus's protocol (``mikey``)."""
    key_mgmt_ids: str = ""
    """``;``-separated KMPIDs offered for this line, for the MIKEY "SDP IDs" check."""
    key_mgmt_level: str | None = None
    accept_types: tuple[str, ...] = ()
    accept_wrapped_types: tuple[str, ...] = ()
    max_size: int | None = None
    chatroom: Chatroom | None = None
    cema: bool = False
    """Whether the answer carries ``a=msrp-cema`` (RFC 6714 §4.3)."""
    connect_to: tuple[str, int] | None = None
    """Where the focus connects when it is active: the c/m-line under CEMA (RFC 6714
    §4.3), else the first hop of the peer's path (RFC 4975 §8.3)."""


@attrs.frozen
class OfferExamination:
    """The offer and every line's verdict; ``accepted`` are the lines to answer."""

    offer: SessionDescription
    lines: tuple[OfferedLine, ...]

    @property
    def accepted(self) -> tuple[OfferedLine, ...]:
        return tuple(line for line in self.lines if line.verdict is LineVerdict.ACCEPTED)


def _focus_role_as_answerer(offered: SetupRole | None) -> SetupRole:
    # RFC 4145 §4.1 table; absent means "active" (the RFC 4145 default offer and the
    # RFC 4975 §5.4 model where the offerer connects).  PROFILE §8 fixes the choice.
    if offered is SetupRole.PASSIVE:
        return SetupRole.ACTIVE
    return SetupRole.PASSIVE


def _classify_line(
    index: int,
    media: Media,
    offer: SessionDescription,
    *,
    require_cpim: bool,
    key_mgmt_protocol: str,
) -> OfferedLine:
    def verdict(kind: LineVerdict, reason: str) -> OfferedLine:
        return OfferedLine(index, media, kind, reason)

    if media.port == 0:
        return verdict(LineVerdict.DISABLED, "m-line disabled with port 0 in the offer")
    if media.media.lower() != MEDIA_MESSAGE:
        return verdict(LineVerdict.NOT_MESSAGE, f"media {media.media[:20]} not supported")
    proto = media.proto.upper()
    if proto == PROTO_MSRP:
        return verdict(LineVerdict.NOT_TLS, "TCP/MSRP without TLS is refused; offer TCP/TLS/MSRP")
    if proto != PROTO_MSRP_TLS:
        return verdict(LineVerdict.UNSUPPORTED_PROTOCOL, f"protocol {media.proto[:30]} refused")
    # Key management first: RFC 4567 §4.1.1 makes a broken key-mgmt fatal for the session.
    try:
        keys, level = effective_key_mgmt(media, offer)
    except SdpError as exc:
        return verdict(LineVerdict.BAD_KEY_MGMT, exc.reason)
    if not keys:
        return verdict(LineVerdict.NO_KEY_MGMT, "no a=key-mgmt for the TCP/TLS/MSRP line")
    ours = next((k for k in keys if k.protocol_id == key_mgmt_protocol), None)
    if ours is None:
        return verdict(
            LineVerdict.OTHER_KEY_MGMT, f"a=key-mgmt offers no {key_mgmt_protocol} message"
        )
    try:
        peer_path = path(media)
        if not all(u.secure for u in peer_path):
            return verdict(LineVerdict.BAD_ATTRIBUTE, "a=path: TCP/TLS/MSRP needs msrps URIs")
        types = accept_types(media)
        wrapped = accept_wrapped_types(media)
        size = max_size(media)
        room = chatroom(media)
        offered_role = effective_setup(media, offer)
    except SdpError as exc:
        return verdict(LineVerdict.BAD_ATTRIBUTE, exc.reason)
    if require_cpim and not accepts_media_type(types, CPIM):
        return verdict(LineVerdict.NO_CPIM, "accept-types lacks message/cpim (RFC 7701 §5)")
    role = _focus_role_as_answerer(offered_role)
    connection = effective_connection(media, offer)
    cema_offered = has_msrp_cema(media)
    # RFC 6714 §4.3: without CEMA, c/m-line and path must agree, else a middlebox changed
    # the c/m-line without anchoring MSRP.  Checked only where the offerer claims to
    # listen (actpass/passive): an active offerer puts port 9 there (RFC 4145 §4.1).
    if (
        not cema_offered
        and offered_role in (SetupRole.ACTPASS, SetupRole.PASSIVE)
        and address_matches(connection, media.port, peer_path[0]) is False
    ):
        return verdict(
            LineVerdict.ADDRESS_MISMATCH,
            "c/m-line does not match a=path and no a=msrp-cema (RFC 6714 §4.3)",
        )
    # RFC 6714 §4.3 fallback 2: an offerer behind a relay that becomes active gets no CEMA.
    cema = cema_offered and not (len(peer_path) > 1 and role is SetupRole.PASSIVE)
    connect_to: tuple[str, int] | None = None
    if role is SetupRole.ACTIVE:
        if cema and connection is not None:
            connect_to = (connection.address.split("/", 1)[0], media.port)
        else:
            first = peer_path[0]
            assert first.port is not None  # parse_path requires ports
            connect_to = (first.bare_host, first.port)
    return OfferedLine(
        index,
        media,
        LineVerdict.ACCEPTED,
        "usable TCP/TLS/MSRP line",
        focus_role=role,
        peer_path=peer_path,
        key_mgmt=ours,
        key_mgmt_ids=key_mgmt_protocol_list(keys),
        key_mgmt_level=level,
        accept_types=types,
        accept_wrapped_types=wrapped,
        max_size=size,
        chatroom=room,
        cema=cema,
        connect_to=connect_to,
    )


def classify_offer(
    offer: SessionDescription,
    *,
    max_accepted: int = 1,
    require_cpim: bool = True,
    key_mgmt_protocol: str = "mikey",
) -> OfferExamination:
    """Give every offered m-line a verdict; the first ``max_accepted`` usable lines, in
    m-line order, are ACCEPTED and later usable ones SURPLUS.  Never raises for a bad
    line: the verdict says why."""
    lines: list[OfferedLine] = []
    taken = 0
    for index, media in enumerate(offer.media):
        line = _classify_line(
            index, media, offer, require_cpim=require_cpim, key_mgmt_protocol=key_mgmt_protocol
        )
        if line.verdict is LineVerdict.ACCEPTED:
            if taken >= max_accepted:
                line = attrs.evolve(
                    line, verdict=LineVerdict.SURPLUS, reason="focus accepts fewer MSRP lines"
                )
            else:
                taken += 1
        lines.append(line)
    return OfferExamination(offer, tuple(lines))


_WARN_FOR = {
    LineVerdict.NOT_MESSAGE: WARN_MEDIA_TYPE_NOT_AVAILABLE,
    LineVerdict.NOT_TLS: WARN_INCOMPATIBLE_PROTOCOL,
    LineVerdict.UNSUPPORTED_PROTOCOL: WARN_INCOMPATIBLE_PROTOCOL,
    LineVerdict.NO_CPIM: WARN_INCOMPATIBLE_MEDIA_FORMAT,
}
# When nothing is usable, the most specific complaint wins (the line that came closest).
_PRIORITY = [
    LineVerdict.BAD_KEY_MGMT,
    LineVerdict.OTHER_KEY_MGMT,
    LineVerdict.NO_KEY_MGMT,
    LineVerdict.ADDRESS_MISMATCH,
    LineVerdict.NO_CPIM,
    LineVerdict.BAD_ATTRIBUTE,
    LineVerdict.NOT_TLS,
    LineVerdict.UNSUPPORTED_PROTOCOL,
    LineVerdict.NOT_MESSAGE,
    LineVerdict.DISABLED,
]


def examine_offer(
    offer: SessionDescription,
    *,
    max_accepted: int = 1,
    require_cpim: bool = True,
    key_mgmt_protocol: str = "mikey",
) -> OfferExamination:
    """Classify the offer and insist that it can be accepted.

    Raises :class:`SdpNegotiationError` (488, with the reason for the Warning header) when
    no line is usable, and also when any TCP/TLS/MSRP line carries a malformed key-mgmt
    attribute: RFC 4567 §4.1.1 "If errors occur ... the session SHALL be aborted".
    """
    examination = classify_offer(
        offer,
        max_accepted=max_accepted,
        require_cpim=require_cpim,
        key_mgmt_protocol=key_mgmt_protocol,
    )
    try:
        # Session-level key-mgmt applies to every line without its own (RFC 4567 §3.1).
        tuple(KeyMgmt.parse(a.value or "") for a in offer.get_attributes("key-mgmt"))
    except SdpError as exc:
        raise SdpNegotiationError(f"session level: {exc.reason}") from None
    for line in examination.lines:
        if line.verdict is LineVerdict.BAD_KEY_MGMT:
            raise SdpNegotiationError(f"m-line {line.index + 1}: {line.reason}")
    if examination.accepted:
        return examination
    if not examination.lines:
        raise SdpNegotiationError(
            "offer has no media lines", warn_code=WARN_MEDIA_TYPE_NOT_AVAILABLE
        )
    worst = min(examination.lines, key=lambda line: _PRIORITY.index(line.verdict))
    raise SdpNegotiationError(
        f"m-line {worst.index + 1}: {worst.reason}",
        warn_code=_WARN_FOR.get(worst.verdict, WARN_MISCELLANEOUS),
    )


# -- building descriptions ---------------------------------------------------------------


def _connection_for(host: str) -> Connection:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return Connection(host, "IN", "IP4")
    return Connection(str(ip), "IN", "IP6" if ip.version == 6 else "IP4")


def _msrp_media(
    local: LocalMedia, role: SetupRole, capabilities: MsrpCapabilities, *, cema: bool
) -> tuple[Media, Connection]:
    own = local.path[-1]
    assert own.port is not None
    # RFC 4975 §8.1: the m-line port mirrors the path URI; RFC 4145 §4.1: the active end
    # uses the discard port instead.
    port = DISCARD_PORT if role is SetupRole.ACTIVE else own.port
    attributes = [Attribute("path", format_path(local.path)), *capabilities.attributes()]
    attributes.append(role.attribute())
    if cema:
        attributes.append(Attribute("msrp-cema"))
    attributes.append(local.key_mgmt.attribute())
    media = Media(MEDIA_MESSAGE, port, PROTO_MSRP_TLS, ("*",), attributes=tuple(attributes))
    # RFC 4975 §8.1: c= carries the host "from the MSRP URI identifying the endpoint in
    # its path attribute" (the rightmost one; the focus uses no relays, RFC 4976).
    return media, _connection_for(own.bare_host)


def _assemble(
    medias: Sequence[tuple[Media, Connection | None]],
    *,
    origin: Origin,
    session_name: str,
    times: tuple[TimeDescription, ...],
    previous: SessionDescription | None,
) -> SessionDescription:
    session_connection = next((c for _m, c in medias if c is not None), None)
    final = tuple(
        m if c is None or c == session_connection else attrs.evolve(m, connections=(c,))
        for m, c in medias
    )
    description = SessionDescription(
        origin=origin,
        session_name=session_name,
        connection=session_connection,
        times=times,
        media=final,
    )
    return _versioned(description, previous)


def _versioned(
    description: SessionDescription, previous: SessionDescription | None
) -> SessionDescription:
    """RFC 3264 §8 and RFC 4975 §8.4: a re-offer or re-answer keeps the previous ``o=``
    identity; the version stays when nothing changed and increments otherwise."""
    if previous is None:
        return description
    same = attrs.evolve(description, origin=previous.origin)
    if same == previous:
        return same
    return attrs.evolve(description, origin=previous.origin.next_version())


def build_answer(
    examination: OfferExamination,
    local: Mapping[int, LocalMedia],
    *,
    origin: Origin,
    capabilities: MsrpCapabilities = MsrpCapabilities(),
    session_name: str = "-",
    previous: SessionDescription | None = None,
) -> SessionDescription:
    """The answer to an examined offer.

    ``local`` maps the index of every ACCEPTED line to the focus's path and key-mgmt
    response for it.  Every other line is rejected with port 0, echoing the offered media,
    proto and formats (RFC 3264 §6).  ``origin`` is used for a first answer; with
    ``previous`` (the last answer in this dialog) the ``o=`` line is versioned instead.
    """
    accepted = {line.index for line in examination.accepted}
    if set(local) != accepted:
        raise ValueError("local media must be given for exactly the accepted lines")
    medias: list[tuple[Media, Connection | None]] = []
    for line in examination.lines:
        if line.index in accepted:
            assert line.focus_role is not None
            media, connection = _msrp_media(
                local[line.index], line.focus_role, capabilities, cema=line.cema
            )
            medias.append((media, connection))
        else:
            offered = line.media
            medias.append((Media(offered.media, 0, offered.proto, offered.formats), None))
    # RFC 3264 §6: "The "t=" line in the answer MUST equal that of the offer."
    times = examination.offer.times or (TimeDescription(),)
    return _assemble(
        medias, origin=origin, session_name=session_name, times=times, previous=previous
    )


def build_offer(
    local: Sequence[LocalMedia],
    *,
    origin: Origin,
    capabilities: MsrpCapabilities = MsrpCapabilities(),
    session_name: str = "-",
    previous: SessionDescription | None = None,
) -> SessionDescription:
    """A dial-out offer: one ``m=message <port> TCP/TLS/MSRP *`` line per ``local`` entry,
    each with ``a=setup:actpass`` (RFC 6135 §4.2.2: the focus listens on the path's port)
    and its media-level ``a=key-mgmt`` (PROFILE §8)."""
    if not local:
        raise ValueError("an offer needs at least one MSRP line")
    medias = [_msrp_media(item, SetupRole.ACTPASS, capabilities, cema=False) for item in local]
    return _assemble(
        [(m, c) for m, c in medias],
        origin=origin,
        session_name=session_name,
        times=(TimeDescription(),),
        previous=previous,
    )


# -- reading an answer to our offer ------------------------------------------------------


@attrs.frozen
class AnsweredLine:
    """One line of the answer to the focus's offer."""

    index: int
    accepted: bool
    focus_role: SetupRole | None = None
    peer_path: tuple[MsrpUri, ...] = ()
    key_mgmt: KeyMgmt | None = None
    key_mgmt_ids: str = ""
    accept_types: tuple[str, ...] = ()
    accept_wrapped_types: tuple[str, ...] = ()
    max_size: int | None = None
    chatroom: Chatroom | None = None
    connect_to: tuple[str, int] | None = None


@attrs.frozen
class AnswerResult:
    lines: tuple[AnsweredLine, ...]

    @property
    def accepted(self) -> tuple[AnsweredLine, ...]:
        return tuple(line for line in self.lines if line.accepted)


def _focus_role_as_offerer(answered: SetupRole | None) -> SetupRole:
    # RFC 4145 §4.1: to our actpass the answer is active or passive; absent means the
    # default answer "passive" (and RFC 4975 §5.4: the offerer connects).
    if answered is SetupRole.ACTIVE:
        return SetupRole.PASSIVE
    if answered is SetupRole.ACTPASS:
        raise SdpNegotiationError("a=setup:actpass is not a valid answer (RFC 4145 §4.1)")
    return SetupRole.ACTIVE


def interpret_answer(
    offer: SessionDescription,
    answer: SessionDescription,
    *,
    require_cpim: bool = True,
    key_mgmt_protocol: str = "mikey",
) -> AnswerResult:
    """Read the answer to a :func:`build_offer` offer.

    Raises :class:`SdpNegotiationError` when the answer breaks RFC 3264 §6 (different number
    of m-lines, changed media or proto), when an accepted line lacks a readable path, an
    ``msrps`` path, message/cpim (if required) or a key-mgmt message of our protocol, and
    when every line was rejected.
    """
    if len(answer.media) != len(offer.media):
        raise SdpNegotiationError("answer has a different number of m-lines (RFC 3264 §6)")
    lines: list[AnsweredLine] = []
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        where = f"m-line {index + 1}"
        if theirs.media.lower() != ours.media.lower() or theirs.proto.upper() != (
            ours.proto.upper()
        ):
            raise SdpNegotiationError(f"{where}: answer changed media or proto (RFC 3264 §6)")
        if theirs.port == 0 or ours.port == 0:
            lines.append(AnsweredLine(index, accepted=False))
            continue
        try:
            peer_path = path(theirs)
            types = accept_types(theirs)
            wrapped = accept_wrapped_types(theirs)
            size = max_size(theirs)
            room = chatroom(theirs)
            role = _focus_role_as_offerer(effective_setup(theirs, answer))
            keys, _level = effective_key_mgmt(theirs, answer)
        except SdpNegotiationError as exc:
            raise SdpNegotiationError(f"{where}: {exc.reason}", warn_code=exc.warn_code) from None
        if not all(u.secure for u in peer_path):
            raise SdpNegotiationError(f"{where}: a=path: TCP/TLS/MSRP needs msrps URIs")
        if require_cpim and not accepts_media_type(types, CPIM):
            raise SdpNegotiationError(
                f"{where}: accept-types lacks message/cpim (RFC 7701 §5)",
                warn_code=WARN_INCOMPATIBLE_MEDIA_FORMAT,
            )
        key = next((k for k in keys if k.protocol_id == key_mgmt_protocol), None)
        if key is None:
            raise SdpNegotiationError(f"{where}: answer carries no {key_mgmt_protocol} key-mgmt")
        connect_to: tuple[str, int] | None = None
        if role is SetupRole.ACTIVE:
            first = peer_path[0]
            assert first.port is not None
            connect_to = (first.bare_host, first.port)
        lines.append(
            AnsweredLine(
                index,
                accepted=True,
                focus_role=role,
                peer_path=peer_path,
                key_mgmt=key,
                key_mgmt_ids=key_mgmt_protocol_list(keys),
                accept_types=types,
                accept_wrapped_types=wrapped,
                max_size=size,
                chatroom=room,
                connect_to=connect_to,
            )
        )
    result = AnswerResult(tuple(lines))
    if not result.accepted:
        raise SdpNegotiationError("the answer rejected every MSRP line")
    return result
