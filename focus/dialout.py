"""Dial-out: the focus invites a member into a room as the MIKEY initiator (PROFILE §4-§5).

One :class:`DialJob` per (room, member) runs attempts until the member is in the room
or the room's :class:`~policies.RetryPolicy` is used up.  One attempt, step by step:

1. Ticket Request to the KMS *as the room identity* (IDRi = room URI, the focus's KMS
   key being authorised for it, PROFILE §6) with the member as the one responder
   (PROFILE §4).
2. :func:`focus.keying.start_initiator` builds the TRANSFER_INIT; a port of the MSRP
   range is reserved for the offer's ``a=path``, because the offer is
   ``a=setup:actpass`` (RFC 6135 §4.2.2: the offerer must then be able to listen).
3. INVITE with an offer that has only ``m=message <port> TCP/TLS/MSRP *`` (DESIGN: dial-out
   INVITEs offer only TCP/TLS/MSRP), ``a=setup:actpass``, media-level
   ``a=key-mgmt:mikey <TRANSFER_INIT>`` (:func:`focus.sdp.build_offer`), From = the room,
   ``Contact: <…>;isfocus`` (RFC 4579 §5.5).  Routing: a member URI with an IP host and a
   port goes straight there; any other URI through the configured outbound proxy (a
   pre-loaded Route, RFC 3261 §8.1.2), or by RFC 3263 when there is none.
4. No final answer within ``answer_timeout``: CANCEL (RFC 3261 §9.1), outcome
   ``timeout``.  A 3xx-6xx: ``declined`` (488 with a ``MIKEY:`` Warning: ``keying``).
5. 200 OK (the SIP core ACKs it): the answer is read (:func:`focus.sdp.interpret_answer`)
   and its TRANSFER_RESP verified with the responder identity
   (:func:`focus.keying.complete_initiator`: 403-class failure when IDRr is not the
   member).  Any failure here hangs up with BYE and a Reason (RFC 3326), outcome
   ``sdp`` or ``keying``.
6. The :class:`DialOutHost` (the service) admits the member and brings the leg up in the
   role the answer chose: ``a=setup:active`` in the answer makes the focus passive (it
   accepts one TLS-PSK connection on the reserved port), ``passive`` makes it connect as
   TLS client (:func:`build_leg` does either).  The attempt succeeds when the host says
   the MSRP session is bound; a leg that fails first is outcome ``leg``.

Identities.  The member's MIKEY identity (IDRr, the ticket's responder, what the
TRANSFER_RESP must name) is its URI without port and parameters (:func:`mikey_identity`):
``sip:bob@192.0.2.7:5070`` is dialled at port 5070 but keyed as ``sip:bob@192.0.2.7``.
PROFILE §1 identities are bare ``scheme:user@host`` AoRs (the reference KMS accepts no
port in an identity); a port in a ``dial_out`` URI only says where to send the INVITE.
The member joins the room under that identity (it is what its CPIM From will say).

Between attempts the job waits ``RetryPolicy.delay_before(n)``; when no attempt is left
it gives up with a ``dial_out_gave_up`` event.  A member the room policy refuses
(``policy``) or a job cancelled (reload removed the member, the room closed, the service
stops) is not retried.  Every attempt is one ``dial_out_attempt`` event with its outcome.

Progress (``on_progress``) reports SIP-style statuses for REFER NOTIFYs (RFC 3515): 100
when dialing starts, 180 when the member rings, 200 when it is in the room, the last
failure status when the job gives up.

The pure helpers (:func:`outcome_of_status`, :func:`after_attempt`, :func:`direct_target`)
hold every decision; :class:`Dialer` is the Twisted driver around them.
"""

from __future__ import annotations

import enum
import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, ensureDeferred
from twisted.logger import LogLevel

from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConfig,
    LegListener,
    MsrpLeg,
    PassiveLeg,
    PortAllocator,
    TCPReactor,
)
from focus.eventlog import EventLog
from focus.keying import KeyingError, KeyingSettings, LegKey, complete_initiator, start_initiator
from focus.metrics import FocusMetrics
from focus.msrp import MsrpConnection, SessionParams
from focus.msrp import MsrpUri as WireMsrpUri
from focus.sdp import (
    AnsweredLine,
    KeyMgmt,
    LocalMedia,
    MsrpCapabilities,
    MsrpUri,
    Origin,
    SdpError,
    SessionDescription,
    SetupRole,
    build_offer,
    interpret_answer,
)
from focus.sip.dialog import Dialog, DialogState
from focus.sip.errors import SipError
from focus.sip.message import Response
from focus.sip.ua import OutgoingRequest, UserAgent, make_response
from focus.sip.uri import SipURI, parse_uri
from focus.tls_psk import TLSPSKClientCreator, TLSPSKConfig, TLSPSKServerCreator
from kms_client import KmsClientError
from mikey import ReplayCache, TicketGrant
from policies import DialOutMember, Identity, PolicyError, RetryPolicy

