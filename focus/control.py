"""The focus's control plane: dial-out, REFER, the conference event package, live policy
reload, the admin backend and the metrics, wired around the dial-in service.

The dial-in service (:mod:`focus.service`) owns calls, legs and relaying.  This module
adds what operators and participants steer the conference with, and keeps every
decision in the pure modules (:mod:`focus.roster`, :mod:`focus.refer`, :mod:`policies`,
:mod:`focus.dialout`'s helpers):

* **Events in.**  The service reports what happens through its :class:`EventLog`
  (``bound``, ``leave``, ``nickname``, ``join_refused``, ``key_failure``…).  An
  :class:`EventTap` is that log plus listeners: the control plane learns of joins and
  leaves there (roster NOTIFYs, dial-out completion) and the metrics count them, with
  no second path through the service's code.
* **SUBSCRIBE** (RFC 6665, RFC 4575) to a room URI: Event ``conference`` only; allowed
  for participants, moderators and watchers (``policies.may_watch``, else 403); 200 with
  Expires, a new dialog, the immediate full NOTIFY, partial NOTIFYs on every join,
  leave and nickname change, ``terminated;reason=timeout`` at expiry (one timer at the
  table's earliest deadline), ``rejected`` when a reload takes the right away.
* **REFER** (RFC 3515, RFC 4579 §5.5/§5.11) to a room URI or inside a participant's
  dialog: 202, then NOTIFYs with sipfrag bodies while the focus dials the target out
  (100, 180, final), or BYE to the target for ``method=BYE`` from a moderator; refusals
  (400/403/404/416) as the final response.
* **Dial-out host**: :meth:`ConferenceControl.dial_out_answered` admits a member the
  :class:`~focus.dialout.Dialer` reached and keyed, builds its leg in the answer's role
  and lets the service run it like a dial-in leg; the attempt succeeds at ``bound``.
* **Reload**: :meth:`ConferenceControl.apply_policy` puts a new policy in force without
  dropping a leg; participants the new policy no longer admits get BYE with a reason;
  members added to a room's ``dial_out`` list are dialled, removed ones stop being
  dialled.  :meth:`reload_file` refuses a broken file with its file:line error and
  keeps the old policy.
* **Admin backend** (:class:`focus.admin.AdminBackend`) and gauges read at scrape time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import LogLevel

from focus.admin import AdminError, ParticipantView, ReloadResult, RoomView
from focus.conference import (
    AdmissionRefused,
    Capabilities,
    Conference,
    ConferenceError,
    Direction,
    LegEvent,
    LegState,
)
from focus.dialout import (
    Dialer,
    DialJob,
    DialOutAnswer,
    DialOutError,
    Outcome,
    build_leg,
    mikey_identity,
    session_params,
)
from focus.eventlog import EventLog
from focus.keying import same_identity
from focus.metrics import FocusMetrics
from focus.msrp import MsrpConnection, SessionRegistry
from focus.refer import (
    InviteMember,
    ReferRefused,
    decide_refer,
    parse_refer_to,
    refer_notify,
)
from focus.roster import (
    EndpointStatus,
    JoiningMethod,
    Notification,
    RoomSnapshot,
    RosterMember,
    SubscribeRefused,
    SubscriptionSettings,
    SubscriptionTable,
    check_subscribe,
)
from focus.sip.dialog import Dialog, DialogId, DialogState
from focus.sip.errors import SipError
from focus.sip.headers import Address
from focus.sip.message import Response
from focus.sip.ua import IncomingRequest, OutgoingRequest, UserAgent
from focus.sip.uri import SipURI
from kms_client import KmsClientError
from policies import (
    Allowed,
    DialOutMember,
    Identity,
    Policy,
    PolicyError,
    Room,
    find_room,
    load_policy,
    may_join,
    may_watch,
)

if TYPE_CHECKING:
    from twisted.python.failure import Failure

__all__ = ["ConferenceControl", "EventTap", "FocusCore", "TimedKms"]

CPIM = "message/cpim"


class EventTap(EventLog):
    """The service's event log, also handing each event to listeners (in order)."""

    def __init__(self, namespace: str = "focus") -> None:
        super().__init__(namespace)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def emit(self, event: str, *, level: LogLevel = LogLevel.info, **fields: Any) -> None:
        super().emit(event, level=level, **fields)
        for listener in list(self.listeners):
            try:
                listener(event, fields)
            except Exception as exc:  # a listener must never break the service's path
                super().emit(
                    "internal_error",
                    level=LogLevel.critical,
                    reason=f"event listener failed on {event}: {type(exc).__name__}: {exc}",
                )


