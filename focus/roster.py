"""The conference event package (RFC 4575) over SUBSCRIBE/NOTIFY (RFC 6665), sans-IO.

Pure: no Twisted, no clock (``now`` is a parameter), no randomness.  Two parts:

Documents (RFC 4575 §4-§5)
    :class:`RoomSnapshot` is what the focus knows about a room at one instant: its URI,
    subject and one :class:`RosterMember` per participant leg.  :func:`full_document`
    renders a ``state="full"`` ``<conference-info>``; :func:`partial_document` renders
    only what changed between two snapshots (RFC 4575 §4.4: ``<users state="partial">``
    with ``<user>``/``<endpoint>`` elements that are "full", "partial" or "deleted",
    keyed by their ``entity`` per §4.5); :func:`deleted_document` says the conference
    ceased to exist.  A participant who joined from two user agents is one ``<user>``
    (its SIP identity) with two ``<endpoint>`` elements (RFC 4575 §5.6.6).

    Nicknames (RFC 7701 §7) have no element of their own in RFC 4575; the focus shows a
    participant's nickname as the endpoint's ``<display-text>`` (§5.7.1), falling back
    to the display name of its SIP From header.  A nickname change is therefore a
    partial notification of that endpoint.

Subscriptions (RFC 6665)
    :class:`SubscriptionTable` keeps one :class:`Subscription` per SUBSCRIBE dialog with
    its expiry as a deadline (``expires_at``), its own document version counter (RFC 4575
    §5.2: "a 32-bit monotonically increasing integer scoped within a subscription") and
    the last snapshot sent, so the next NOTIFY can be partial.  Every method returns the
    :class:`Notification` bodies to send; the service sends them with NOTIFY in the
    subscription's dialog and arms one timer at :meth:`SubscriptionTable.next_deadline`.

    :func:`check_subscribe` applies RFC 6665 §4.2.1.1 to a SUBSCRIBE's Event, Accept and
    Expires header values (489 Bad Event, 406 Not Acceptable, 423 Interval Too Brief with
    Min-Expires) and tells the expiry granted.  Who may subscribe is the policy's
    decision (``policies.may_watch``): participants, moderators and watchers.
"""

from __future__ import annotations

import enum
import math
import re
import xml.etree.ElementTree as ET  # we only build documents here, never parse
from collections.abc import Iterable

import attrs

__all__ = [
    "CONTENT_TYPE",
    "EVENT_PACKAGE",
    "NAMESPACE",
    "EndpointStatus",
    "JoiningMethod",
    "Notification",
    "RoomSnapshot",
    "RosterError",
    "RosterMember",
    "SubscribeRefused",
    "Subscription",
    "SubscriptionSettings",
    "SubscriptionTable",
    "check_subscribe",
    "deleted_document",
    "full_document",
    "partial_document",
]

NAMESPACE = "urn:ietf:params:xml:ns:conference-info"
"""RFC 4575 §4.2."""
CONTENT_TYPE = "application/conference-info+xml"
"""RFC 4575 §3.3 (the only body type of the package)."""
EVENT_PACKAGE = "conference"
"""RFC 4575 §3.1."""

_VERSION_LIMIT = 2**32
"""RFC 4575 §5.2: the version is a 32-bit integer."""


