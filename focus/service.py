"""The focus as a Twisted service: SIP dial-in, per-leg keying, TLS-PSK MSRP legs, relay.

Thin wiring: every decision belongs to a pure core (``focus.sip`` answers SIP,
``focus.sdp`` classifies offers, ``focus.keying`` runs MIKEY-TICKET, ``focus.conference``
admits and relays, ``focus.msrp`` runs each MSRP session); this module connects them to
the SIP transports (``focus.adapters.sip_transport``), the MSRP legs
(``focus.adapters.msrp_leg``), the KMS client and the clock.

Dial-in, step by step (RFC 3261, RFC 4567, RFC 4975, RFC 6043, RFC 7701, PROFILE.md):

1. INVITE to a room URI: the UA core has sent 100 Trying.  The caller's identity is
   P-Asserted-Identity from a trusted peer, else From (PROFILE §1).
2. Admission by policy: 404 no such room, 403/480/486 with the policy's reason.
3. The SDP offer: only ``m=message … TCP/TLS/MSRP *`` with ``a=key-mgmt:mikey`` is
   accepted; else 488 with a Warning that says why (TCP/MSRP, audio/video only, no
   key-mgmt, another key-mgmt protocol).  Extra m-lines are answered with port 0.
4. Keying early checks (``focus.keying.check_transfer_init``): 488 with
   ``Warning: 399 <host> "MIKEY: <reason>"``, undecodable MIKEY included.
5. The KMS resolves the ticket as the room identity.  Unreachable: 503 with
   Retry-After; refused: 403 or 488 with a MIKEY Warning.  The INVITE may be CANCELled
   meanwhile (the UA core answers 487; the pending resolution is dropped).
6. TRANSFER_INIT verified with MPKi, IDRi = caller (else 403), PSK derived,
   TRANSFER_RESP built.
7. A passive leg listens on its own port of the range with the PSK bound to it (or an
   active leg connects, when the offer was ``a=setup:passive``), then 200 OK with
   ``Contact: <…>;isfocus`` and the answer (``a=path`` msrps on the leg's port,
   ``a=accept-types:message/cpim``, ``a=accept-wrapped-types``, ``a=max-size``,
   ``a=setup``, ``a=chatroom``, media-level ``a=key-mgmt:mikey <TRANSFER_RESP>``).
8. The TLS-PSK leg must come up within ``msrp.leg_timeout`` of the 200 and the MSRP
   session be bound within the room's ``leg_bind_timeout`` after the ACK; else BYE.
9. BYE from the participant, a dropped connection, a failed leg or an overflowing
   queue removes the participant everywhere, frees its port and (if the dialog is still
   up) sends BYE.

Relay: a complete SEND from one leg goes through ``Conference.relay``; each copy is a
new message (new transaction id and Message-ID) on the recipient's own leg.  A slow
recipient only fills its own bounded queue; overflow ends that leg alone.

Logs: one structured event per join, leave, key failure, relay error (``EventLog``),
with Call-ID, room and leg id.  Keys never reach a log line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import IO, Any, Protocol, cast

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import LogLevel, globalLogPublisher

from focus._random import PooledRandom
from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConfig,
    LegError,
    MsrpEvent,
    MsrpLeg,
    PassiveLeg,
    PortAllocator,
    PortRangeExhausted,
)
from focus.adapters.sip_transport import SipStack
from focus.admin import AdminError, admin_site
from focus.conference import (
    AdmissionRefused,
    Capabilities,
    Conference,
    ConferenceError,
    LegEvent,
    LegState,
    RelayRefused,
)
from focus.config import FocusConfig
from focus.control import ConferenceControl, EventTap, TimedKms, adopt_dial_out
from focus.dialout import Dialer, DialerSettings
from focus.eventlog import EventLog, event_observer
from focus.keying import (
    KeyingError,
    check_transfer_init,
    complete_responder,
    kms_refusal,
)
from focus.metrics import FocusMetrics
from focus.msrp import (
    FailureReport,
    MessageFailed,
    MessageReceived,
    MsrpConfig,
    MsrpConnection,
    MsrpError,
    MsrpUri,
    RequestReceived,
    SessionBound,
    SessionParams,
    SessionRegistry,
    TransactionFailed,
)
from focus.sdp import (
    Chatroom,
    KeyMgmt,
    LocalMedia,
    MsrpCapabilities,
    OfferedLine,
    Origin,
    SdpError,
    SessionDescription,
    SetupRole,
    build_answer,
    examine_offer,
)
from focus.sdp import MsrpUri as SdpMsrpUri
from focus.sip.dialog import Dialog, DialogId
from focus.sip.errors import SipError
from focus.sip.headers import Address
from focus.sip.message import Request
from focus.sip.transaction import Target
from focus.sip.ua import Application, IncomingRequest, UAConfig, UserAgent
from focus.sip.uri import SipURI
from focus.tls_psk import TLSPSKClientCreator, TLSPSKConfig, TLSPSKServerCreator
from kms_client import (
    KmsClient,
    KmsProtocolError,
    KmsRejected,
    KmsUnavailable,
    RetryPolicy,
    https_agent,
    persistent_pool,
)
from mikey import ReplayCache
from policies import (
    DEFAULT_CIPHER_SUITES,
    Policy,
    PolicyError,
    RoomSettings,
    find_room,
    load_policy,
    normalize_uri,
)

__all__ = ["FocusApplication", "FocusService", "KmsResolver", "make_service"]

CPIM = "message/cpim"


class KmsResolver(Protocol):
    """What the focus needs of the KMS client (``kms_client.KmsClient`` fits)."""

    def resolve_ticket(
        self, *, responder: str, ticket: bytes, rand_r: bytes | None = None
    ) -> defer.Deferred[Any]: ...


@attrs.define(eq=False)
class _Call:
    """The service's record of one participant's call and leg."""

    leg_id: str
    call_id: str
    room_uri: str
    caller: str
    incoming: IncomingRequest | None = None
    dialog: Dialog | None = None
    leg: MsrpLeg | None = None
    params: SessionParams | None = None
    pending: defer.Deferred[Any] | None = None
    timer: Any = None
    ended: bool = False


def _warning(host: str, text: str, code: int = 399) -> str:
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:200]
    return f'{code} {host} "{cleaned}"'


class FocusApplication(Application):
    """The SIP transaction user of the focus, and the listener of every MSRP leg."""

    #: Handled by the control plane (RFC 6665 SUBSCRIBE, RFC 3515 REFER).
    methods = frozenset({"SUBSCRIBE", "REFER"})

    def __init__(
        self,
        *,
        config: FocusConfig,
        policy: Policy,
        kms: KmsResolver,
        reactor: Any,
        random: Callable[[int], bytes] = os.urandom,
        events: EventLog | None = None,
        tls: TLSPSKConfig | None = None,
    ) -> None:
        self.config = config
        self.conference = Conference(policy)
        self.kms = kms
        self.reactor = reactor
        self.random = PooledRandom() if random is os.urandom else random
        self.events = events or EventLog()
        self.tls = tls or TLSPSKConfig(
            ciphers=config.tls.cipher_string,
            dh_params_path=config.tls.dh_params_file,
            keylog_path=config.tls.keylog_file,
        )
        self.replay_cache = ReplayCache(
            max_entries=config.mikey.replay_cache_size, max_skew=config.mikey.max_clock_skew
        )
        self.keying = config.mikey.keying()
        msrp = config.msrp
        self.allocator = PortAllocator(msrp.port_min, msrp.port_max)
        self.leg_config = LegConfig(
            host=msrp.host,
            port_range=(msrp.port_min, msrp.port_max),
            setup_timeout=msrp.leg_timeout,
            max_queued_bytes=msrp.max_queued_bytes,
        )
        self.msrp_config = MsrpConfig(max_message_size=msrp.max_message_size)
        self.ua: UserAgent | None = None
        self.calls: dict[str, _Call] = {}
        self._by_dialog: dict[DialogId, str] = {}
        self._by_incoming: dict[int, str] = {}
        #: The control plane (dial-out, REFER, SUBSCRIBE, reload, admin), when wired.
        self.control: ConferenceControl | None = None
        self.metrics: FocusMetrics | None = None

    @property
    def host(self) -> str:
        return self.config.sip.host

    def now(self) -> float:
        return float(self.reactor.seconds())

    # -- SIP: the Application interface ------------------------------------------------

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        request = incoming.request
        if self.control is not None and self.control.on_request(incoming, now):
            return
        if request.method != "INVITE":
            incoming.respond(501, now=now)
            return
        if incoming.dialog is not None:
            # A re-INVITE: a changed offer would need re-keying (RFC 4567 §4.1.4), which
            # this focus does not do; 488 leaves the session as it was (RFC 3261 §14.2).
            incoming.respond(
                488,
                now=now,
                headers=[("Warning", _warning(self.host, "re-INVITE is not supported"))],
            )
            return
        self._dial_in(incoming, now)

    def on_ack(self, dialog: Dialog, ack: Request, now: float) -> None:
        call = self._call_of_dialog(dialog)
        if call is None or call.ended:
            return
        try:
            self.conference.confirm(call.leg_id, dialog.id)
            participant = self.conference.participant(call.leg_id)
            bind_timeout = self.conference.room_of(call.leg_id).room.settings.leg_bind_timeout
        except ConferenceError:
            return
        if participant.state is not LegState.BOUND:
            self._cancel_timer(call)
            call.timer = self.reactor.callLater(bind_timeout, self._bind_timed_out, call)

    def on_cancel(self, incoming: IncomingRequest, now: float) -> None:
        leg_id = self._by_incoming.get(id(incoming))
        call = self.calls.get(leg_id) if leg_id else None
        if call is not None:
            self._end(call, "cancelled", bye=False)

    def on_dialog_terminated(self, dialog: Dialog, reason: str, now: float) -> None:
        call = self._call_of_dialog(dialog)
        self._by_dialog.pop(dialog.id, None)
        if call is not None:
            call.dialog = None  # nothing to BYE any more
            self._end(call, f"dialog ended: {reason}", bye=False)

    # -- dial-in ---------------------------------------------------------------------

    def _caller(self, incoming: IncomingRequest) -> tuple[str, str | None]:
        """PROFILE §1: P-Asserted-Identity from a trusted peer, else From."""
        request = incoming.request
        address: Address = request.from_
        pai = request.headers.get("P-Asserted-Identity")
        if pai and incoming.source.host in self.config.sip.trusted_peers:
            try:
                address = Address.parse(pai.split(",")[0])
            except SipError:
                address = request.from_
        uri = str(address.uri)
        with contextlib.suppress(PolicyError):
            uri = normalize_uri(uri)
        return uri, address.display_text

    def _room_uri(self, request: Request) -> str:
        uri = request.uri
        if isinstance(uri, SipURI) and uri.user:
            # The room is named by scheme, user and host; the port the request was
            # sent to and URI parameters are not part of its identity here.
            return f"{uri.scheme}:{uri.user}@{uri.host}"
        return str(uri)

    def _refuse(
        self,
        incoming: IncomingRequest,
        status: int,
        warning: str | None,
        now: float,
        *,
        extra: list[tuple[str, object]] | None = None,
    ) -> None:
        if incoming.answered or incoming.cancelled:
            return
        headers: list[tuple[str, object]] = list(extra or [])
        if warning is not None:
            headers.append(("Warning", warning))
        incoming.respond(status, now=now, headers=headers)

    def _dial_in(self, incoming: IncomingRequest, now: float) -> None:
        request = incoming.request
        call_id = request.call_id
        room_uri = self._room_uri(request)
        caller, display = self._caller(incoming)
        if self.control is not None and self.control.draining:
            # The operator is draining the focus: existing calls go on, new ones go
            # elsewhere (RFC 3261 §21.5.4 503 with Retry-After).
            self.events.emit("join_refused", status=503, reason="draining", caller=caller,
                             call_id=call_id, room=room_uri)  # fmt: skip
            self._refuse(
                incoming, 503, _warning(self.host, "the focus is draining"), now,
                extra=[("Retry-After", self.config.kms.retry_after)],
            )  # fmt: skip
            return
        leg_id = self.random(6).hex()
        log: dict[str, Any] = {"call_id": call_id, "room": room_uri, "leg_id": leg_id}
        try:
            self.conference.admit(
                request_uri=room_uri,
                caller=caller,
                leg_id=leg_id,
                call_id=call_id,
                display_name=display,
            )
        except AdmissionRefused as exc:
            self.events.emit(
                "join_refused", status=exc.sip_status, reason=exc.reason, caller=caller, **log
            )
            self._refuse(incoming, exc.sip_status, _warning(self.host, exc.reason), now)
            return
        room = self.conference.room_of(leg_id)
        call = _Call(leg_id, call_id, room.uri, caller, incoming=incoming)
        self.calls[leg_id] = call
        self._by_incoming[id(incoming)] = leg_id
        log["room"] = room.uri
        if not request.body:
            # RFC 3261 §13.2.1 allows an INVITE without an offer (the offer then goes in
            # our 2xx); a focus that keys each leg from the caller's TRANSFER_INIT needs
            # the offer in the INVITE (RFC 4567 §4.1: the initiator's message travels in
            # the offer).
            reason = "an SDP offer with a=key-mgmt:mikey is required in the INVITE"
            self.events.emit("join_refused", status=488, reason=reason, **log)
            self._fail_call(call, 488, _warning(self.host, reason), now)
            return
        try:
            offer = SessionDescription.parse(request.body)
            examination = examine_offer(offer, require_cpim=room.room.settings.require_cpim)
        except SdpError as exc:
            self.events.emit("join_refused", status=exc.sip_status, reason=exc.reason, **log)
            self._fail_call(
                call, exc.sip_status, _warning(self.host, exc.warning_text, exc.warn_code), now
            )
            return
        line = examination.accepted[0]
        assert line.key_mgmt is not None
        self.conference.set_capabilities(leg_id, _capabilities(line))
        try:
            to_resolve = check_transfer_init(
                line.key_mgmt.data,
                room_uri=room.uri,
                offered_ids=line.key_mgmt_ids,
                now=now,
                replay_cache=self.replay_cache,
                settings=self.keying,
            )
        except KeyingError as exc:
            self._key_failure(call, exc, now)
            return
        for warning in to_resolve.warnings:
            self.events.emit("key_warning", level=LogLevel.warn, reason=warning, **log)
        d = self.kms.resolve_ticket(responder=to_resolve.responder, ticket=to_resolve.ticket)
        call.pending = d

        def resolved(resolution: Any) -> None:
            call.pending = None
            if call.ended:
                return
            self._resolved(call, examination, line, to_resolve, resolution)

        def failed(failure: Any) -> None:
            call.pending = None
            if call.ended or failure.check(defer.CancelledError):
                return
            self._kms_failed(call, failure.value)

        d.addCallbacks(resolved, failed)
        d.addErrback(self._bug, call)

    def _resolved(
        self,
        call: _Call,
        examination: Any,
        line: OfferedLine,
        to_resolve: Any,
        resolution: Any,
    ) -> None:
        now = self.now()
        try:
            result = complete_responder(
                to_resolve,
                resolution,
                caller=call.caller,
                now=now,
                replay_cache=self.replay_cache,
                settings=self.keying,
                sdp_ids=line.key_mgmt_ids or "mikey",
            )
        except KeyingError as exc:
            self._key_failure(call, exc, now)
            return
        room = self.conference.room_of(call.leg_id)
        settings = room.room.settings
        own_types: tuple[str, ...] = (CPIM,)
        if not settings.require_cpim:
            own_types = (CPIM, *[t for t in settings.accept_wrapped_types if t != CPIM])
        # A room that sets its own suites wins; otherwise the focus-wide [tls] list.
        ciphers = (
            self.config.tls.cipher_string
            if settings.cipher_suites == DEFAULT_CIPHER_SUITES
            else settings.cipher_string
        )
        tls = attrs.evolve(self.tls, ciphers=ciphers)
        registry = SessionRegistry()
        connection = MsrpConnection(
            registry=registry,
            random=self.random,
            connection_id=call.leg_id,
            config=self.msrp_config,
        )
        session_id = self.random(12).hex()
        host = self.config.msrp.path_host
        uri_host = f"[{host}]" if ":" in host else host
        leg: MsrpLeg
        try:
            if line.focus_role is SetupRole.ACTIVE:
                assert line.connect_to is not None
                leg = ActiveLeg(
                    call.leg_id,
                    TLSPSKClientCreator(result.key.psk, tls),
                    connection,
                    self,
                    host=line.connect_to[0],
                    port=line.connect_to[1],
                    reactor=self.reactor,
                    clock=self.reactor,
                    config=self.leg_config,
                )
                port = 9  # RFC 4145 §4.1: the active end does not listen
            else:
                passive = PassiveLeg(
                    call.leg_id,
                    TLSPSKServerCreator(result.key.psk, tls),
                    connection,
                    self,
                    allocator=self.allocator,
                    reactor=self.reactor,
                    clock=self.reactor,
                    config=self.leg_config,
                )
                port = passive.start()
                leg = passive
        except PortRangeExhausted:
            self.events.emit(
                "join_refused", status=503, reason="no free MSRP port", **self._log(call)
            )
            self._fail_call(
                call,
                503,
                _warning(self.host, "no free MSRP port"),
                now,
                extra=[("Retry-After", self.config.kms.retry_after)],
            )
            return
        call.leg = leg
        local_uri = MsrpUri.parse(f"msrps://{uri_host}:{port}/{session_id};tcp")
        caps = self.conference.participant(call.leg_id).capabilities
        call.params = SessionParams(
            local_uri=local_uri,
            peer_path=tuple(MsrpUri.parse(str(u)) for u in line.peer_path),
            accept_types=own_types,
            accept_wrapped_types=settings.accept_wrapped_types,
            peer_accept_types=caps.accept_types,
            peer_accept_wrapped_types=caps.accept_wrapped_types,
            peer_max_size=caps.max_size,
        )
        registry.add(call.params)
        answer = build_answer(
            examination,
            {
                line.index: LocalMedia(
                    (SdpMsrpUri.parse(str(local_uri)),), KeyMgmt("mikey", result.transfer_resp)
                )
            },
            origin=Origin(
                "-",
                int.from_bytes(self.random(6), "big"),
                1,
                host,
                addrtype="IP6" if ":" in host else "IP4",
            ),
            capabilities=MsrpCapabilities(
                accept_types=own_types,
                accept_wrapped_types=settings.accept_wrapped_types,
                max_size=settings.max_message_size,
                chatroom=Chatroom.declare(
                    nicknames=settings.nicknames, private_messages=settings.private_messages
                ),
            ),
        )
        incoming = call.incoming
        assert incoming is not None
        if incoming.cancelled or incoming.answered:
            self._end(call, "cancelled", bye=False)
            return
        try:
            incoming.respond(
                200,
                now=now,
                headers=[("Contact", self._contact(incoming))],
                body=answer.encode(),
                content_type="application/sdp",
            )
        except SipError as exc:
            self._end(call, f"cannot answer: {exc}", bye=False)
            return
        call.dialog = incoming.dialog
        # Answered: a late CANCEL has no effect (RFC 3261 §9.2) and nothing refuses this
        # INVITE any more, so the call no longer holds it (its SDP and headers stayed
        # with every idle leg, bench/README.md memory per leg).
        self._by_incoming.pop(id(incoming), None)
        call.incoming = None
        if call.dialog is not None:
            self._by_dialog[call.dialog.id] = call.leg_id
        self.conference.advance(call.leg_id, LegEvent.ANSWERED)
        if isinstance(leg, ActiveLeg):
            leg.start()
        self.events.emit(
            "join",
            caller=call.caller,
            port=port,
            role=line.focus_role.value if line.focus_role else None,
            **self._log(call),
        )

    def _contact(self, incoming: IncomingRequest) -> str:
        """RFC 4579 §3.4 / RFC 7701 §5: the focus's Contact carries ``isfocus``."""
        request = incoming.request
        transport = incoming.source.transport
        assert self.ua is not None
        local = self.ua.config.local(transport)
        user = request.uri.user if isinstance(request.uri, SipURI) else None
        host = self.host
        host = f"[{host}]" if ":" in host else host
        scheme = "sips" if transport == "TLS" else "sip"
        params = "" if transport in ("UDP", "TLS") else f";transport={transport.lower()}"
        userpart = f"{user}@" if user else ""
        return f"<{scheme}:{userpart}{host}:{local.port}{params}>;isfocus"

    def _key_failure(self, call: _Call, exc: KeyingError, now: float) -> None:
        self.events.emit(
            "key_failure",
            level=LogLevel.warn,
            status=exc.sip_status,
            reason=exc.reason,
            **self._log(call),
        )
        self._fail_call(call, exc.sip_status, exc.warning(self.host), now)

    def _kms_failed(self, call: _Call, error: BaseException) -> None:
        now = self.now()
        if isinstance(error, KmsUnavailable):
            self.events.emit(
                "key_failure", level=LogLevel.warn, status=503, reason=str(error),
                **self._log(call),
            )  # fmt: skip
            self._fail_call(
                call,
                503,
                _warning(self.host, "MIKEY: KMS unreachable"),
                now,
                extra=[("Retry-After", self.config.kms.retry_after)],
            )
        elif isinstance(error, KmsRejected):
            self._key_failure(call, kms_refusal(error.err_code, error.http_status), now)
        elif isinstance(error, KmsProtocolError):
            self.events.emit(
                "key_failure", level=LogLevel.error, status=500, reason=str(error),
                **self._log(call),
            )  # fmt: skip
            self._fail_call(call, 500, _warning(self.host, "MIKEY: KMS answer unusable"), now)
        else:
            self._bug_now(call, error)

    def _fail_call(
        self,
        call: _Call,
        status: int,
        warning: str | None,
        now: float,
        *,
        extra: list[tuple[str, object]] | None = None,
    ) -> None:
        if call.incoming is not None:
            self._refuse(call.incoming, status, warning, now, extra=extra)
        self._end(call, f"refused {status}", bye=False, log=False)

    def _bug(self, failure: Any, call: _Call) -> None:
        self._bug_now(call, failure.value)

    def _bug_now(self, call: _Call, error: BaseException) -> None:
        self.events.emit(
            "internal_error",
            level=LogLevel.critical,
            reason=f"{type(error).__name__}: {error}",
            **self._log(call),
        )
        if call.incoming is not None and not call.incoming.answered:
            self._refuse(call.incoming, 500, None, self.now())
        self._end(call, "internal error", bye=True)

    # -- leaving -----------------------------------------------------------------------

    def _log(self, call: _Call) -> dict[str, Any]:
        return {"call_id": call.call_id, "room": call.room_uri, "leg_id": call.leg_id}

    def _call_of_dialog(self, dialog: Dialog) -> _Call | None:
        leg_id = self._by_dialog.get(dialog.id)
        return self.calls.get(leg_id) if leg_id else None

    def _cancel_timer(self, call: _Call) -> None:
        if call.timer is not None and call.timer.active():
            call.timer.cancel()
        call.timer = None

    def _bind_timed_out(self, call: _Call) -> None:
        call.timer = None
        if not call.ended:
            self._end(call, "MSRP session not bound in time", bye=True)

    def end_leg(self, leg_id: str, reason: str, cause: int | None = None) -> None:
        """End a participant's call from the focus side (BYE if the dialog is up); with
        ``cause`` the BYE says why (RFC 3326 ``Reason: SIP;cause=…;text=…``)."""
        call = self.calls.get(leg_id)
        if call is not None:
            self._end(call, reason, bye=True, cause=cause)

    def _end(
        self, call: _Call, reason: str, *, bye: bool, log: bool = True, cause: int | None = None
    ) -> None:
        """Remove the participant everywhere, free its leg and port, maybe send BYE."""
        if call.ended:
            return
        call.ended = True
        self._cancel_timer(call)
        if call.pending is not None:
            pending, call.pending = call.pending, None
            pending.cancel()
        leg, call.leg = call.leg, None
        if leg is not None:
            leg.close()
        self.calls.pop(call.leg_id, None)
        if call.incoming is not None:
            self._by_incoming.pop(id(call.incoming), None)
        dialog = call.dialog
        if dialog is not None:
            self._by_dialog.pop(dialog.id, None)
        try:
            departure = self.conference.leave(call.leg_id)
            remaining: int | None = departure.remaining
        except ConferenceError:
            remaining = None
        if log:
            self.events.emit("leave", reason=reason, remaining=remaining, **self._log(call))
        if bye and dialog is not None and self.ua is not None:
            from focus.sip.dialog import DialogState

            if dialog.state is not DialogState.TERMINATED:
                headers: list[tuple[str, object]] = []
                if cause is not None:
                    text = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in reason)
                    headers.append(("Reason", f'SIP;cause={cause};text="{text[:120]}"'))
                self.ua.send_in_dialog(dialog, "BYE", self.now(), headers=headers)

    # -- MSRP: the LegListener interface -----------------------------------------------

    def _call_of_leg(self, leg: MsrpLeg) -> _Call | None:
        call = self.calls.get(leg.leg_id)
        if call is None or call.leg is not leg or call.ended:
            return None
        return call

    def leg_up(self, leg: MsrpLeg) -> None:
        call = self._call_of_leg(leg)
        if call is None:
            return
        try:
            self.conference.advance(call.leg_id, LegEvent.LEG_UP)
        except ConferenceError as exc:
            self._end(call, f"leg state: {exc.reason}", bye=True)
            return
        self.events.emit("leg_up", **self._log(call))
        if isinstance(leg, ActiveLeg) and call.params is not None:
            # RFC 4975 §5.4, RFC 6135: the active side binds with the first SEND.
            leg.execute(leg.connection.open_session(call.params, leg.now()))
            self._bound(call)

    def _bound(self, call: _Call) -> None:
        try:
            state = self.conference.advance(call.leg_id, LegEvent.SESSION_BOUND)
        except ConferenceError as exc:
            self._end(call, f"leg state: {exc.reason}", bye=True)
            return
        if state is LegState.BOUND:
            self._cancel_timer(call)
            self.events.emit("bound", **self._log(call))

    def msrp_event(self, leg: MsrpLeg, event: MsrpEvent) -> None:
        call = self._call_of_leg(leg)
        if call is None:
            return
        if isinstance(event, SessionBound):
            self._bound(call)
        elif isinstance(event, MessageReceived):
            self._relay(call, leg, event)
        elif isinstance(event, RequestReceived):
            self._extension_request(call, leg, event)
        elif isinstance(event, TransactionFailed | MessageFailed):
            self.events.emit(
                "relay_error",
                level=LogLevel.info,
                status=event.code,
                reason=event.comment or "delivery failed",
                **self._log(call),
            )

    def leg_failed(self, leg: MsrpLeg, error: LegError) -> None:
        call = self._call_of_leg(leg)
        if call is None:
            return
        call.leg = None  # already closed by the adapter
        self._end(call, f"leg failed: {type(error).__name__}: {error}", bye=True)

    def _relay(self, sender_call: _Call, leg: MsrpLeg, message: MessageReceived) -> None:
        now = leg.now()
        try:
            relay = self.conference.relay(
                sender_call.leg_id, message.content_type, message.body, now
            )
        except RelayRefused as exc:
            self.events.emit(
                "relay_error",
                status=exc.msrp_status,
                reason=exc.reason,
                **self._log(sender_call),
            )
            if self.metrics is not None:
                self.metrics.refused(exc.msrp_status)
            if message.needs_answer:
                leg.execute(
                    leg.connection.respond(message.transaction_id, exc.msrp_status, now, exc.reason)
                )
            return
        if message.needs_answer:
            leg.execute(leg.connection.respond(message.transaction_id, 200, now))
        if self.metrics is not None:
            self.metrics.relayed(len(message.body), len(relay.deliveries))
        for delivery in relay.deliveries:
            to_leg = cast(str, delivery.key)  # a leg id (focus.conference.Relay)
            target = self.calls.get(to_leg)
            if target is None or target.leg is None or target.params is None:
                continue
            try:
                # RFC 7701 §6.3: the switch "MAY use any report model in the copies".
                # Failure-Report: partial (RFC 4975 §7.1.2) spares every recipient a 200
                # per copy and us a response to parse and a transaction to retire per
                # copy; errors (413, 481, 415...) are still answered and reach the log as
                # relay_error.  What we give up is the 30 s timer per copy: a recipient
                # that stops reading is caught instead by its leg's bounded queue and
                # TCP backpressure (LegQueueOverflow ends that leg, the room goes on).
                # No MessageSent per copy either: nothing here follows a copy's success.
                _mid, commands = target.leg.connection.send_message(
                    target.params.local_uri,
                    delivery.content_type,
                    delivery.body,
                    now,
                    failure_report=FailureReport.PARTIAL,
                    notify_sent=False,
                )
            except MsrpError as exc:
                self.events.emit(
                    "relay_error",
                    status=exc.status,
                    reason=exc.reason,
                    to_leg=to_leg,
                    **self._log(sender_call),
                )
                continue
            target.leg.execute(commands)

    def _extension_request(self, call: _Call, leg: MsrpLeg, event: RequestReceived) -> None:
        request = event.request
        now = leg.now()
        if request.method != "NICKNAME":
            leg.execute(leg.connection.respond(request.transaction_id, 501, now))
            return
        value = request.header("Use-Nickname")
        try:
            nickname = self.conference.nickname(call.leg_id, value)
        except RelayRefused as exc:
            leg.execute(
                leg.connection.respond(request.transaction_id, exc.msrp_status, now, exc.reason)
            )
            return
        leg.execute(leg.connection.respond(request.transaction_id, 200, now))
        self.events.emit("nickname", nickname=nickname, **self._log(call))

    # -- policy --------------------------------------------------------------------------

    def reload_policy(self, policy: Policy) -> None:
        self.conference.reload(policy)

    def close(self) -> None:
        """End every call (service stop): BYE where a dialog is up."""
        for call in list(self.calls.values()):
            self._end(call, "focus shutting down", bye=True)