class TimedKms:
    """A KMS client wrapper that records every round trip in the metrics."""

    def __init__(self, kms: Any, clock: Any, metrics: FocusMetrics) -> None:
        self._kms = kms
        self._clock = clock
        self._metrics = metrics

    def _timed(self, operation: str, d: Deferred[Any]) -> Deferred[Any]:
        started = float(self._clock.seconds())

        def ok(result: object) -> object:
            self._metrics.kms_round_trip(operation, self._clock.seconds() - started)
            return result

        def failed(failure: Failure) -> Failure:
            if failure.check(KmsClientError):  # type: ignore[no-untyped-call]
                elapsed = self._clock.seconds() - started
                self._metrics.kms_round_trip(operation, elapsed, ok=False)
            return failure

        return d.addCallbacks(ok, failed)

    def request_ticket(self, **kw: Any) -> Deferred[Any]:
        return self._timed("request", self._kms.request_ticket(**kw))

    def resolve_ticket(self, **kw: Any) -> Deferred[Any]:
        return self._timed("resolve", self._kms.resolve_ticket(**kw))


class FocusCore(Protocol):
    """What the control plane needs of the dial-in service (``FocusApplication``)."""

    conference: Conference
    ua: UserAgent | None
    calls: dict[str, Any]
    reactor: Any

    @property
    def host(self) -> str: ...

    def now(self) -> float: ...

    def end_leg(self, leg_id: str, reason: str, cause: int | None = None) -> None: ...

    def reload_policy(self, policy: Policy) -> None: ...

    def _caller(self, incoming: IncomingRequest) -> tuple[str, str | None]: ...


def _dialog_key(dialog_id: DialogId) -> str:
    return f"{dialog_id.call_id}|{dialog_id.local_tag}|{dialog_id.remote_tag}"


def _warning(host: str, text: str) -> tuple[str, str]:
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:200]
    return ("Warning", f'399 {host} "{cleaned}"')