__all__ = [
    "DialJob",
    "DialOutAnswer",
    "DialOutError",
    "DialOutHost",
    "DialResult",
    "Dialer",
    "GiveUp",
    "Outcome",
    "PortReservation",
    "Retry",
    "TicketSource",
    "after_attempt",
    "build_leg",
    "direct_target",
    "mikey_identity",
    "outcome_of_status",
    "session_params",
]


# ------------------------------------------------------------------------ decisions


class Outcome(enum.Enum):
    """How one dial-out attempt ended (also the metrics label)."""

    ANSWERED = "answered"  # the member is in the room
    DECLINED = "declined"  # 3xx-6xx to the INVITE (486 Busy, 603 Decline …)
    TIMEOUT = "timeout"  # no final answer within answer_timeout, or 408/480
    KEYING = "keying"  # TRANSFER_RESP failed verification, or 488 MIKEY from the member
    KMS = "kms"  # the Ticket Request failed
    SDP = "sdp"  # the answer is not a usable TCP/TLS/MSRP answer
    LEG = "leg"  # the TLS-PSK leg did not come up or the session was not bound
    SIP = "sip"  # transport error (503 made up by the core), unroutable URI
    POLICY = "policy"  # the room policy refuses the member: not retried
    CANCELLED = "cancelled"  # the job was cancelled: not retried


#: Outcomes a retry cannot change.
FINAL_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.POLICY, Outcome.CANCELLED})


def outcome_of_status(status: int, warning: str | None = None) -> Outcome:
    """Classify the final response to a dial-out INVITE."""
    if 200 <= status < 300:
        return Outcome.ANSWERED
    if status in (408, 480, 487):
        # 408: no answer (or our own timeout, §8.1.3.1); 480: not reachable now;
        # 487: our CANCEL after answer_timeout.
        return Outcome.TIMEOUT
    if status == 488 and warning is not None and "MIKEY" in warning:
        return Outcome.KEYING
    if status == 488:
        return Outcome.SDP
    if status in (416, 503) and warning is None:
        return Outcome.SIP  # made up by our core: unroutable or transport error
    return Outcome.DECLINED


@attrs.frozen
class Retry:
    """Try again: attempt number ``attempt`` after ``delay`` seconds."""

    attempt: int
    delay: float


@attrs.frozen
class GiveUp:
    """Stop dialing; ``reason`` for the log."""

    reason: str


def after_attempt(retry: RetryPolicy, attempt: int, outcome: Outcome) -> Retry | GiveUp | None:
    """What follows attempt number ``attempt`` (1-based) that ended with ``outcome``:
    None when the member is in, :class:`GiveUp` for a final outcome or when the policy
    allows no further attempt, else :class:`Retry` with the policy's back-off."""
    if outcome is Outcome.ANSWERED:
        return None
    if outcome in FINAL_OUTCOMES:
        return GiveUp(f"{outcome.value}: not retried")
    delay = retry.delay_before(attempt + 1)
    if delay is None:
        return GiveUp(f"no attempt left after {attempt} of {retry.attempts}")
    return Retry(attempt + 1, delay)


def mikey_identity(uri: str) -> str:
    """The identity a member is keyed and admitted as: ``scheme:user@host`` of its URI
    (port and parameters dropped, host lower-case; see the module docstring)."""
    try:
        who = Identity.parse(uri)
    except PolicyError:
        return uri
    user = f"{who.user}@" if who.user is not None else ""
    return f"{who.scheme}:{user}{who.host}"


def direct_target(uri: str) -> tuple[str, int, str | None] | None:
    """``(host, port, transport)`` when ``uri`` has an IP-address host and a port (the
    focus then sends straight there); None when it must go through the proxy."""
    try:
        parsed = parse_uri(uri)
    except SipError:
        return None
    if not isinstance(parsed, SipURI) or parsed.port is None:
        return None
    host = parsed.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    transport = parsed.params.get("transport")
    return host, parsed.port, transport.upper() if transport else None