class RosterError(Exception):
    """Root of this module's errors."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SubscribeRefused(RosterError):
    """A SUBSCRIBE is refused; ``sip_status`` is the answer and ``headers`` the extra
    header fields it needs (Allow-Events for 489, Min-Expires for 423, Accept for 406)."""

    def __init__(
        self, sip_status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(reason)
        self.sip_status = sip_status
        self.headers = headers


# ------------------------------------------------------------------------------ model


class EndpointStatus(enum.Enum):
    """RFC 4575 §5.7.3 (the values the focus uses)."""

    CONNECTED = "connected"
    DIALING_IN = "dialing-in"
    DIALING_OUT = "dialing-out"
    ALERTING = "alerting"
    PENDING = "pending"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


class JoiningMethod(enum.Enum):
    """RFC 4575 §5.7.4."""

    DIALED_IN = "dialed-in"
    DIALED_OUT = "dialed-out"
    FOCUS_OWNER = "focus-owner"


@attrs.frozen
class RosterMember:
    """One participant leg as the roster shows it.

    ``user`` is the participant's authenticated SIP identity (the ``<user entity>``,
    RFC 4575 §5.6); ``endpoint`` identifies its leg under that user (``<endpoint
    entity>``, §5.7: "the Contact URI, GRUU, etc.", unique within the user); ``leg_id``
    is the focus's own name for the leg (not shown to subscribers).
    """

    leg_id: str
    user: str
    endpoint: str
    display_text: str | None = None
    status: EndpointStatus = EndpointStatus.CONNECTED
    joining: JoiningMethod = JoiningMethod.DIALED_IN


@attrs.frozen
class RoomSnapshot:
    """What the roster says about one room at one instant (members in join order)."""

    entity: str
    subject: str | None = None
    members: tuple[RosterMember, ...] = ()
    max_users: int | None = None

    @property
    def user_count(self) -> int:
        """Distinct users (RFC 4575 §5.5.1 counts users, not endpoints)."""
        return len({m.user for m in self.members})

    def users(self) -> dict[str, list[RosterMember]]:
        """Members grouped by user entity, in order of each user's first leg."""
        grouped: dict[str, list[RosterMember]] = {}
        for member in self.members:
            grouped.setdefault(member.user, []).append(member)
        return grouped


# -------------------------------------------------------------------------- documents


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _q(tag))
    element.text = _xml_safe(text)
    return element


