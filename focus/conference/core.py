"""The conference: rooms, admission by policy, the relay decisions, leave, roster.

Pure and synchronous.  The service feeds it what happened (a caller was admitted, a
leg came up, a message arrived, someone left) with ``now`` and carries out what it
returns (send these bodies on those legs, answer with this status).  The RFC 7701
switch decisions themselves are :mod:`focus.msrp.chatroom`'s; this module supplies
them with the room's policy, the sender and the roster, and adds the per-sender rate
limit and the legacy (``require_cpim = false``) wrapping.

Dial-out, REFER and the roster NOTIFYs live in :mod:`focus.control`: a participant
carries its :class:`~focus.conference.participant.Direction`, a member the focus invited
is admitted with ``invited=True``, and every roster change bumps the room's ``version``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import attrs

from focus.keying import same_identity
from focus.msrp import (
    ChatRoom,
    CpimAddress,
    CpimMessage,
    Delivery,
    MsrpError,
    decide_nickname,
    is_cpim,
    route_message,
)
from focus.msrp import Participant as SwitchParticipant
from policies import Allowed, Identity, Policy, Refused, Room, find_room, may_join
from policies import PolicyError as UriError

from .errors import AdmissionRefused, ConferenceError, RelayRefused, UnknownLeg
from .participant import Capabilities, Direction, LegEvent, LegState, Participant, next_state
from .ratelimit import TokenBucket

__all__ = [
    "Conference",
    "Delivery",
    "Departure",
    "LiveRoom",
    "Relay",
    "Roster",
    "RosterEntry",
]

CPIM = "message/cpim"

#: RFC 3261 §19.1.4 identity comparison (``same_identity``) of the CPIM From/To values
#: against the room and the participants: the same few URIs come back with every
#: message, so their comparison is remembered (bounded; pure, so safe to cache).
_same_identity = lru_cache(maxsize=1024)(same_identity)


@attrs.frozen
class Relay:
    """Where one accepted message goes; ``skipped`` could not take its wrapped type.

    Each delivery's ``key`` is the leg id (``str``) of its recipient.
    """

    room_uri: str
    private: bool
    deliveries: tuple[Delivery, ...]
    skipped: tuple[str, ...] = ()
    wrapped: bool = False
    """True when a legacy sender's plain message was wrapped in CPIM by the focus."""


@attrs.frozen
class Departure:
    """A participant left: who, from where, and whether the room is now empty."""

    participant: Participant
    room_uri: str
    remaining: int


@attrs.frozen
class RosterEntry:
    leg_id: str
    uri: str
    display_name: str | None
    nickname: str | None
    state: LegState
    direction: Direction


@attrs.frozen
class Roster:
    """The participants of a room (RFC 4575 conference-info material for later)."""

    room_uri: str
    subject: str | None
    version: int
    entries: tuple[RosterEntry, ...]


@attrs.define
class LiveRoom:
    """A room with participants: its policy entry and who is in it."""

    room: Room
    participants: dict[str, Participant] = attrs.Factory(dict)
    version: int = 0
    # The switch's view of the room, rebuilt only after a join, leave, state,
    # capability or nickname change or a policy reload (see ``invalidate``).
    _chat: ChatRoom | None = attrs.field(default=None, init=False, repr=False)
    _views: dict[str, SwitchParticipant] | None = attrs.field(default=None, init=False, repr=False)
    _recipients: tuple[SwitchParticipant, ...] = attrs.field(default=(), init=False, repr=False)

    @property
    def uri(self) -> str:
        return str(self.room.uri)

    def chat(self) -> ChatRoom:
        if self._chat is None:
            s = self.room.settings
            self._chat = ChatRoom(
                uri=self.uri,
                max_message_size=s.max_message_size,
                private_messages=s.private_messages,
                nicknames=s.nicknames,
            )
        return self._chat

    def invalidate(self) -> None:
        """Forget the cached switch view (someone joined, left or changed)."""
        self._chat = None
        self._views = None
        self._recipients = ()

    def switch_view(self) -> tuple[dict[str, SwitchParticipant], tuple[SwitchParticipant, ...]]:
        """Every participant as the switch sees it, and those that receive now."""
        views = self._views
        if views is None:
            views = {leg: _switch_view(p) for leg, p in self.participants.items()}
            self._views = views
            self._recipients = tuple(
                views[leg] for leg, p in self.participants.items() if p.receives
            )
        return views, self._recipients


def _switch_view(p: Participant) -> SwitchParticipant:
    caps = p.capabilities
    return SwitchParticipant(
        key=p.leg_id,
        uris=(p.uri,),
        accept_types=caps.accept_types,
        accept_wrapped_types=caps.accept_wrapped_types,
        private_messages=caps.private_messages,
        nickname=p.nickname,
    )