def _capabilities(line: OfferedLine) -> Capabilities:
    room = line.chatroom
    return Capabilities(
        accept_types=line.accept_types,
        accept_wrapped_types=line.accept_wrapped_types,
        private_messages=room is not None and room.private_messages,
        nicknames=room is not None and room.nicknames,
        max_size=line.max_size,
    )


class FocusService(Service):
    """Starts the SIP listeners and the focus application; reloads policy on SIGHUP."""

    def __init__(
        self,
        config: FocusConfig,
        *,
        reactor: Any,
        kms: KmsResolver | None = None,
        policy: Policy | None = None,
        random: Callable[[int], bytes] = os.urandom,
        handle_sighup: bool = False,
        log_stream: IO[str] | None = None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        if random is os.urandom:
            # One kernel call per 4 KiB of ids (bench/README.md); injected sources kept.
            random = PooledRandom()
        self.random = random
        self._handle_sighup = handle_sighup
        self._previous_handler: Any = None
        self._log_stream = log_stream
        self._observer: Any = None
        self._owned_stream: IO[str] | None = None
        self.events = EventTap()
        self.metrics = FocusMetrics()
        self.policy = policy if policy is not None else load_policy(config.policy_file)
        kms_client = kms if kms is not None else _kms_client(config, reactor, random)
        self.kms = TimedKms(kms_client, reactor, self.metrics)
        self.app = FocusApplication(
            config=config,
            policy=self.policy,
            kms=self.kms,
            reactor=reactor,
            random=random,
            events=self.events,
        )
        self.app.metrics = self.metrics
        app = self.app
        self.control = ConferenceControl(
            app,
            events=self.events,
            clock=reactor,
            policy_file=config.policy_file,
            metrics=self.metrics,
            # Everyone the focus dials out to is invited (policy list, REFER, operator).
            adopt=lambda answer, why: adopt_dial_out(app, answer, why, invited=True),
        )
        self.dialer = Dialer(
            settings=DialerSettings(
                sip_host=config.sip.host,
                path_host=config.msrp.path_host,
                outbound_proxy=config.sip.outbound_proxy,
                kms_timeout=config.kms.timeout * (config.kms.retries + 1) + 1.0,
                # From the 200 OK: leg up (msrp.leg_timeout) and then bound.
                leg_timeout=2 * config.msrp.leg_timeout,
            ),
            ua=lambda: app.ua,
            kms=self.kms,
            host=self.control,
            clock=reactor,
            allocator=app.allocator,
            capabilities=self._offer_capabilities,
            keying=app.keying,
            replay_cache=app.replay_cache,
            random=random,
            events=self.events,
            metrics=self.metrics,
        )
        self.control.attach(self.dialer)
        self.control.track_gauges()
        app.control = self.control
        self.admin_port: Any = None
        sip = config.sip
        ua_config = UAConfig(
            host=sip.host,
            listen=(),
            domains=tuple({sip.domain, sip.host}),
            outbound_proxy=SipURI.parse(sip.outbound_proxy) if sip.outbound_proxy else None,
            user_agent=sip.user_agent,
        )
        self.stack = SipStack(reactor, ua_config, self.app, random, idle_timeout=sip.idle_timeout)
        self.app.ua = self.stack.ua
        self.listening: list[Target] = []
        #: Fires with the listening SIP addresses once every listener is up.
        self.ready: defer.Deferred[list[Target]] = defer.Deferred()

    def startService(self) -> None:
        self._start_logging()
        super().startService()  # type: ignore[no-untyped-call]
        d = self._listen()
        d.addCallbacks(self._ready, self._listen_failed)
        if self._handle_sighup:
            self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)

    def _start_logging(self) -> None:
        if self._observer is not None:
            return
        stream = self._log_stream
        if stream is None:
            if self.config.log.file is not None:
                self._owned_stream = stream = open(  # noqa: SIM115 - closed at stop
                    self.config.log.file, "a", encoding="utf-8"
                )
            else:
                # Under twistd, sys.stdout is redirected into twistd's own log; the event
                # lines go to the process's real standard output instead.
                stream = sys.__stdout__ or sys.stdout
        self._observer = event_observer(stream, self.config.log.format)
        globalLogPublisher.addObserver(self._observer)

    @defer.inlineCallbacks
    def _listen(self) -> Any:
        for item in self.config.sip.listen:
            if item.transport == "UDP":
                self.stack.listen_udp(item.port, item.host)
            elif item.transport == "TCP":
                yield self.stack.listen_tcp(item.port, item.host)
            else:
                yield self.stack.listen_tls(
                    item.port,
                    item.host,
                    cert_path=str(item.cert_file),
                    key_path=str(item.key_file),
                )
        self.listening = list(self.stack.ua.config.listen)
        admin = self.config.admin
        if admin is not None:
            site = admin_site(
                self.control,
                admin.token,
                metrics=self.metrics,
                metrics_need_token=admin.metrics_need_token,
            )
            self.admin_port = self.reactor.listenTCP(admin.port, site, interface=admin.host)

    def _ready(self, _: object) -> None:
        msrp = self.config.msrp
        self.events.emit(
            "ready",
            sip=[f"{t.transport.lower()}:{t.host}:{t.port}" for t in self.listening],
            domain=self.config.sip.domain,
            msrp=f"{msrp.host}:{msrp.port_min}-{msrp.port_max}",
            kms=self.config.kms.base_url,
            policy=str(self.config.policy_file),
            rooms=len(self.policy.rooms),
        )
        if not self.ready.called:
            self.ready.callback(self.listening)
        # PROFILE §4-§5 dial-out: every room's dial_out members, once SIP listens.
        self.control.start()

    def _listen_failed(self, failure: Any) -> None:
        self.events.emit("listen_failed", level=LogLevel.critical, reason=str(failure.value))
        if not self.ready.called:
            self.ready.errback(failure)
        if getattr(self.reactor, "running", False):
            self.reactor.stop()

    def _on_sighup(self, signum: int, frame: FrameType | None) -> None:
        self.reactor.callFromThread(self.reload_policy)

    def reload_policy(self) -> bool:
        """Re-read the policy file (SIGHUP); a broken file keeps the old policy (logged
        with its file:line).  A valid one takes effect without dropping calls; members it
        no longer admits get BYE, new dial-out members are dialled (focus.control)."""
        try:
            self.control.reload_file()
        except AdminError:
            return False
        self.policy = self.control.policy
        return True

    def _offer_capabilities(self, room_uri: str) -> MsrpCapabilities:
        """What the focus declares on a dial-out offer's m-line in ``room_uri``."""
        room = find_room(self.app.conference.policy, room_uri)
        settings = room.settings if room is not None else RoomSettings()
        own_types: tuple[str, ...] = (CPIM,)
        if not settings.require_cpim:
            own_types = (CPIM, *[t for t in settings.accept_wrapped_types if t != CPIM])
        return MsrpCapabilities(
            accept_types=own_types,
            accept_wrapped_types=settings.accept_wrapped_types,
            max_size=settings.max_message_size,
            chatroom=Chatroom.declare(
                nicknames=settings.nicknames, private_messages=settings.private_messages
            ),
        )

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._handle_sighup:
            signal.signal(signal.SIGHUP, self._previous_handler or signal.SIG_DFL)
            self._previous_handler = None
        self.control.stop()
        if self.admin_port is not None:
            self.admin_port.stopListening()
            self.admin_port = None
        self.app.close()
        self.stack.flush()
        d = self.stack.stop()

        def done(result: object) -> object:
            self.events.emit("stopped")
            if self._observer is not None:
                globalLogPublisher.removeObserver(self._observer)
                self._observer = None
            if self._owned_stream is not None:
                self._owned_stream.close()
                self._owned_stream = None
            return result

        return d.addBoth(done)


def _kms_client(config: FocusConfig, reactor: Any, random: Callable[[int], bytes]) -> KmsClient:
    kms = config.kms
    # One resolve per join: keep the connections to the KMS (bench/README.md, joins).
    agent = https_agent(
        reactor, ca_file=kms.ca_file, connect_timeout=kms.timeout, pool=persistent_pool(reactor)
    )
    return KmsClient(
        base_url=kms.base_url,
        kms_identity=kms.identity,
        psk=kms.key,
        http=agent,
        reactor=reactor,
        psk_id=kms.account.encode("utf-8"),
        suite=config.mikey.suite,
        retry=RetryPolicy(timeout=kms.timeout, max_attempts=kms.retries + 1),
        allow_plain_http=kms.allow_plain_http,
        random_bytes=random,
        max_clock_skew=config.mikey.max_clock_skew,
    )


def make_service(config: FocusConfig, *, reactor: Any, handle_sighup: bool = False) -> FocusService:
    """The focus service for ``config`` (policy loaded from ``config.policy_file``)."""
    return FocusService(config, reactor=reactor, handle_sighup=handle_sighup)