_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot carry most C0 controls even escaped; a display name from a hostile
    From header must not make the document unparsable for every subscriber."""
    return _XML_UNSAFE.sub("\ufffd", text)


def _root(snapshot_entity: str, state: str, version: int) -> ET.Element:
    if not 0 <= version < _VERSION_LIMIT:
        raise RosterError("conference-info version out of the 32-bit range (RFC 4575 §5.2)")
    return ET.Element(
        _q("conference-info"),
        {"entity": _xml_safe(snapshot_entity), "state": state, "version": str(version)},
    )


def _description(root: ET.Element, snapshot: RoomSnapshot) -> None:
    description = ET.SubElement(root, _q("conference-description"))
    if snapshot.subject is not None:
        _text(description, "subject", snapshot.subject)
    if snapshot.max_users is not None:
        _text(description, "maximum-user-count", str(snapshot.max_users))
    # §5.3.4: the one medium of every room is IM over MSRP.
    media = ET.SubElement(description, _q("available-media"))
    entry = ET.SubElement(media, _q("entry"), {"label": "1"})
    _text(entry, "type", "message")
    _text(entry, "status", "sendrecv")


def _conference_state(root: ET.Element, snapshot: RoomSnapshot) -> None:
    state = ET.SubElement(root, _q("conference-state"))
    _text(state, "user-count", str(snapshot.user_count))
    _text(state, "active", "true" if snapshot.members else "false")
    _text(state, "locked", "false")


def _endpoint(parent: ET.Element, member: RosterMember) -> None:
    element = ET.SubElement(
        parent, _q("endpoint"), {"entity": _xml_safe(member.endpoint), "state": "full"}
    )
    if member.display_text is not None:
        _text(element, "display-text", member.display_text)
    _text(element, "status", member.status.value)
    _text(element, "joining-method", member.joining.value)
    media = ET.SubElement(element, _q("media"), {"id": "1"})
    _text(media, "type", "message")
    _text(media, "label", "1")
    _text(media, "status", "sendrecv")


def _user_display(members: list[RosterMember]) -> str | None:
    return next((m.display_text for m in members if m.display_text is not None), None)


def _user(parent: ET.Element, entity: str, members: list[RosterMember]) -> None:
    element = ET.SubElement(parent, _q("user"), {"entity": _xml_safe(entity), "state": "full"})
    display = _user_display(members)
    if display is not None:
        _text(element, "display-text", display)
    for member in members:
        _endpoint(element, member)


def _encode(root: ET.Element) -> bytes:
    ET.register_namespace("", NAMESPACE)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def full_document(snapshot: RoomSnapshot, version: int) -> bytes:
    """A complete ``state="full"`` document (RFC 4575 §5.2: it MUST include
    ``<conference-description>`` and ``<users>``)."""
    root = _root(snapshot.entity, "full", version)
    _description(root, snapshot)
    _conference_state(root, snapshot)
    users = ET.SubElement(root, _q("users"))
    for entity, members in snapshot.users().items():
        _user(users, entity, members)
    return _encode(root)


def deleted_document(entity: str, version: int) -> bytes:
    """The conference ceased to exist (RFC 4575 §5.2 ``state="deleted"``)."""
    return _encode(_root(entity, "deleted", version))


def partial_document(old: RoomSnapshot, new: RoomSnapshot, version: int) -> bytes | None:
    """Only what changed from ``old`` to ``new`` (RFC 4575 §4.4), or None when nothing
    the document shows changed.

    ``<conference-description>`` and ``<conference-state>`` cannot be partial: they are
    repeated whole when any part of them changed.  Under ``<users state="partial">`` a
    user who left is ``state="deleted"`` (no children, §4.4), a new user is "full", and a
    user whose legs changed is "partial" with the changed endpoints ("full") and the
    departed ones ("deleted").
    """
    root = _root(new.entity, "partial", version)
    changed = False
    if (old.subject, old.max_users) != (new.subject, new.max_users):
        _description(root, new)
        changed = True
    if (old.user_count, bool(old.members)) != (new.user_count, bool(new.members)):
        _conference_state(root, new)
        changed = True
    before, after = old.users(), new.users()
    users = ET.Element(_q("users"), {"state": "partial"})
    for entity, members in after.items():
        previous = before.get(entity)
        if previous is None:
            _user(users, entity, members)
            continue
        if previous == members:
            continue
        user = ET.SubElement(users, _q("user"), {"entity": _xml_safe(entity), "state": "partial"})
        display = _user_display(members)
        if display is not None and display != _user_display(previous):
            _text(user, "display-text", display)
        old_legs = {m.endpoint: m for m in previous}
        new_legs = {m.endpoint: m for m in members}
        for member in members:
            if old_legs.get(member.endpoint) != member:
                _endpoint(user, member)
        for endpoint in old_legs:
            if endpoint not in new_legs:
                ET.SubElement(
                    user, _q("endpoint"), {"entity": _xml_safe(endpoint), "state": "deleted"}
                )
    for entity in before:
        if entity not in after:
            ET.SubElement(users, _q("user"), {"entity": _xml_safe(entity), "state": "deleted"})
    if len(users):
        root.append(users)
        changed = True
    return _encode(root) if changed else None


# ----------------------------------------------------------------------- subscriptions


def _non_negative(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative integer")


@attrs.frozen
class SubscriptionSettings:
    """Bounds of the subscription table (seconds; RFC 6665 §4.2.1.1).

    ``min_expires`` below which a SUBSCRIBE gets 423 (a refresh storm guard; 0 would
    allow any), ``max_expires`` to which a longer request is shortened, ``default_expires``
    when the SUBSCRIBE has no Expires (RFC 4575 §3.7 recommends 3600), and
    ``max_subscriptions`` above which new subscriptions get 503.
    """

    min_expires: int = attrs.field(default=60, validator=_non_negative)
    max_expires: int = attrs.field(default=3600, validator=_non_negative)
    default_expires: int = attrs.field(default=3600, validator=_non_negative)
    max_subscriptions: int = attrs.field(default=1000, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need min_expires <= default_expires <= max_expires")


_EXPIRES_RE = re.compile(r"\s*(\d{1,10})\s*")


def _event_package(event: str) -> str:
    # RFC 6665 §8.2.1 / §7.2.1: Event = event-type *( SEMI event-param ); token compare
    # is case-sensitive for the package but we fold case like most stacks.
    return event.split(";", 1)[0].strip().lower()


def _accepts(accept: str | None) -> bool:
    if accept is None or not accept.strip():
        return True  # RFC 6665 §7.2: absent Accept means the package's default type
    for item in accept.split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in (CONTENT_TYPE, "application/*", "*/*"):
            return True
    return False


def check_subscribe(
    *, event: str | None, accept: str | None, expires: str | None, settings: SubscriptionSettings
) -> int:
    """Check a SUBSCRIBE's Event, Accept and Expires header values; return the expiry
    the focus grants (0 for a one-time fetch, RFC 6665 §4.4.3).

    Raises :class:`SubscribeRefused`: 489 Bad Event for another package (with
    Allow-Events, §8.3.2), 406 when Accept excludes conference-info, 400 for a malformed
    Expires, 423 Interval Too Brief with Min-Expires when the request is below the
    minimum (§4.2.1.1).  A request above ``max_expires`` is shortened, never refused.
    """
    if event is None or _event_package(event) != EVENT_PACKAGE:
        raise SubscribeRefused(
            489, "only the conference event package", (("Allow-Events", EVENT_PACKAGE),)
        )
    if not _accepts(accept):
        raise SubscribeRefused(406, "Accept excludes conference-info", (("Accept", CONTENT_TYPE),))
    if expires is None:
        return settings.default_expires
    m = _EXPIRES_RE.fullmatch(expires)
    if m is None:
        raise SubscribeRefused(400, "malformed Expires")
    value = int(m.group(1))
    if value == 0:
        return 0
    if value < settings.min_expires:
        raise SubscribeRefused(
            423, "subscription interval too brief", (("Min-Expires", str(settings.min_expires)),)
        )
    return min(value, settings.max_expires)


@attrs.define
class Subscription:
    """One conference-package subscription (one SUBSCRIBE dialog).

    ``key`` is the caller's name for the dialog; ``version`` the last version sent (the
    first NOTIFY carries 1); ``last`` the snapshot the subscriber now holds.
    """

    key: str
    room: str
    subscriber: str
    expires_at: float
    version: int = 0
    last: RoomSnapshot | None = None
    terminated: bool = False

    def remaining(self, now: float) -> int:
        """Seconds left, for ``Subscription-State: active;expires=`` (RFC 6665 §4.1.3)."""
        return max(0, math.ceil(self.expires_at - now))


@attrs.frozen
class Notification:
    """A NOTIFY to send in the dialog of subscription ``key``: the Subscription-State
    value (RFC 6665 §8.2.3), the Event value and the body."""

    key: str
    subscription_state: str
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    content_type: str = CONTENT_TYPE
    event: str = EVENT_PACKAGE

    @property
    def terminated(self) -> bool:
        return self.subscription_state.startswith("terminated")


class SubscriptionTable:
    """Every conference-package subscription of the focus, bounded in number."""

    def __init__(self, settings: SubscriptionSettings | None = None) -> None:
        self.settings = settings if settings is not None else SubscriptionSettings()
        self._subs: dict[str, Subscription] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, key: str) -> Subscription | None:
        return self._subs.get(key)

    def for_room(self, room: str) -> tuple[Subscription, ...]:
        return tuple(s for s in self._subs.values() if s.room == room)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` must run next (the earliest expiry), or None."""
        return min((s.expires_at for s in self._subs.values()), default=None)

    # -- changes ---------------------------------------------------------------------------

    def subscribe(
        self,
        key: str,
        *,
        room: str,
        subscriber: str,
        expires: int,
        snapshot: RoomSnapshot,
        now: float,
    ) -> Notification:
        """A new SUBSCRIBE (``expires`` from :func:`check_subscribe`) or a refresh of
        ``key``: the immediate NOTIFY with the full state (RFC 6665 §4.2.1.2; RFC 4575
        §3.7 full state on every refresh).  ``expires == 0`` is a fetch or an
        unsubscribe: the NOTIFY says ``terminated;reason=timeout`` and the
        subscription is forgotten (§4.4.3, §4.2.1.4)."""
        sub = self._subs.get(key)
        if sub is None:
            if expires and len(self._subs) >= self.settings.max_subscriptions:
                raise SubscribeRefused(503, "too many subscriptions")
            sub = Subscription(key=key, room=room, subscriber=subscriber, expires_at=now)
            if expires:
                self._subs[key] = sub
        sub.expires_at = now + expires
        if not expires:
            self._subs.pop(key, None)
            return self._full(sub, snapshot, "terminated;reason=timeout")
        return self._full(sub, snapshot, f"active;expires={expires}")

    def _full(self, sub: Subscription, snapshot: RoomSnapshot, state: str) -> Notification:
        sub.version = self._next_version(sub)
        sub.last = snapshot
        return Notification(sub.key, state, full_document(snapshot, sub.version))

    @staticmethod
    def _next_version(sub: Subscription) -> int:
        if sub.version + 1 >= _VERSION_LIMIT:
            raise RosterError("conference-info version exhausted")
        return sub.version + 1

    def changed(self, snapshot: RoomSnapshot, now: float) -> list[Notification]:
        """The room ``snapshot.entity`` changed (a join, a leave, a nickname): a partial
        NOTIFY for every subscription of the room whose view differs."""
        out: list[Notification] = []
        for sub in self.for_room(snapshot.entity):
            if sub.last is None:
                out.append(self._full(sub, snapshot, f"active;expires={sub.remaining(now)}"))
                continue
            version = self._next_version(sub)
            body = partial_document(sub.last, snapshot, version)
            if body is None:
                continue
            sub.version, sub.last = version, snapshot
            out.append(Notification(sub.key, f"active;expires={sub.remaining(now)}", body))
        return out

    def expire(self, now: float) -> list[Notification]:
        """End every subscription whose time is up (RFC 6665 §4.1.3:
        ``terminated;reason=timeout``); the body repeats the state the subscriber has."""
        out: list[Notification] = []
        for sub in [s for s in self._subs.values() if s.expires_at <= now]:
            out.append(self._terminate(sub, "timeout"))
        return out

    def terminate(self, key: str, reason: str = "noresource") -> Notification | None:
        """End one subscription (``reason`` per RFC 6665 §4.1.3: ``deactivated``,
        ``rejected`` when the policy no longer allows it, ``noresource``)."""
        sub = self._subs.get(key)
        return None if sub is None else self._terminate(sub, reason)

    def terminate_room(self, room: str, reason: str = "noresource") -> list[Notification]:
        """The room ended: every subscription to it ends with a deleted document."""
        return [self._terminate(sub, reason, deleted=True) for sub in self.for_room(room)]

    def forget(self, key: str) -> None:
        """Drop a subscription without a NOTIFY (its dialog is gone: 481 or timeout)."""
        self._subs.pop(key, None)

    def _terminate(self, sub: Subscription, reason: str, *, deleted: bool = False) -> Notification:
        self._subs.pop(sub.key, None)
        sub.terminated = True
        sub.version = self._next_version(sub)
        if deleted or sub.last is None:
            body = deleted_document(sub.room, sub.version)
        else:
            body = full_document(sub.last, sub.version)
        return Notification(sub.key, f"terminated;reason={reason}", body)

    def keys(self) -> Iterable[str]:
        return tuple(self._subs)
