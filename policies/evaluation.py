"""Policy decisions: which room a Request-URI names and who may do what in it.

Every function is pure and total: URIs that cannot be parsed are simply not matched
(and refused where a decision is asked for), so a hostile From header cannot make the
evaluation raise in the middle of a call.
"""

from __future__ import annotations

import attrs

from policies.errors import PolicyError
from policies.model import DialOutMember, Policy, RateLimit, Room
from policies.uri import Identity, UriPattern

__all__ = [
    "Allowed",
    "Decision",
    "Limits",
    "Refused",
    "dial_out_members",
    "find_room",
    "is_moderator",
    "limits",
    "may_invite",
    "may_join",
    "may_watch",
]


@attrs.frozen
class Allowed:
    """The caller may join."""


@attrs.frozen
class Refused:
    """The caller may not join; ``status`` is the SIP final response to send (RFC 3261
    §21.4: 403 Forbidden, 480 Temporarily Unavailable, 486 Busy Here) and ``reason`` a
    short text for logs and a Warning header (no secrets: it names policy, not people)."""

    status: int
    reason: str


Decision = Allowed | Refused


@attrs.frozen
class Limits:
    """The per-room limits the focus enforces on a leg."""

    max_participants: int
    max_message_size: int
    rate_limit: RateLimit
    leg_bind_timeout: float


def _identity(uri: Identity | str) -> Identity | None:
    if isinstance(uri, Identity):
        return uri
    try:
        return Identity.parse(uri)
    except PolicyError:
        return None


def _any(patterns: tuple[UriPattern, ...], who: Identity) -> bool:
    return any(p.matches(who) for p in patterns)


def find_room(policy: Policy, request_uri: Identity | str) -> Room | None:
    """The room a Request-URI names: a static room first, else the first matching ad-hoc
    rule (a room value made from it), else None (answer 404)."""
    target = _identity(request_uri)
    if target is None:
        return None
    for room in policy.rooms:
        if room.uri == target:
            return room
    for rule in policy.adhoc:
        if rule.pattern.matches(target):
            return Room(
                uri=target,
                settings=rule.settings,
                display_name=rule.display_name,
                subject=rule.subject,
                adhoc=rule,
            )
    return None


def is_moderator(room: Room, uri: Identity | str) -> bool:
    """Whether ``uri`` may remove participants (REFER with method=BYE, RFC 4579 §5.6)."""
    who = _identity(uri)
    return who is not None and _any(room.settings.moderators, who)


def _is_dial_out_member(room: Room, who: Identity) -> bool:
    return any(member.uri == who for member in room.dial_out)


def may_join(room: Room, caller_uri: Identity | str, current_count: int) -> Decision:
    """May ``caller_uri`` join ``room``, which has ``current_count`` participants now?

    Order: a disabled room refuses everyone (480); ``deny`` wins over everything (403);
    the caller must match ``allow``, be a moderator or a dial-out member (403), or for an
    ad-hoc room one of the rule's ``creators``; the first caller of an ad-hoc room must
    be a creator (403); a full room refuses with 486 Busy Here.
    """
    settings = room.settings
    if not settings.enabled:
        return Refused(480, "room is closed")
    who = _identity(caller_uri)
    if who is None:
        return Refused(403, "caller identity is not a URI")
    if _any(settings.deny, who):
        return Refused(403, "denied by room policy")
    creator = room.adhoc is not None and _any(room.adhoc.creators, who)
    if room.adhoc is not None and current_count == 0:
        if not creator:
            return Refused(403, "not allowed to create this ad-hoc room")
    elif not (
        creator
        or _any(settings.allow, who)
        or _any(settings.moderators, who)
        or _is_dial_out_member(room, who)
    ):
        return Refused(403, "not on the room's allow list")
    if current_count >= settings.max_participants:
        return Refused(486, "room is full")
    return Allowed()


def dial_out_members(room: Room) -> tuple[DialOutMember, ...]:
    """The members the focus invites, each with its retry policy (RFC 4579 §5.4)."""
    return room.dial_out


def may_invite(room: Room, uri: Identity | str) -> bool:
    """Whether ``uri`` may ask the focus to invite someone (REFER, RFC 4579 §5.5):
    moderators always, and whoever matches ``may_invite``."""
    who = _identity(uri)
    if who is None:
        return False
    return _any(room.settings.may_invite, who) or _any(room.settings.moderators, who)


def may_watch(room: Room, uri: Identity | str, *, is_participant: bool = False) -> bool:
    """Whether ``uri`` may SUBSCRIBE to the room's roster (RFC 4575): participants,
    moderators and whoever matches ``watchers``; never someone the room denies."""
    who = _identity(uri)
    if who is None or _any(room.settings.deny, who):
        return False
    return (
        is_participant or _any(room.settings.watchers, who) or _any(room.settings.moderators, who)
    )


def limits(room: Room) -> Limits:
    """The limits the focus enforces in ``room``."""
    s = room.settings
    return Limits(s.max_participants, s.max_message_size, s.rate_limit, s.leg_bind_timeout)