# ---------------------------------------------------------------------------- seams


class TicketSource(Protocol):
    """What the dialer needs of the KMS (``kms_client.KmsClient`` fits)."""

    def request_ticket(
        self, *, initiator: str, responders: list[str], validity: float = 3600.0
    ) -> Deferred[TicketGrant]: ...


class DialOutError(Exception):
    """The host could not take the member in; ``outcome`` decides whether to retry
    (``Outcome.POLICY``: no) and ``status`` is what REFER progress reports."""

    def __init__(self, outcome: Outcome, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.status = status


class PortReservation:
    """A port of the MSRP range held for the offer's ``a=path`` (actpass).

    Whoever builds the passive leg takes it with :meth:`allocator_for_leg` (the leg gives
    it back when it ends); otherwise :meth:`release` returns it to the range.
    """

    def __init__(self, allocator: PortAllocator) -> None:
        self._allocator = allocator
        self.port = allocator.allocate()
        self.taken = False
        self.released = False

    def allocator_for_leg(self) -> PortAllocator:
        """A one-port allocator for :class:`PassiveLeg`: it listens on exactly the port
        the offer announced; releasing it there releases it in the range too."""
        self.taken = True
        return _ReservedPort(self._allocator, self.port)

    def release(self) -> None:
        if not self.taken and not self.released:
            self.released = True
            self._allocator.release(self.port)


class _ReservedPort(PortAllocator):
    def __init__(self, parent: PortAllocator, port: int) -> None:
        super().__init__(port, port)
        self._parent = parent

    def release(self, port: int) -> None:
        super().release(port)
        self._parent.release(port)


@attrs.frozen(eq=False)
class DialOutAnswer:
    """A member answered and keyed: everything the host needs to bring the leg up.

    ``line`` is the accepted answer line (its ``focus_role`` says whether the focus
    connects or listens), ``local_uri`` the focus's ``a=path`` URI from the offer,
    ``reservation`` the port behind it (the host takes it for a passive leg);
    ``member`` is the URI dialled, ``identity`` the verified MIKEY identity of the member.
    """

    room: str
    member: str
    identity: str
    display_name: str | None
    call_id: str
    dialog: Dialog
    key: LegKey
    line: AnsweredLine
    local_uri: MsrpUri
    reservation: PortReservation
    reason: str
    invite: OutgoingRequest


class DialOutHost(Protocol):
    """What the service implements for dial-out."""

    def dial_out_answered(self, answer: DialOutAnswer) -> Deferred[None]:
        """Admit ``answer.member`` (as a dial-out participant) and bring its leg up
        (:func:`build_leg`); fire when its MSRP session is bound, fail (ideally with
        :class:`DialOutError`) otherwise.  The dialer then hangs up and may retry."""


def session_params(
    answer: DialOutAnswer,
    *,
    accept_types: tuple[str, ...],
    accept_wrapped_types: tuple[str, ...],
) -> SessionParams:
    """The MSRP session the offer/answer negotiated (RFC 4975 §8)."""
    line = answer.line
    return SessionParams(
        local_uri=WireMsrpUri.parse(str(answer.local_uri)),
        peer_path=tuple(WireMsrpUri.parse(str(u)) for u in line.peer_path),
        accept_types=accept_types,
        accept_wrapped_types=accept_wrapped_types,
        peer_accept_types=line.accept_types,
        peer_accept_wrapped_types=line.accept_wrapped_types,
        peer_max_size=line.max_size,
    )


def build_leg(
    answer: DialOutAnswer,
    leg_id: str,
    connection: MsrpConnection,
    listener: LegListener,
    *,
    tls: TLSPSKConfig,
    reactor: TCPReactor,
    clock: Any,
    config: LegConfig,
) -> MsrpLeg:
    """The leg in the role the answer chose, started.

    The answer's ``a=setup:active`` (RFC 4145 §4.1) makes the focus passive: a TLS-PSK
    server on the reserved port of the offer; ``passive`` (or none) makes it the active
    side, TLS client to the first hop of the member's ``a=path``, which must then bind the
    session with the first SEND (RFC 4975 §5.4, RFC 6135 §6) from ``leg_up``.
    """
    line = answer.line
    leg: MsrpLeg
    if line.focus_role is SetupRole.PASSIVE:
        passive = PassiveLeg(
            leg_id,
            TLSPSKServerCreator(answer.key.psk, tls),
            connection,
            listener,
            allocator=answer.reservation.allocator_for_leg(),
            reactor=reactor,
            clock=clock,
            config=config,
        )
        passive.start()
        return passive
    answer.reservation.release()
    assert line.connect_to is not None  # interpret_answer sets it for an active focus
    host, port = line.connect_to
    leg = ActiveLeg(
        leg_id,
        TLSPSKClientCreator(answer.key.psk, tls),
        connection,
        listener,
        host=host,
        port=port,
        reactor=reactor,
        clock=clock,
        config=config,
    )
    leg.start()
    return leg


# --------------------------------------------------------------------------- driver


@attrs.frozen
class DialResult:
    """How a job ended."""

    room: str
    member: str
    joined: bool
    attempts: int
    outcome: Outcome
    status: int
    reason: str


Progress = Callable[[int, str], None]


class DialJob:
    """Dialing one member into one room, attempt after attempt."""

    def __init__(self, room: str, member: DialOutMember, reason: str) -> None:
        self.room = room
        self.member = member
        self.reason = reason
        self.attempt = 0
        self.outcomes: list[Outcome] = []
        self.done: Deferred[DialResult] = Deferred()
        self.result: DialResult | None = None
        self.cancelled = False
        self._progress: list[Progress] = []
        self._timer: Any = None
        self._running: Deferred[Any] | None = None
        self._invite: OutgoingRequest | None = None

    def __repr__(self) -> str:
        return f"<DialJob {self.member.uri} into {self.room} attempt {self.attempt}>"

    @property
    def uri(self) -> str:
        return str(self.member.uri)

    @property
    def finished(self) -> bool:
        return self.result is not None

    def on_progress(self, callback: Progress) -> None:
        """Call ``callback(status, reason)`` on each step (REFER NOTIFYs, RFC 3515)."""
        self._progress.append(callback)

    def _report(self, status: int, reason: str) -> None:
        for callback in list(self._progress):
            try:
                callback(status, reason)
            except Exception:  # noqa: S112 - a NOTIFY failing must not stop the dialing
                continue


@attrs.frozen
class DialerSettings:
    """Dialer-wide settings: the focus's SIP host (Contact), the MSRP host for the
    ``a=path`` URI, the ticket validity asked of the KMS, the SIP Timer T1 (for the
    wait guard after a CANCEL), a guard for the KMS round trip and for the host
    bringing the leg up and bound."""

    sip_host: str
    path_host: str
    outbound_proxy: str | None = None
    ticket_validity: float = 3600.0
    t1: float = 0.5
    kms_timeout: float = 30.0
    leg_timeout: float = 40.0
    require_cpim: bool = True


class Dialer:
    """Runs dial-out jobs (see the module docstring).

    ``capabilities(room)`` gives the MSRP attributes the focus declares in that room;
    ``ua()`` the SIP core (None while the service is not listening).
    """

    def __init__(
        self,
        *,
        settings: DialerSettings,
        ua: Callable[[], UserAgent | None],
        kms: TicketSource,
        host: DialOutHost,
        clock: Any,
        allocator: PortAllocator,
        capabilities: Callable[[str], MsrpCapabilities] = lambda _room: MsrpCapabilities(),
        keying: KeyingSettings | None = None,
        replay_cache: ReplayCache | None = None,
        random: Callable[[int], bytes] = os.urandom,
        events: EventLog | None = None,
        metrics: FocusMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._ua = ua
        self._kms = kms
        self._host = host
        self._clock = clock
        self._allocator = allocator
        self._capabilities = capabilities
        self._keying = keying if keying is not None else KeyingSettings()
        self._replay_cache = replay_cache
        self._random = random
        self._events = events if events is not None else EventLog()
        self._metrics = metrics
        self._jobs: dict[tuple[str, str], DialJob] = {}
        self._stopped = False

    # -- public -----------------------------------------------------------------------

    @property
    def jobs(self) -> tuple[DialJob, ...]:
        return tuple(self._jobs.values())

    def job(self, room: str, uri: str) -> DialJob | None:
        return self._jobs.get((room, uri))

    def dial(
        self,
        room: str,
        member: DialOutMember,
        *,
        reason: str = "policy",
        on_progress: Progress | None = None,
    ) -> DialJob:
        """Start dialing ``member`` into ``room`` (or join the job already doing so)."""
        key = (room, str(member.uri))
        job = self._jobs.get(key)
        if job is None:
            job = DialJob(room, member, reason)
            if on_progress is not None:
                job.on_progress(on_progress)
            if self._stopped:
                self._finish(job, Outcome.CANCELLED, 503, "the focus is stopping")
                return job
            self._jobs[key] = job
            job._report(100, "Trying")
            self._schedule(job, 1, 0.0)
        elif on_progress is not None:
            job.on_progress(on_progress)
        return job

    def dial_all(self, room: str, members: Iterable[DialOutMember], reason: str) -> list[DialJob]:
        return [self.dial(room, m, reason=reason) for m in members]

    def cancel(self, room: str, uri: str, why: str = "cancelled") -> bool:
        """Stop dialing ``uri`` into ``room`` (a pending INVITE is CANCELled)."""
        job = self._jobs.get((room, uri))
        if job is None:
            return False
        self._cancel(job, why)
        return True

    def stop(self) -> None:
        """Cancel every job (service stop)."""
        self._stopped = True
        for job in list(self._jobs.values()):
            self._cancel(job, "the focus is stopping")

    # -- scheduling -------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self._clock.seconds())

    def _schedule(self, job: DialJob, attempt: int, delay: float) -> None:
        job.attempt = attempt
        job._timer = self._clock.callLater(delay, self._run, job)

    def _run(self, job: DialJob) -> None:
        job._timer = None
        if job.cancelled:
            return
        running = ensureDeferred(self._attempt(job))
        job._running = running
        running.addCallbacks(
            lambda result: self._attempt_done(job, *result),
            lambda failure: self._attempt_done(
                job, Outcome.CANCELLED if failure.check(CancelledError) else Outcome.SIP,
                500, f"internal error: {failure.getErrorMessage()}"[:200],
            ),
        )  # fmt: skip

    def _attempt_done(self, job: DialJob, outcome: Outcome, status: int, reason: str) -> None:
        job._running = None
        job._invite = None
        if job.cancelled and outcome is not Outcome.ANSWERED:
            outcome = Outcome.CANCELLED
        job.outcomes.append(outcome)
        if self._metrics is not None:
            self._metrics.dial_out_attempt(outcome.value)
        level = LogLevel.info if outcome is Outcome.ANSWERED else LogLevel.warn
        self._events.emit(
            "dial_out_attempt",
            level=level,
            room=job.room,
            uri=job.uri,
            attempt=job.attempt,
            attempts=job.member.retry.attempts,
            outcome=outcome.value,
            status=status,
            reason=reason,
        )
        step = after_attempt(job.member.retry, job.attempt, outcome)
        if step is None:
            self._finish(job, outcome, 200, "OK")
        elif isinstance(step, GiveUp) or job.cancelled:
            give_up = step.reason if isinstance(step, GiveUp) else "cancelled"
            self._events.emit(
                "dial_out_gave_up",
                level=LogLevel.warn,
                room=job.room,
                uri=job.uri,
                attempts=job.attempt,
                outcome=outcome.value,
                status=status,
                reason=give_up,
            )
            if self._metrics is not None:
                self._metrics.join_failed("dial-out", outcome.value)
            self._finish(job, outcome, status if status >= 300 else 480, reason)
        else:
            self._events.emit(
                "dial_out_retry",
                room=job.room,
                uri=job.uri,
                attempt=step.attempt,
                delay=step.delay,
            )
            self._schedule(job, step.attempt, step.delay)

    def _finish(self, job: DialJob, outcome: Outcome, status: int, reason: str) -> None:
        if job.result is not None:
            return
        self._jobs.pop((job.room, job.uri), None)
        job.result = DialResult(
            room=job.room,
            member=job.uri,
            joined=outcome is Outcome.ANSWERED,
            attempts=job.attempt,
            outcome=outcome,
            status=status,
            reason=reason,
        )
        job._report(status, reason if status >= 300 else "OK")
        job.done.callback(job.result)

    def _cancel(self, job: DialJob, why: str) -> None:
        if job.cancelled or job.finished:
            return
        job.cancelled = True
        if job._timer is not None and job._timer.active():
            job._timer.cancel()
            job._timer = None
            self._events.emit("dial_out_gave_up", room=job.room, uri=job.uri,
                              attempts=job.attempt, outcome="cancelled", status=487,
                              reason=why)  # fmt: skip
            self._finish(job, Outcome.CANCELLED, 487, why)
            return
        invite = job._invite
        if invite is not None and invite.final is None:
            invite.cancel(self._now())  # the 487 ends the attempt as CANCELLED
        elif job._running is not None:
            job._running.cancel()

    # -- one attempt --------------------------------------------------------------------------

    async def _attempt(self, job: DialJob) -> tuple[Outcome, int, str]:
        room, member = job.room, job.uri
        identity = mikey_identity(member)
        ua = self._ua()
        if ua is None:
            return Outcome.SIP, 503, "SIP is not listening"
        started = self._now()
        try:
            grant = await self._kms.request_ticket(
                initiator=room, responders=[identity], validity=self.settings.ticket_validity
            ).addTimeout(self.settings.kms_timeout, self._clock)
        except (KmsClientError, TimeoutError) as exc:
            if self._metrics is not None:
                self._metrics.kms_round_trip("request", self._now() - started, ok=False)
            return Outcome.KMS, 503, f"KMS ticket request failed: {type(exc).__name__}"
        if self._metrics is not None:
            self._metrics.kms_round_trip("request", self._now() - started)
        if job.cancelled:
            return Outcome.CANCELLED, 487, "cancelled"
        try:
            offer_keys = start_initiator(
                grant,
                initiator=room,
                responder=identity,
                now=self._now(),
                csb_id=int.from_bytes(self._random(4), "big"),
                rand=self._random(max(16, grant.suite.key_len)),
                settings=self._keying,
            )
        except KeyingError as exc:
            return Outcome.KEYING, 500, exc.reason
        reservation = PortReservation(self._allocator)
        handed_over = False
        try:
            host = self.settings.path_host
            uri_host = f"[{host}]" if ":" in host else host
            local_uri = MsrpUri.parse(
                f"msrps://{uri_host}:{reservation.port}/{self._random(12).hex()};tcp"
            )
            offer = build_offer(
                [LocalMedia((local_uri,), KeyMgmt("mikey", offer_keys.transfer_init))],
                origin=Origin(
                    "-",
                    int.from_bytes(self._random(6), "big"),
                    1,
                    host,
                    addrtype="IP6" if ":" in host else "IP4",
                ),
                capabilities=self._capabilities(room),
            )
            response, invite = await self._invite(ua, job, offer)
            if response.status >= 300:
                warning = response.headers.get("Warning")
                outcome = outcome_of_status(response.status, warning)
                return outcome, response.status, f"{response.status} {response.reason}"
            dialog = invite.dialog
            if dialog is None:
                return Outcome.SIP, 500, "2xx without a dialog"
            try:
                answer_sdp = SessionDescription.parse(response.body)
                line = interpret_answer(
                    offer, answer_sdp, require_cpim=self.settings.require_cpim
                ).accepted[0]
                if line.key_mgmt is None:
                    raise SdpError("the answer carries no key-mgmt")
                key = complete_initiator(
                    offer_keys,
                    line.key_mgmt.data,
                    now=self._now(),
                    replay_cache=self._replay_cache,
                    settings=self._keying,
                )
            except SdpError as exc:
                self._hang_up(ua, dialog, 488, f"SDP: {exc.reason}")
                return Outcome.SDP, 488, f"unusable answer: {exc.reason}"
            except KeyingError as exc:
                self._hang_up(ua, dialog, exc.sip_status, exc.warning_text)
                return Outcome.KEYING, exc.sip_status, exc.reason
            answer = DialOutAnswer(
                room=room,
                member=member,
                identity=key.responder,
                display_name=job.member.display_name,
                call_id=response.call_id,
                dialog=dialog,
                key=key,
                line=line,
                local_uri=local_uri,
                reservation=reservation,
                reason=job.reason,
                invite=invite,
            )
            handed_over = True
            try:
                await self._host.dial_out_answered(answer).addTimeout(
                    self.settings.leg_timeout, self._clock
                )
            except DialOutError as exc:
                self._hang_up(ua, dialog, exc.status, exc.reason)
                return exc.outcome, exc.status, exc.reason
            except TimeoutError:
                self._hang_up(ua, dialog, 408, "MSRP leg not bound in time")
                return Outcome.LEG, 408, "MSRP leg not bound in time"
            except CancelledError:
                self._hang_up(ua, dialog, 487, "dial-out cancelled")
                return Outcome.CANCELLED, 487, "cancelled"
            except Exception as exc:  # the host failed: hang up, count as a leg failure
                self._hang_up(ua, dialog, 500, type(exc).__name__)
                return Outcome.LEG, 500, f"leg failed: {type(exc).__name__}: {exc}"[:200]
            return Outcome.ANSWERED, 200, "OK"
        finally:
            if not (handed_over and reservation.taken):
                reservation.release()

    async def _invite(
        self, ua: UserAgent, job: DialJob, offer: SessionDescription
    ) -> tuple[Response, OutgoingRequest]:
        member = job.uri
        final: Deferred[Response] = Deferred()

        def handler(_out: OutgoingRequest, response: Response) -> None:
            if response.status < 200:
                if response.status in (180, 183):
                    job._report(180, "Ringing")
            elif not final.called:
                final.callback(response)

        headers: list[tuple[str, object]] = [
            ("Contact", self._contact(ua, member)),
            ("Accept", "application/sdp"),
            *self._route(ua, member),
        ]
        display = job.member.display_name
        to = f'"{display}" <{member}>' if display and '"' not in display else f"<{member}>"
        invite = ua.invite(
            member,
            from_=f"<{job.room}>",
            to=to,
            now=self._now(),
            handler=handler,
            body=offer.encode(),
            headers=headers,
        )
        job._invite = invite
        ring = job.member.retry.answer_timeout
        timer = self._clock.callLater(ring, lambda: invite.cancel(self._now()))
        # After a CANCEL the core waits at most 64*T1 for the 487 (§9.1); then it
        # synthesizes 408.  This guard only makes sure the wait ends.
        guard = ring + 64 * self.settings.t1 + 1.0
        try:
            response = await final.addTimeout(guard, self._clock)
        except TimeoutError:
            response = make_response(invite.request, 408)
        finally:
            if timer.active():
                timer.cancel()
        return response, invite

    def _transport_for(self, ua: UserAgent, member: str) -> str:
        direct = direct_target(member)
        if direct is not None and direct[2]:
            return direct[2]
        if direct is None and self.settings.outbound_proxy:
            proxy = direct_target(self.settings.outbound_proxy)
            if proxy is not None and proxy[2]:
                return proxy[2]
        return ua.config.default_transport.upper()

    def _contact(self, ua: UserAgent, member: str) -> str:
        """RFC 4579 §5.5: the INVITE's Contact is the conference URI with ``isfocus``
        (here: the room's user part at the focus's address)."""
        transport = self._transport_for(ua, member)
        try:
            local = ua.config.local(transport)
        except SipError:
            local = ua.config.listen[0]
        host = self.settings.sip_host
        host = f"[{host}]" if ":" in host else host
        scheme = "sips" if transport == "TLS" else "sip"
        params = "" if transport in ("UDP", "TLS") else f";transport={transport.lower()}"
        return f"<{scheme}:{host}:{local.port}{params}>;isfocus"

    def _route(self, ua: UserAgent, member: str) -> list[tuple[str, object]]:
        """Routing (RFC 3261 §8.1.2): an IP host with a port goes straight to it, which
        the core does for a request without Route unless it has an outbound proxy of its
        own (then a loose Route to the member itself overrides it); any other URI goes
        through the configured outbound proxy as a pre-loaded Route."""
        direct = direct_target(member)
        if direct is not None:
            if ua.config.outbound_proxy is None:
                return []
            host, port, transport = direct
            host = f"[{host}]" if ":" in host else host
            tparam = f";transport={transport.lower()}" if transport else ""
            return [("Route", f"<sip:{host}:{port}{tparam};lr>")]
        proxy = self.settings.outbound_proxy
        if proxy is None:
            return []  # the core's own outbound proxy, else RFC 3263 on the member URI
        parsed = parse_uri(proxy)
        if isinstance(parsed, SipURI) and not parsed.lr:
            parsed = attrs.evolve(parsed, params=parsed.params.set("lr"))
        return [("Route", f"<{parsed}>")]

    def _hang_up(self, ua: UserAgent, dialog: Dialog, cause: int, text: str) -> None:
        """BYE with a Reason (RFC 3326) naming why the focus gave up on the call."""
        if dialog.state is DialogState.TERMINATED:
            return
        clean = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:120]
        ua.send_in_dialog(
            dialog,
            "BYE",
            self._now(),
            headers=[("Reason", f'SIP;cause={cause};text="{clean}"')],
        )