class Conference:
    """Every room of the focus and every participant, by leg id."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._rooms: dict[Identity, LiveRoom] = {}
        #: The live rooms by the exact URI string participants carry (no re-parse per
        #: message); a miss falls back to parsing.
        self._by_uri: dict[str, LiveRoom] = {}
        self._legs: dict[str, Participant] = {}

    @property
    def policy(self) -> Policy:
        return self._policy

    def reload(self, policy: Policy) -> None:
        """Use a new policy for new admissions and, where the room still exists, for
        the rooms in progress (limits, rate, nicknames); calls are never dropped."""
        self._policy = policy
        for key, live in self._rooms.items():
            room = find_room(policy, key)
            if room is not None:
                live.room = room
            live.invalidate()

    # -- admission -----------------------------------------------------------------------

    def admit(
        self,
        *,
        request_uri: str,
        caller: str,
        leg_id: str,
        call_id: str,
        display_name: str | None = None,
        direction: Direction = Direction.DIAL_IN,
        invited: bool = False,
    ) -> Participant:
        """Admit ``caller`` to the room ``request_uri`` names, in state KEYING.

        Raises :class:`AdmissionRefused`: 404 when no room or ad-hoc rule matches, else
        the policy's 403/480/486 with its reason (``policies.may_join``).

        ``invited``: the focus itself called ``caller`` (its dial-out list, a REFER the
        policy allowed, the operator): the room's allow list does not apply, but a closed
        room (480), ``deny`` (403) and a full room (486) still do (RFC 4579 §5.5: the
        focus brings in whom it was asked to, within its policy).
        """
        if leg_id in self._legs:
            raise ConferenceError(f"leg id {leg_id} is already in use")
        room = find_room(self._policy, request_uri)
        if room is None:
            raise AdmissionRefused(404, "no such conference room")
        live = self._rooms.get(room.uri)
        count = len(live.participants) if live is not None else 0
        decision = may_join(room, caller, count)
        if invited and isinstance(decision, Refused) and decision.status == 403:
            decision = _invited_decision(room, caller, count)
        if not isinstance(decision, Allowed):
            raise AdmissionRefused(decision.status, decision.reason)
        if live is None:
            live = self._rooms[room.uri] = LiveRoom(room)
            self._by_uri[live.uri] = live
        rate = live.room.settings.rate_limit
        participant = Participant(
            leg_id=leg_id,
            uri=caller,
            room_uri=live.uri,
            call_id=call_id,
            bucket=TokenBucket(rate.messages_per_second, rate.burst),
            direction=direction,
            display_name=display_name,
        )
        live.participants[leg_id] = participant
        live.invalidate()
        self._legs[leg_id] = participant
        return participant

    # -- lookups -------------------------------------------------------------------------

    def participant(self, leg_id: str) -> Participant:
        try:
            return self._legs[leg_id]
        except KeyError:
            raise UnknownLeg(f"no participant with leg id {leg_id}") from None

    def room_of(self, leg_id: str) -> LiveRoom:
        return self._live(self.participant(leg_id).room_uri)

    def _live(self, room_uri: str) -> LiveRoom:
        live = self._by_uri.get(room_uri)
        if live is not None:
            return live
        try:
            key = Identity.parse(room_uri)
        except UriError as exc:
            raise ConferenceError("not a room URI") from exc
        live = self._rooms.get(key)
        if live is None:
            raise ConferenceError("no such live room")
        return live

    @property
    def rooms(self) -> tuple[LiveRoom, ...]:
        return tuple(self._rooms.values())

    @property
    def participants(self) -> tuple[Participant, ...]:
        return tuple(self._legs.values())

    # -- leg life ------------------------------------------------------------------------

    def set_capabilities(self, leg_id: str, capabilities: Capabilities) -> None:
        participant = self.participant(leg_id)
        participant.capabilities = capabilities
        self._live(participant.room_uri).invalidate()

    def advance(self, leg_id: str, event: LegEvent) -> LegState:
        """Move the leg along its state table; an undefined event ends it (GONE) and
        raises :class:`ConferenceError` — the caller then tears the leg down."""
        participant = self.participant(leg_id)
        try:
            participant.state = next_state(participant.state, event)
        except ConferenceError:
            participant.state = LegState.GONE
            self._live(participant.room_uri).invalidate()
            raise
        live = self._live(participant.room_uri)
        live.invalidate()
        if event is LegEvent.SESSION_BOUND:
            live.version += 1
        return participant.state

    def confirm(self, leg_id: str, dialog_id: object | None = None) -> None:
        """The SIP ACK arrived (the dialog is confirmed)."""
        participant = self.participant(leg_id)
        participant.confirmed = True
        if dialog_id is not None:
            participant.dialog_id = dialog_id

    def leave(self, leg_id: str) -> Departure:
        """Remove the participant everywhere; a room left empty is forgotten."""
        participant = self._legs.pop(leg_id, None)
        if participant is None:
            raise UnknownLeg(f"no participant with leg id {leg_id}")
        participant.state = LegState.GONE
        live = self._live(participant.room_uri)
        live.participants.pop(leg_id, None)
        live.invalidate()
        live.version += 1
        if not live.participants:
            del self._rooms[live.room.uri]
            for key in [k for k, v in self._by_uri.items() if v is live]:
                del self._by_uri[key]
        return Departure(participant, live.uri, len(live.participants))

    # -- relay ---------------------------------------------------------------------------

    def relay(self, leg_id: str, content_type: str | None, body: bytes, now: float) -> Relay:
        """Decide where a complete SEND from ``leg_id`` goes (RFC 7701 §6).

        Raises :class:`RelayRefused` with the MSRP status: 403 over the rate limit, or
        whatever :func:`focus.msrp.route_message` refuses (413, 415, 400, 403, 404, 428).
        A legacy sender (room ``require_cpim = false``) may send a plain type: the focus
        wraps it in CPIM From the sender To the room, so every recipient sees a normal
        chat-room message (and legacy recipients get it unwrapped again).
        """
        sender = self.participant(leg_id)
        live = self._live(sender.room_uri)
        if not sender.bucket.take(now):
            raise RelayRefused(403, "rate limit exceeded")
        settings = live.room.settings
        wrapped = False
        if not settings.require_cpim and content_type and not is_cpim(content_type):
            if len(body) > settings.max_message_size:
                raise RelayRefused(413, "message larger than the room allows")
            try:
                body = CpimMessage.build(
                    from_=CpimAddress(sender.uri),
                    to=(CpimAddress(live.uri),),
                    content_type=content_type,
                    content=body,
                ).encode()
            except MsrpError as exc:
                raise RelayRefused(exc.status, exc.reason) from None
            content_type, wrapped = CPIM, True
        views, recipients = live.switch_view()
        try:
            route = route_message(
                live.chat(),
                views[leg_id],
                recipients,
                content_type,
                body,
                equal=_same_identity,
            )
        except MsrpError as exc:
            raise RelayRefused(exc.status, exc.reason) from None
        return Relay(
            room_uri=live.uri,
            private=route.private,
            # focus.msrp's Delivery as is: its ``key`` is the recipient's leg id (the
            # switch views are keyed by leg id), a new message per copy (RFC 7701 §6.1).
            deliveries=route.deliveries,
            skipped=tuple(str(k) for k in route.skipped),
            wrapped=wrapped,
        )

    def nickname(self, leg_id: str, use_nickname: str | None) -> str | None:
        """Decide a NICKNAME request (RFC 7701 §7); returns the new nickname (None:
        removed).  Raises :class:`RelayRefused` 403/424/425."""
        participant = self.participant(leg_id)
        live = self._live(participant.room_uri)
        in_use = {
            p.nickname_key: p.uri
            for p in live.participants.values()
            if p.nickname_key is not None and p.leg_id != leg_id
        }
        try:
            decision = decide_nickname(
                live.chat(), participant.uri, use_nickname, in_use, equal=_same_identity
            )
        except MsrpError as exc:
            raise RelayRefused(exc.status, exc.reason) from None
        participant.nickname, participant.nickname_key = decision.nickname, decision.key
        live.invalidate()
        live.version += 1
        return decision.nickname

    # -- roster --------------------------------------------------------------------------

    def roster(self, room_uri: str) -> Roster:
        """The participants of a live room, in join order."""
        live = self._live(room_uri)
        return Roster(
            room_uri=live.uri,
            subject=live.room.subject,
            version=live.version,
            entries=tuple(_entry(p) for p in live.participants.values()),
        )

    def legs_in(self, room_uri: str) -> Iterable[str]:
        return tuple(self._live(room_uri).participants)


def _invited_decision(room: Room, caller: str, count: int) -> Allowed | Refused:
    """``may_join`` for a member the focus invited: only ``deny`` and the size count."""
    try:
        who = Identity.parse(caller)
    except UriError:
        return Refused(403, "caller identity is not a URI")
    if any(pattern.matches(who) for pattern in room.settings.deny):
        return Refused(403, "denied by room policy")
    if count >= room.settings.max_participants:
        return Refused(486, "room is full")
    return Allowed()


def _entry(p: Participant) -> RosterEntry:
    return RosterEntry(p.leg_id, p.uri, p.display_name, p.nickname, p.state, p.direction)