class ConferenceControl:
    """See the module docstring.  Build it with the service's application, then
    :meth:`attach` the dialer (whose host is this object) and call :meth:`start` once
    SIP listens."""

    def __init__(
        self,
        core: FocusCore,
        *,
        events: EventTap,
        clock: Any,
        policy_file: Path | None = None,
        metrics: FocusMetrics | None = None,
        subscriptions: SubscriptionSettings | None = None,
        adopt: Callable[[DialOutAnswer, str], Any] | None = None,
    ) -> None:
        self.core = core
        self.events = events
        self.clock = clock
        self.policy_file = policy_file
        self.metrics = metrics
        self.table = SubscriptionTable(subscriptions)
        self.dialer: Dialer | None = None
        self.draining = False
        self._adopt = adopt
        self._dialogs: dict[str, Dialog] = {}
        self._owned: set[str] = set()
        self._timer: Any = None
        self._waiters: dict[str, Deferred[None]] = {}
        self._invited: set[tuple[str, str]] = set()
        events.listeners.append(self._on_event)

    def attach(self, dialer: Dialer) -> None:
        self.dialer = dialer

    @property
    def policy(self) -> Policy:
        return self.core.conference.policy

    def now(self) -> float:
        return float(self.clock.seconds())

    # -- start, stop ----------------------------------------------------------------------

    def start(self) -> list[DialJob]:
        """Dial every room's ``dial_out`` members (start-up)."""
        jobs: list[DialJob] = []
        if self.dialer is None:
            return jobs
        for room in self.policy.rooms:
            if room.settings.enabled:
                jobs += self.dialer.dial_all(str(room.uri), room.dial_out, "start-up")
        return jobs

    def stop(self) -> None:
        if self.dialer is not None:
            self.dialer.stop()
        for key in list(self.table.keys()):
            note = self.table.terminate(key, "deactivated")
            if note is not None:
                self._send(note)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- events from the service -----------------------------------------------------------

    def _on_event(self, event: str, fields: dict[str, Any]) -> None:
        leg_id = fields.get("leg_id")
        room = fields.get("room")
        if event == "bound" and isinstance(leg_id, str):
            self._count_join(leg_id)
            waiter = self._waiters.pop(leg_id, None)
            if waiter is not None and not waiter.called:
                waiter.callback(None)
        elif event == "leave" and isinstance(leg_id, str):
            waiter = self._waiters.pop(leg_id, None)
            reason = str(fields.get("reason", "left"))
            if waiter is not None and not waiter.called:
                waiter.errback(DialOutError(Outcome.LEG, reason[:200], 500))
            if self.metrics is not None and "LegHandshakeFailed" in reason:
                self.metrics.handshake_failed()
        elif event == "join_refused" and self.metrics is not None:
            status = int(fields.get("status", 0) or 0)
            kind = "sdp" if status == 488 else "policy" if status in (403, 404, 480, 486) else "sip"
            self.metrics.join_failed("dial-in", kind)
        elif event == "key_failure" and self.metrics is not None:
            status = int(fields.get("status", 0) or 0)
            self.metrics.join_failed("dial-in", "kms" if status in (500, 503) else "keying")
        if event in ("bound", "leave", "nickname") and isinstance(room, str):
            self.roster_changed(room)

    def _count_join(self, leg_id: str) -> None:
        if self.metrics is None:
            return
        try:
            direction = self.core.conference.participant(leg_id).direction.value
        except ConferenceError:
            direction = "dial-in"
        self.metrics.joined(direction)

    # -- roster (RFC 4575) ------------------------------------------------------------------

    def snapshot(self, room_uri: str) -> RoomSnapshot:
        """The room as subscribers see it: participants whose session is bound."""
        room = find_room(self.policy, room_uri)
        subject = room.subject if room is not None else None
        try:
            entries = self.core.conference.roster(room_uri).entries
        except ConferenceError:
            entries = ()
        members = []
        for entry in entries:
            if entry.state is not LegState.BOUND:
                continue
            call = self.core.calls.get(entry.leg_id)
            dialog = getattr(call, "dialog", None)
            endpoint = str(dialog.remote_target) if dialog is not None else entry.uri
            members.append(
                RosterMember(
                    leg_id=entry.leg_id,
                    user=entry.uri,
                    endpoint=endpoint,
                    display_text=entry.nickname or entry.display_name,
                    status=EndpointStatus.CONNECTED,
                    joining=JoiningMethod.DIALED_OUT
                    if entry.direction is Direction.DIAL_OUT
                    else JoiningMethod.DIALED_IN,
                )
            )
        max_users = room.settings.max_participants if room is not None else None
        return RoomSnapshot(room_uri, subject, tuple(members), max_users)

    def roster_changed(self, room_uri: str) -> None:
        """Send the partial NOTIFYs of a join, leave or nickname change."""
        if not self.table.for_room(room_uri):
            return
        for note in self.table.changed(self.snapshot(room_uri), self.now()):
            self._send(note)

    # -- SIP requests the service hands over -------------------------------------------------

    methods = frozenset({"SUBSCRIBE", "REFER"})

    def on_request(self, incoming: IncomingRequest, now: float) -> bool:
        """Handle SUBSCRIBE and REFER; False for anything else (the service answers)."""
        method = incoming.request.method
        if method == "SUBSCRIBE":
            self._subscribe(incoming, now)
            return True
        if method == "REFER":
            self._refer(incoming, now)
            return True
        return False

    def _room_of(self, incoming: IncomingRequest) -> Room | None:
        """In a participant's dialog: that participant's room; else the Request-URI."""
        dialog = incoming.dialog
        if dialog is not None:
            for call in self.core.calls.values():
                if getattr(call, "dialog", None) is dialog:
                    return find_room(self.policy, call.room_uri)
            key = _dialog_key(dialog.id)
            sub = self.table.get(key)
            if sub is not None:
                return find_room(self.policy, sub.room)
        uri = incoming.request.uri
        if isinstance(uri, SipURI) and uri.user:
            return find_room(self.policy, f"{uri.scheme}:{uri.user}@{uri.host}")
        return None

    def _is_participant(self, room_uri: str, who: str) -> bool:
        return any(
            same_identity(p.uri, who)
            for p in self.core.conference.participants
            if p.room_uri == room_uri
        )

    def _contact(self, incoming: IncomingRequest, room: Room) -> str:
        assert self.core.ua is not None
        transport = incoming.source.transport
        local = self.core.ua.config.local(transport)
        host = self.core.host
        host = f"[{host}]" if ":" in host else host
        scheme = "sips" if transport == "TLS" else "sip"
        params = "" if transport in ("UDP", "TLS") else f";transport={transport.lower()}"
        user = room.uri.user
        userpart = f"{user}@" if user else ""
        return f"<{scheme}:{userpart}{host}:{local.port}{params}>;isfocus"

    def _accept(
        self,
        incoming: IncomingRequest,
        room: Room,
        status: int,
        now: float,
        headers: list[tuple[str, object]],
    ) -> Dialog:
        """Answer ``status`` and return the dialog: the request's own, or a new one made
        from this 2xx (RFC 6665 §4.1.2.1: a SUBSCRIBE or REFER 2xx creates a dialog)."""
        if incoming.dialog is not None:
            incoming.respond(status, now=now, headers=headers)
            return incoming.dialog
        contact = self._contact(incoming, room)
        response = incoming.respond(status, now=now, headers=[("Contact", contact), *headers])
        dialog = Dialog.from_uas(incoming.request, response, Address.parse(contact))
        assert self.core.ua is not None
        self.core.ua.dialogs[dialog.id] = dialog
        self._owned.add(_dialog_key(dialog.id))
        return dialog

    def _subscribe(self, incoming: IncomingRequest, now: float) -> None:
        request = incoming.request
        room = self._room_of(incoming)
        if room is None:
            incoming.respond(404, now=now)
            return
        room_uri = str(room.uri)
        headers = request.headers
        dialog = incoming.dialog
        key = _dialog_key(dialog.id) if dialog is not None else None
        try:
            expires = check_subscribe(
                event=headers.get("Event"),
                accept=", ".join(headers.lines("Accept")) or None,
                expires=headers.get("Expires"),
                settings=self.table.settings,
            )
            if key is not None and self.table.get(key) is None and key in self._owned:
                incoming.respond(481, now=now)  # that subscription is over (RFC 6665 §4.1.2.2)
                return
            subscriber, _display = self.core._caller(incoming)
            participant = self._is_participant(room_uri, subscriber)
            if not may_watch(room, subscriber, is_participant=participant):
                raise SubscribeRefused(403, "not allowed to watch this room")
            if key is None and len(self.table) >= self.table.settings.max_subscriptions and expires:
                raise SubscribeRefused(503, "too many subscriptions")
        except SubscribeRefused as exc:
            extra: list[tuple[str, object]] = list(exc.headers)
            extra.append(_warning(self.core.host, exc.reason))
            incoming.respond(exc.sip_status, now=now, headers=extra)
            return
        dialog = self._accept(incoming, room, 200, now, [("Expires", str(expires))])
        key = _dialog_key(dialog.id)
        self._dialogs[key] = dialog
        note = self.table.subscribe(
            key,
            room=room_uri,
            subscriber=subscriber,
            expires=expires,
            snapshot=self.snapshot(room_uri),
            now=now,
        )
        self.events.emit(
            "subscribe", room=room_uri, subscriber=subscriber, expires=expires,
            call_id=request.call_id,
        )  # fmt: skip
        self._send(note)
        self._arm()

    def _send(self, note: Notification) -> None:
        dialog = self._dialogs.get(note.key)
        ua = self.core.ua
        if dialog is None or ua is None or dialog.state is DialogState.TERMINATED:
            self.table.forget(note.key)
            return

        def answered(_out: OutgoingRequest, response: Response) -> None:
            # RFC 6665 §4.2.2: a 481 (or a timeout) ends the subscription.
            if response.status in (408, 481) or response.status >= 500:
                self.table.forget(note.key)
                self._drop(note.key)

        try:
            ua.send_in_dialog(
                dialog,
                "NOTIFY",
                self.now(),
                answered,
                body=note.body,
                content_type=note.content_type,
                headers=[("Event", note.event), ("Subscription-State", note.subscription_state)],
            )
        except SipError:
            self.table.forget(note.key)
        if note.terminated:
            self._drop(note.key)

    def _drop(self, key: str) -> None:
        dialog = self._dialogs.pop(key, None)
        if dialog is None or key not in self._owned:
            return
        self._owned.discard(key)
        ua = self.core.ua
        if ua is not None and ua.dialogs.get(dialog.id) is dialog:
            dialog.state = DialogState.TERMINATED
            del ua.dialogs[dialog.id]

    def _arm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.table.next_deadline()
        if deadline is not None:
            self._timer = self.clock.callLater(max(0.0, deadline - self.now()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        for note in self.table.expire(self.now()):
            self._send(note)
        self._arm()

    # -- REFER (RFC 3515, RFC 4579) ----------------------------------------------------------

    def _refer(self, incoming: IncomingRequest, now: float) -> None:
        request = incoming.request
        room = self._room_of(incoming)
        if room is None:
            incoming.respond(404, now=now)
            return
        room_uri = str(room.uri)
        referrer, _display = self.core._caller(incoming)
        try:
            target = parse_refer_to(request.headers.lines("Refer-To"))
            action = decide_refer(
                room,
                referrer=referrer,
                target=target,
                referrer_is_participant=self._is_participant(room_uri, referrer),
                target_is_participant=self._is_participant(room_uri, target.uri),
            )
            if isinstance(action, InviteMember) and (self.dialer is None or self.draining):
                raise ReferRefused(503, "the focus is not dialing out now")
            member_id = Identity.parse(target.uri) if isinstance(action, InviteMember) else None
        except ReferRefused as exc:
            self.events.emit(
                "refer_refused", room=room_uri, referrer=referrer, status=exc.sip_status,
                reason=exc.reason, call_id=request.call_id,
            )  # fmt: skip
            incoming.respond(
                exc.sip_status, now=now, headers=[_warning(self.core.host, exc.reason)]
            )
            return
        except PolicyError:
            incoming.respond(400, now=now, headers=[_warning(self.core.host, "bad Refer-To")])
            return
        dialog = self._accept(incoming, room, 202, now, [])
        cseq = request.cseq.seq
        key = f"{_dialog_key(dialog.id)}|refer|{cseq}"
        self._dialogs[key] = dialog
        owned = incoming.dialog is None
        if owned:
            self._owned.add(key)
            self._owned.discard(_dialog_key(dialog.id))
        self.events.emit(
            "refer", room=room_uri, referrer=referrer, target=target.uri, method=target.method,
            call_id=request.call_id,
        )  # fmt: skip

        def progress(status: int, reason: str) -> None:
            note = refer_notify(status, reason, cseq=cseq)
            self._send(
                Notification(key, note.subscription_state, note.body, note.content_type, note.event)
            )

        if isinstance(action, InviteMember):
            assert self.dialer is not None and member_id is not None
            self._invited.add((room_uri, mikey_identity(str(member_id))))
            member = DialOutMember(member_id, room.settings.retry, target.display_name)
            running = self.dialer.job(room_uri, str(member_id)) is not None
            if running:
                progress(100, "Trying")
            # The dialer reports 100 when it starts, 180 when the member rings and the
            # final status when the member is in (200) or it gave up.
            self.dialer.dial(room_uri, member, reason="refer", on_progress=progress)
        else:
            progress(100, "Trying")
            removed = self.remove(room_uri, target.uri, f"removed by {referrer}")
            progress(200 if removed else 404, "OK" if removed else "Not Found")

    # -- dial-out host ------------------------------------------------------------------------

    def dial_out_answered(self, answer: DialOutAnswer) -> Deferred[None]:
        """Admit the member and bring its leg up; fires when the session is bound."""
        if self.draining:
            raise DialOutError(Outcome.CANCELLED, "the focus is draining", 503)
        if self._adopt is None:
            raise DialOutError(Outcome.LEG, "the service cannot adopt dial-out legs", 500)
        leg_id = str(self._adopt(answer, answer.reason))
        with contextlib.suppress(ConferenceError):
            if self.core.conference.participant(leg_id).state is LegState.BOUND:
                return succeed(None)
        waiter: Deferred[None] = Deferred(
            lambda _d: self.core.end_leg(leg_id, "dial-out cancelled")
        )
        self._waiters[leg_id] = waiter
        return waiter

    def invited(self, room_uri: str, uri: str) -> bool:
        """Whether ``uri`` was invited into the room by REFER or the admin API (such a
        member is admitted although not on the allow list, and survives reloads)."""
        return (room_uri, mikey_identity(uri)) in self._invited

    # -- reload -------------------------------------------------------------------------------

    def _still_allowed(self, policy: Policy, room_uri: str, uri: str) -> bool:
        room = find_room(policy, room_uri)
        if room is None or not room.settings.enabled:
            return False
        try:
            who = Identity.parse(uri)
        except PolicyError:
            return False
        if any(p.matches(who) for p in room.settings.deny):
            return False
        if self.invited(room_uri, uri):
            return True
        if any(mikey_identity(str(m.uri)) == mikey_identity(uri) for m in room.dial_out):
            return True  # still on the room's dial-out list (its port only routes)
        # One other participant assumed, so an ad-hoc room's non-creators are judged by
        # its lists, and a full room is not a reason to remove anybody (486 is kept).
        decision = may_join(room, uri, 1)
        return isinstance(decision, Allowed) or decision.status == 486

    def apply_policy(self, policy: Policy) -> ReloadResult:
        """Put ``policy`` in force without dropping any leg it still admits."""
        old = self.policy
        self.core.reload_policy(policy)
        removed: list[str] = []
        for participant in list(self.core.conference.participants):
            if not self._still_allowed(policy, participant.room_uri, participant.uri):
                removed.append(participant.leg_id)
                self.events.emit(
                    "removed_by_policy",
                    room=participant.room_uri,
                    leg_id=participant.leg_id,
                    call_id=participant.call_id,
                    reason="no longer allowed by the room policy",
                )
                self.core.end_leg(
                    participant.leg_id, "no longer allowed by the room policy", cause=403
                )
        for sub_key in list(self.table.keys()):
            sub = self.table.get(sub_key)
            if sub is None:
                continue
            room = find_room(policy, sub.room)
            watching = room is not None and may_watch(
                room, sub.subscriber, is_participant=self._is_participant(sub.room, sub.subscriber)
            )
            if not watching:
                note = self.table.terminate(sub_key, "rejected")
                if note is not None:
                    self._send(note)
        dialing: list[str] = []
        if self.dialer is not None and not self.draining:
            for room in policy.rooms:
                room_uri = str(room.uri)
                before = find_room(old, room_uri)
                had = {m.uri for m in before.dial_out} if before is not None else set()
                for member in room.dial_out:
                    present = self._is_participant(room_uri, str(member.uri))
                    if member.uri not in had and not present and room.settings.enabled:
                        self.dialer.dial(room_uri, member, reason="reload")
                        dialing.append(str(member.uri))
            for job in self.dialer.jobs:
                if job.reason in ("refer", "admin"):
                    continue
                room = find_room(policy, job.room)
                wanted = room is not None and any(m.uri == job.member.uri for m in room.dial_out)
                if not wanted:
                    self.dialer.cancel(job.room, job.uri, "removed from the dial-out list")
        self._arm()
        return ReloadResult(policy.source, tuple(removed), tuple(dialing))

    def reload_file(self) -> ReloadResult:
        """Load the policy file and apply it; a broken file raises :class:`AdminError`
        422 with its file:line message and changes nothing."""
        if self.policy_file is None:
            raise AdminError(409, "no policy file configured")
        try:
            policy = load_policy(self.policy_file)
        except PolicyError as exc:
            self.events.emit("policy_reload_failed", level=LogLevel.error, reason=str(exc))
            if self.metrics is not None:
                self.metrics.policy_reloaded(False)
            raise AdminError(422, str(exc)) from exc
        result = self.apply_policy(policy)
        if self.metrics is not None:
            self.metrics.policy_reloaded(True)
        self.events.emit(
            "policy_reloaded",
            rooms=len(policy.rooms),
            adhoc=len(policy.adhoc),
            removed=len(result.removed),
            dialing=len(result.dialing),
        )
        return result

    # -- admin backend ------------------------------------------------------------------------

    def rooms(self) -> list[RoomView]:
        views = []
        for live in self.core.conference.rooms:
            views.append(
                RoomView(
                    uri=live.uri,
                    subject=live.room.subject,
                    participants=tuple(
                        ParticipantView(
                            leg_id=p.leg_id,
                            uri=p.uri,
                            state=p.state.value,
                            direction=p.direction.value,
                            display_name=p.display_name,
                            nickname=p.nickname,
                        )
                        for p in live.participants.values()
                    ),
                )
            )
        return views

    def dial_out(self, room: str, uri: str) -> None:
        found = find_room(self.policy, room)
        if found is None:
            raise AdminError(404, "no such room in the policy")
        if self.draining or self.dialer is None:
            raise AdminError(503, "the focus is draining")
        try:
            identity = Identity.parse(uri)
        except PolicyError as exc:
            raise AdminError(400, "not a SIP URI") from exc
        room_uri = str(found.uri)
        self._invited.add((room_uri, mikey_identity(str(identity))))
        self.dialer.dial(room_uri, DialOutMember(identity, found.settings.retry), reason="admin")

    def remove(self, room: str, who: str, reason: str) -> int:
        count = 0
        for participant in list(self.core.conference.participants):
            if participant.room_uri != room:
                continue
            if participant.leg_id == who or same_identity(participant.uri, who):
                self.core.end_leg(participant.leg_id, reason)
                count += 1
        return count

    def reload(self) -> ReloadResult:
        return self.reload_file()

    def drain(self) -> None:
        self.draining = True
        if self.dialer is not None:
            self.dialer.stop()
        self.events.emit("draining")

    # -- gauges -------------------------------------------------------------------------------

    def track_gauges(self) -> None:
        if self.metrics is None:
            return
        conference = self.core.conference
        calls = self.core.calls

        def queued() -> list[int]:
            sizes = []
            for call in calls.values():
                leg = getattr(call, "leg", None)
                if leg is not None:
                    with contextlib.suppress(Exception):
                        sizes.append(int(leg.queued_bytes))
            return sizes

        self.metrics.track(
            rooms=lambda: len(conference.rooms),
            participants=lambda: len(conference.participants),
            queue_bytes=lambda: sum(queued()),
            queue_max_bytes=lambda: max(queued(), default=0),
            subscriptions=lambda: len(self.table),
        )


def adopt_dial_out(app: Any, answer: DialOutAnswer, reason: str, *, invited: bool) -> str:
    """Bring a dialled-out member into ``app`` (the service) like a dial-in caller whose
    INVITE was answered: admit it (direction dial-out), record the call and its dialog,
    build the leg in the answer's role, arm the bind timer.  Returns the leg id.

    Raises :class:`DialOutError` (``policy``) when the room refuses the member."""
    from focus.service import _Call  # the service's own record type (no import cycle)

    leg_id: str = app.random(6).hex()
    member = answer.identity
    kwargs: dict[str, Any] = {}
    if invited:
        kwargs["invited"] = True
    try:
        app.conference.admit(
            request_uri=answer.room,
            caller=member,
            leg_id=leg_id,
            call_id=answer.call_id,
            display_name=answer.display_name,
            direction=Direction.DIAL_OUT,
            **kwargs,
        )
    except AdmissionRefused as exc:
        raise DialOutError(Outcome.POLICY, exc.reason, exc.sip_status) from None
    line = answer.line
    chat = line.chatroom
    app.conference.set_capabilities(
        leg_id,
        Capabilities(
            accept_types=line.accept_types,
            accept_wrapped_types=line.accept_wrapped_types,
            private_messages=chat is not None and chat.private_messages,
            nicknames=chat is not None and chat.nicknames,
            max_size=line.max_size,
        ),
    )
    live = app.conference.room_of(leg_id)
    settings = live.room.settings
    own_types: tuple[str, ...] = (CPIM,)
    if not settings.require_cpim:
        own_types = (CPIM, *[t for t in settings.accept_wrapped_types if t != CPIM])
    call = _Call(leg_id, answer.call_id, live.uri, member, dialog=answer.dialog)
    registry = SessionRegistry()
    connection = MsrpConnection(
        registry=registry, random=app.random, connection_id=leg_id, config=app.msrp_config
    )
    call.params = session_params(
        answer, accept_types=own_types, accept_wrapped_types=settings.accept_wrapped_types
    )
    registry.add(call.params)
    app.calls[leg_id] = call
    app._by_dialog[answer.dialog.id] = leg_id
    app.conference.advance(leg_id, LegEvent.ANSWERED)
    app.conference.confirm(leg_id, answer.dialog.id)  # our ACK went out with the 2xx
    from policies import DEFAULT_CIPHER_SUITES

    ciphers = (
        app.config.tls.cipher_string
        if settings.cipher_suites == DEFAULT_CIPHER_SUITES
        else settings.cipher_string
    )
    import attrs as _attrs

    tls = _attrs.evolve(app.tls, ciphers=ciphers)
    try:
        call.leg = build_leg(
            answer,
            leg_id,
            connection,
            app,
            tls=tls,
            reactor=app.reactor,
            clock=app.reactor,
            config=app.leg_config,
        )
    except Exception as exc:
        app._end(call, f"cannot start the leg: {type(exc).__name__}", bye=False, log=False)
        raise DialOutError(Outcome.LEG, f"cannot start the leg: {exc}", 503) from exc
    call.timer = app.reactor.callLater(settings.leg_bind_timeout, app._bind_timed_out, call)
    app.events.emit(
        "join",
        caller=member,
        direction="dial-out",
        why=reason,
        role=line.focus_role.value if line.focus_role else None,
        call_id=answer.call_id,
        room=live.uri,
        leg_id=leg_id,
    )
    return leg_id
