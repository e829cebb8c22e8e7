"""``ChatClient``: one participant's dial-in to a chat room, usable from programs.

The flow of :meth:`ChatClient.join` (PROFILE §4, §5, §7, §8; RFC 4975, 6135, 7701):

1. ask the KMS for a ticket: initiator = our identity, responder = the room URI;
2. build the TRANSFER_INIT (:func:`focus.keying.start_initiator`) and the SDP offer:
   ``m=message 9 TCP/TLS/MSRP *`` with ``a=path:msrps://…``, ``a=accept-types:
   message/cpim text/plain``, ``a=accept-wrapped-types:text/plain *``,
   ``a=setup:active`` and media-level ``a=key-mgmt:mikey …``;
3. INVITE the room through the proxy; a final error is a :class:`SipFailure` with the
   status and Warning text;
4. on 200 (the SIP core ACKs it, RFC 3261 §13.2.2.4) read the answer
   (:func:`focus.sdp.interpret_answer`), verify its TRANSFER_RESP and derive the TLS PSK
   (:func:`focus.keying.complete_initiator`); any failure hangs up with BYE;
5. connect the TLS-PSK leg to the first hop of the answer's ``a=path`` as TLS client and
   bind the session with an empty SEND (RFC 4975 §5.4, RFC 6135 §6); ``join`` fires when
   that SEND is answered 200.

Setup role. RFC 6135 §4.2.2 lets an offerer use ``actpass`` only when it can be
reached; a command-line UE is often behind NAT, and the focus answers ``passive`` to
``active`` anyway (PROFILE §8), so the UE offers ``active`` and never listens for MSRP.
Its own path URI therefore names the discard port 9 (RFC 4145 §4.1): it is only the
session's name in To-Path/From-Path, nobody connects to it.

Chat (RFC 7701): every message is CPIM-wrapped (From = identity, To = room, or a
participant for a private message); a nickname is requested with NICKNAME and
Use-Nickname (refusals such as 425 are reported through ``on_log``, not fatal).
Received messages go to ``on_message`` as :class:`ue.chat.Received`.

Answer mode (:meth:`ChatClient.answer`, a dial-out from the focus, RFC 7701 §5): the
client listens on ``config.listen`` for one INVITE, checks its TRANSFER_INIT (IDRr must
be our identity, :func:`focus.keying.check_transfer_init`), resolves the ticket at the
KMS, verifies the initiator is the caller and builds the TRANSFER_RESP
(:func:`focus.keying.complete_responder`); the caller's verified MIKEY identity becomes
the room. To ``actpass`` (or ``passive``) it answers ``active`` and connects; to
``active`` it answers ``passive`` and listens on a port of ``msrp_port_range`` (RFC 4145
§4.1, RFC 6135 §4.2). Failures are answered on SIP (488/403 with the MIKEY Warning,
480 when the KMS is unreachable) before the error is raised.

Ending: :meth:`leave` sends BYE, closes the leg and waits (bounded) for the answer.
:meth:`when_ended` fires when the session ends: with None after :meth:`leave`, with
:class:`RemoteHangup` when the focus sent BYE, with :class:`LegFailure` when the leg
broke (the client then hangs up itself).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, TimeoutError, ensureDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.python.failure import Failure

from focus import msrp
from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConfig,
    LegConnectFailed,
    LegError,
    MsrpEvent,
    MsrpLeg,
    PassiveLeg,
    PortAllocator,
)
from focus.adapters.sip_transport import SipStack
from focus.keying import (
    KeyingError,
    check_transfer_init,
    complete_initiator,
    complete_responder,
    kms_refusal,
    start_initiator,
)
from focus.sdp import (
    DISCARD_PORT,
    AnsweredLine,
    Attribute,
    Chatroom,
    Connection,
    KeyMgmt,
    Media,
    MsrpUri,
    OfferedLine,
    Origin,
    SdpError,
    SessionDescription,
    SetupRole,
    effective_setup,
    examine_offer,
    format_list,
    format_path,
    interpret_answer,
)
from focus.sip.dialog import Dialog
from focus.sip.message import Response
from focus.sip.transaction import Target, TimerConfig
from focus.sip.ua import Application, IncomingRequest, OutgoingRequest, UAConfig
from focus.sip.uri import SipURI, parse_uri
from focus.tls_psk import (
    DEFAULT_CIPHERS,
    TLSPSKClientCreator,
    TLSPSKConfig,
    TLSPSKError,
    TLSPSKServerCreator,
)
from kms_client import KmsClientError, KmsRejected, TicketResolution
from mikey import ReplayCache, TicketGrant

from .chat import CPIM, Received, build_cpim, describe_received
from .errors import (
    JoinTimeout,
    KeyingFailure,
    KmsFailure,
    LegFailure,
    RemoteHangup,
    SdpFailure,
    SipFailure,
    UeError,
)

__all__ = ["ACCEPT_TYPES", "ACCEPT_WRAPPED_TYPES", "ChatClient", "TicketSource", "UeConfig"]

#: What we declare on our m-line (RFC 4975 §8.6, RFC 7701 §5).
ACCEPT_TYPES = ("message/cpim", "text/plain")
ACCEPT_WRAPPED_TYPES = ("text/plain", "*")


class TicketSource(Protocol):
    """What the client needs of the KMS (``kms_client.KmsClient`` fits)."""

    def request_ticket(
        self, *, initiator: str, responders: list[str], validity: float = 3600.0
    ) -> Deferred[TicketGrant]: ...

    def resolve_ticket(
        self, *, responder: str, ticket: bytes, rand_r: bytes | None = None
    ) -> Deferred[TicketResolution]: ...


def _transport(_inst: object, _attribute: object, value: str) -> None:
    if value.upper() not in ("UDP", "TCP", "TLS"):
        raise ValueError(f"transport must be udp, tcp or tls, not {value!r}")


@attrs.frozen
class UeConfig:
    """Everything one UE session needs besides the KMS and the reactor.

    ``proxy`` is the next hop (host, port) every request goes through; ``local_host`` the
    address our SIP socket binds to (and names in Via/Contact and the MSRP path).
    Timeouts are seconds: ``invite_timeout`` until the INVITE has a final answer,
    ``leg_timeout`` until the MSRP leg is up and bound, ``bye_timeout`` for the BYE's
    answer. ``keylog_path`` appends the TLS secrets of the leg in NSS key log format.

    Answer mode (:meth:`ChatClient.answer`): ``listen`` is the SIP address to wait on for
    ``answer_wait`` seconds, ``msrp_port_range`` where a passive leg listens (only when
    the focus offers ``a=setup:active``), ``room`` may be empty (the caller's verified
    MIKEY identity becomes the room) and ``proxy`` None.
    """

    identity: str
    room: str
    proxy: tuple[str, int] | None
    transport: str = attrs.field(default="udp", validator=_transport)
    local_host: str = "127.0.0.1"
    sip_port: int = 0
    nickname: str | None = None
    cipher_suites: str = DEFAULT_CIPHERS
    keylog_path: Path | None = None
    sip_tls_ca: Path | None = None
    invite_timeout: float = 32.0
    leg_timeout: float = 10.0
    bye_timeout: float = 5.0
    ticket_validity: float = 3600.0
    user_agent: str = "focus-ue"
    listen: tuple[str, int] | None = None
    msrp_port_range: tuple[int, int] = (20000, 20999)
    answer_wait: float = 300.0


Logger = Callable[[str], None]


class _SipApplication(Application):
    """The UE as a SIP transaction user: it only expects the focus's BYE."""

    def __init__(self, client: ChatClient) -> None:
        self._client = client

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        if incoming.request.method != "INVITE":
            incoming.respond(501, now=now)
        elif incoming.dialog is not None:
            # A re-INVITE: the UE keeps its one MSRP line as negotiated.
            incoming.respond(488, now=now)
        else:
            self._client._incoming_invite(incoming, now)

    def on_dialog_terminated(self, dialog: Dialog, reason: str, now: float) -> None:
        self._client._dialog_ended(dialog, reason)


class _LegEvents:
    """LegListener of the client's one MSRP leg."""

    def __init__(self, client: ChatClient) -> None:
        self._client = client

    def leg_up(self, leg: MsrpLeg) -> None:
        self._client._leg_up(leg)

    def msrp_event(self, leg: MsrpLeg, event: MsrpEvent) -> None:
        self._client._msrp_event(leg, event)

    def leg_failed(self, leg: MsrpLeg, error: LegError) -> None:
        self._client._leg_failed(error)


class ChatClient:
    """One dial-in session to a chat room (see the module docstring).

    ``kms`` requests the ticket; ``reactor`` gives time, timers, sockets and TLS;
    ``on_message`` gets every received message, ``on_log`` one line of progress or
    trouble at a time (no secrets). ``random_bytes`` draws CSB IDs, RANDRi, tags and MSRP
    identifiers.
    """

    def __init__(
        self,
        config: UeConfig,
        *,
        kms: TicketSource,
        reactor: Any,
        on_message: Callable[[Received], None] = lambda _received: None,
        on_log: Logger = lambda _line: None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        sip_timers: TimerConfig | None = None,
    ) -> None:
        self.config = config
        self._kms = kms
        self._reactor = reactor
        self._on_message = on_message
        self._log = on_log
        self._random = random_bytes
        self._sip_timers = sip_timers if sip_timers is not None else TimerConfig()
        self._stack: SipStack | None = None
        self._invite: OutgoingRequest | None = None
        self._dialog: Dialog | None = None
        self._leg: MsrpLeg | None = None
        self._passive = False
        self._reconnect: tuple[TLSPSKClientCreator, str, int, float] | None = None
        self._waiting: Deferred[IncomingRequest] | None = None
        self._replay = ReplayCache()
        self.room = config.room
        self._params: msrp.SessionParams | None = None
        self._bind_tid: str | None = None
        self._leg_ready: Deferred[None] | None = None
        self._ended: list[Deferred[None]] = []
        self._outcome: UeError | bool | None = False  # False: not ended yet
        self._leaving = False
        self._nick_tids: dict[str, str] = {}
        self.joined = False

    # -- public API -----------------------------------------------------------------------

    def join(self) -> Deferred[None]:
        """Dial in; fires once the MSRP session is bound, fails with a :class:`UeError`."""
        return ensureDeferred(self._join())

    def answer(self) -> Deferred[None]:
        """Wait on ``config.listen`` for one INVITE (a dial-out from the focus), answer it as
        MIKEY responder and bring the leg up; fails with a :class:`UeError`."""
        return ensureDeferred(self._answer())

    def when_ended(self) -> Deferred[None]:
        """A Deferred for the end of the session (see the module docstring)."""
        d: Deferred[None] = Deferred()
        if self._outcome is False:
            self._ended.append(d)
        else:
            self._fire(d, self._outcome)
        return d

    def send_chat(self, text: str) -> str | None:
        """Send ``text`` to the room; return its Message-ID (None if not possible)."""
        return self._send_text(self.room, text)

    def send_private(self, to: str, text: str) -> str | None:
        """Send ``text`` to participant ``to`` only (RFC 7701 §6.2)."""
        return self._send_text(to, text)

    def set_nickname(self, nickname: str) -> None:
        """Ask for ``nickname`` (RFC 7701 §7.1); the outcome is logged."""
        leg, params = self._leg, self._params
        if leg is None or params is None or not self.joined:
            self._log("cannot set a nickname: not in the room")
            return
        quoted = nickname.replace("\\", "\\\\").replace('"', '\\"')
        try:
            tid, commands = leg.connection.send_request(
                params.local_uri, "NICKNAME", leg.now(), headers=[("Use-Nickname", f'"{quoted}"')]
            )
        except msrp.MsrpError as exc:
            self._log(f"cannot set nickname {nickname!r}: {exc}")
            return
        self._nick_tids[tid] = nickname
        leg.execute(commands)

    def leave(self) -> Deferred[None]:
        """Send BYE, close the leg and wait (at most ``bye_timeout``) for the BYE's answer."""
        return ensureDeferred(self._leave())

    # -- joining ---------------------------------------------------------------------------

    async def _join(self) -> None:
        config = self.config
        if config.proxy is None or not config.room:
            raise ValueError("joining needs config.room and config.proxy")
        self._log(
            f"joining {config.room} as {config.identity} via "
            f"{config.proxy[0]}:{config.proxy[1]} over {config.transport.upper()}"
        )
        try:
            grant = await self._kms.request_ticket(
                initiator=config.identity,
                responders=[config.room],
                validity=config.ticket_validity,
            )
        except KmsRejected as exc:
            hint = ""
            if exc.err_code in (0, 7):
                # ERR 0 auth failure / 7 invalid ID (RFC 3830 §6.12): usually a wrong key,
                # identity, PSK id or KMS identity on our side.
                hint = " (check --kms-key, --identity, --kms-psk-id and --kms-identity)"
            raise KmsFailure(f"KMS ticket request failed: {exc}{hint}") from exc
        except KmsClientError as exc:
            raise KmsFailure(f"KMS ticket request failed: {exc}") from exc
        self._log("KMS ticket obtained")
        try:
            offer_keys = start_initiator(
                grant,
                initiator=config.identity,
                responder=config.room,
                now=self._now(),
                csb_id=int.from_bytes(self._random(4), "big"),
                rand=self._random(max(16, grant.suite.key_len)),
            )
        except KeyingError as exc:
            raise KeyingFailure(f"cannot build the TRANSFER_INIT: {exc.reason}") from exc
        local_uri = MsrpUri(
            scheme="msrps",
            host=_uri_host(config.local_host),
            port=DISCARD_PORT,
            session_id=self._random(12).hex(),
        )
        offer = self._description(
            local_uri, SetupRole.ACTIVE, KeyMgmt("mikey", offer_keys.transfer_init)
        )
        await self._start_sip()
        response = await self._send_invite(offer)
        self._log(f"INVITE answered: {response.status} {response.reason}")
        try:
            answer = SessionDescription.parse(response.body)
            line = interpret_answer(offer, answer).accepted[0]
            if line.focus_role is not SetupRole.ACTIVE or line.connect_to is None:
                # RFC 4145 §4.1: the only answer to an active offer is passive.
                raise SdpFailure("the answer's a=setup does not fit our a=setup:active")
            if line.key_mgmt is None:
                raise SdpFailure("the answer carries no a=key-mgmt:mikey")
            key = complete_initiator(offer_keys, line.key_mgmt.data, now=self._now())
            creator = TLSPSKClientCreator(
                key.psk,
                TLSPSKConfig(ciphers=config.cipher_suites, keylog_path=config.keylog_path),
            )
        except (SdpError, SdpFailure) as exc:
            await self._hang_up()
            reason = exc.reason if isinstance(exc, SdpError) else str(exc)
            raise SdpFailure(f"unusable SDP answer: {reason}") from exc
        except KeyingError as exc:
            await self._hang_up()
            raise KeyingFailure(f"keying failed: {exc.reason}") from exc
        except TLSPSKError as exc:
            await self._hang_up()
            raise LegFailure(f"cannot set up TLS-PSK: {exc}") from exc
        for warning in key.warnings:
            self._log(f"warning: {warning}")
        self._log(f"TRANSFER_RESP verified: responder {key.responder}, TLS PSK derived")
        host, port = line.connect_to
        self._params = self._session_params(local_uri, line)
        await self._run_leg(self._active_leg(creator, host, port), f"{host}:{port}")
        self.joined = True
        self._log(f"MSRP leg up to {host}:{port}: in the room {config.room}")
        if config.nickname:
            self.set_nickname(config.nickname)

    def _description(
        self, local_uri: MsrpUri, role: SetupRole, key_mgmt: KeyMgmt
    ) -> SessionDescription:
        """Our offer or answer: one ``TCP/TLS/MSRP`` line (RFC 4975 §8, RFC 6135 §4.2).

        The m-line port mirrors the path URI, except for the active end, which puts the
        discard port 9 there (RFC 4145 §4.1).
        """
        host = self.config.local_host
        addrtype = "IP6" if ":" in host else "IP4"
        port = DISCARD_PORT if role is SetupRole.ACTIVE else (local_uri.port or DISCARD_PORT)
        media = Media(
            "message",
            port,
            "TCP/TLS/MSRP",
            ("*",),
            attributes=(
                Attribute("path", format_path([local_uri])),
                Attribute("accept-types", format_list(ACCEPT_TYPES)),
                Attribute("accept-wrapped-types", format_list(ACCEPT_WRAPPED_TYPES)),
                role.attribute(),
                # RFC 7701 §8: we take part in nicknames and private messages; a switch
                # refuses private messages (428) to participants that do not say so.
                Chatroom.declare(nicknames=True, private_messages=True).attribute(),
                key_mgmt.attribute(),
            ),
        )
        return SessionDescription(
            origin=Origin("-", int.from_bytes(self._random(4), "big"), 1, host, "IN", addrtype),
            session_name="-",
            connection=Connection(host, "IN", addrtype),
            media=(media,),
        )

    async def _start_sip(self) -> None:
        """The SIP stack (``focus.adapters.sip_transport``) on our local address.

        UDP mode also listens on TCP, because the core sends requests above 1300 bytes
        over TCP (RFC 3261 §18.1.1) and an INVITE with a key-mgmt SDP can be that large.
        TLS mode has no certificate of its own, so it does not listen: the focus must
        send its in-dialog requests (BYE) over our connection; the Contact names the
        local address with port 5061.
        """
        config = self.config
        transport = config.transport.upper()
        client_tls: Callable[[str], Any] | None = None
        listen: tuple[Target, ...] = ()
        if transport == "TLS":
            trust = None
            if config.sip_tls_ca is not None:
                trust = Certificate.loadPEM(config.sip_tls_ca.read_bytes())

            def client_tls(hostname: str) -> Any:
                return optionsForClientTLS(hostname, trustRoot=trust)

            listen = (Target("TLS", config.local_host, config.sip_port or 5061),)
        proxy: SipURI | None = None
        if config.proxy is not None:
            proxy_host, proxy_port = config.proxy
            bracketed = f"[{proxy_host}]" if ":" in proxy_host else proxy_host
            uri = parse_uri(f"sip:{bracketed}:{proxy_port};transport={transport.lower()};lr")
            assert isinstance(uri, SipURI)
            proxy = uri
        host, port = config.listen if config.listen is not None else (config.local_host, 0)
        if config.listen is None:
            port = config.sip_port
        # Answer mode: requests come to our identity's AoR (sip:alice@example.net) as
        # well as to our address, so its domain is ours too (RFC 3261 §8.2.2.1).
        identity = parse_uri(config.identity)
        domains = (identity.host,) if isinstance(identity, SipURI) else ()
        ua_config = UAConfig(
            host=host,
            domains=domains,
            listen=listen,
            outbound_proxy=proxy,
            timers=self._sip_timers,
            user_agent=config.user_agent,
            default_transport=transport,
            invite_timeout=config.invite_timeout,
        )
        stack = SipStack(
            self._reactor,
            ua_config,
            _SipApplication(self),
            self._random,
            tls_client_options=client_tls,
        )
        self._stack = stack
        try:
            if transport == "UDP":
                stack.listen_udp(port, host)
                # In answer mode the focus may come over TCP to the same port.
                await stack.listen_tcp(port if config.listen is not None else 0, host)
            elif transport == "TCP":
                await stack.listen_tcp(port, host)
        except CannotListenError as exc:
            await self._stop()
            raise SipFailure(0, f"cannot listen on {host}:{port}: {exc}", None) from exc

    async def _send_invite(self, offer: SessionDescription) -> Response:
        assert self._stack is not None
        final: Deferred[Response] = Deferred()

        def handler(out: OutgoingRequest, response: Response) -> None:
            if response.status < 200:
                self._log(f"INVITE: {response.status} {response.reason}")
            elif not final.called:
                final.callback(response)

        self._invite = self._stack.ua.invite(
            self.config.room,
            from_=f"<{self.config.identity}>",
            now=self._now(),
            handler=handler,
            body=offer.encode(),
            headers=[("Accept", "application/sdp")],
        )
        self._stack.flush()
        # The core CANCELs after invite_timeout and then gives up after 64*T1 more;
        # this guard only makes sure the wait ends.
        guard = self.config.invite_timeout + 64 * self._sip_timers.t1 + 1.0
        try:
            response = await final.addTimeout(guard, self._reactor)
        except TimeoutError:
            await self._stop()
            raise SipFailure(408, "no final answer to the INVITE", None) from None
        if response.status >= 300:
            await self._stop()
            raise SipFailure(response.status, response.reason, response.headers.get("Warning"))
        self._dialog = self._invite.dialog
        return response

    def _connection(self) -> msrp.MsrpConnection:
        assert self._params is not None
        registry = msrp.SessionRegistry()
        registry.add(self._params)
        return msrp.MsrpConnection(registry=registry, random=self._random)

    def _leg_config(self) -> LegConfig:
        return LegConfig(
            host=self.config.local_host,
            port_range=self.config.msrp_port_range,
            setup_timeout=self.config.leg_timeout,
        )

    def _active_leg(self, creator: TLSPSKClientCreator, host: str, port: int) -> ActiveLeg:
        """We connect (TLS client) and bind with the first SEND (RFC 4975 §5.4)."""
        assert self._params is not None
        if self._reconnect is None:
            self._reconnect = (creator, host, port, self._now() + self.config.leg_timeout)
        leg = ActiveLeg(
            self._params.local_uri.session_id or "ue",
            creator,
            self._connection(),
            _LegEvents(self),
            host=host,
            port=port,
            reactor=self._reactor,
            clock=self._reactor,
            config=self._leg_config(),
        )
        leg.start()
        return leg

    async def _run_leg(self, leg: MsrpLeg, where: str) -> None:
        """Wait until ``leg`` is up and the session bound; hang up on failure."""
        ready: Deferred[None] = Deferred()
        self._leg_ready = ready
        self._leg = leg
        # The leg's own setup timer covers connect + handshake; this one also covers the
        # binding SEND and its answer.
        try:
            await ready.addTimeout(self.config.leg_timeout + 1.0, self._reactor)
        except TimeoutError:
            await self._hang_up()
            raise JoinTimeout(
                f"MSRP leg {where} not bound within {self.config.leg_timeout:g} s"
            ) from None
        except UeError:
            await self._hang_up()
            raise

    # -- answering a dial-out ------------------------------------------------------------

    async def _answer(self) -> None:
        config = self.config
        if config.listen is None:
            raise ValueError("answering needs config.listen")
        waiting: Deferred[IncomingRequest] = Deferred()
        self._waiting = waiting
        await self._start_sip()
        host, port = config.listen
        self._log(f"waiting for an INVITE to {config.identity} on {host}:{port}")
        try:
            incoming = await waiting.addTimeout(config.answer_wait, self._reactor)
        except TimeoutError:
            await self._stop()
            raise JoinTimeout(f"no INVITE within {config.answer_wait:g} s") from None
        try:
            where = await self._accept(incoming)
        except UeError:
            await self._stop()
            raise
        assert self._leg is not None
        await self._run_leg(self._leg, where)
        self.joined = True
        self._log(f"MSRP leg up ({where}): in the room {self.room}")
        if config.nickname:
            self.set_nickname(config.nickname)

    def _incoming_invite(self, incoming: IncomingRequest, now: float) -> None:
        waiting = self._waiting
        if waiting is None or waiting.called:
            incoming.respond(486, now=now)  # one session per UE
            return
        # Not from inside the SIP core's callback: the answer is built on a later turn,
        # so that what it sends is flushed before a failure could stop the stack.
        self._reactor.callLater(0, waiting.callback, incoming)

    def _refuse(self, incoming: IncomingRequest, status: int, warning: str | None) -> None:
        headers = [("Warning", f'399 {self.config.local_host} "{warning}"')] if warning else []
        incoming.respond(status, now=self._now(), headers=headers)
        self._log(f"refused the INVITE: {status}" + (f" ({warning})" if warning else ""))

    async def _accept(self, incoming: IncomingRequest) -> str:
        """Answer a dial-out INVITE as MIKEY responder (PROFILE §5, §6, §8); return where
        the leg goes. Errors are answered on SIP and raised as :class:`UeError`."""
        config = self.config
        request = incoming.request
        caller = str(request.from_.uri)
        self._log(f"INVITE from {caller}")
        try:
            offer = SessionDescription.parse(request.body)
            line = examine_offer(offer).accepted[0]
            offered = effective_setup(line.media, offer)
        except SdpError as exc:
            self._refuse(incoming, exc.sip_status, exc.warning_text)
            raise SdpFailure(f"unusable SDP offer: {exc.reason}") from exc
        assert line.key_mgmt is not None
        # RFC 4145 §4.1 / RFC 6135 §4.2: to actpass (or passive) we answer active, like a
        # client behind NAT should; to active we must be passive.
        role = SetupRole.PASSIVE if offered is SetupRole.ACTIVE else SetupRole.ACTIVE
        try:
            ticket = check_transfer_init(
                line.key_mgmt.data,
                room_uri=config.identity,
                offered_ids=line.key_mgmt_ids,
                now=self._now(),
                replay_cache=self._replay,
            )
        except KeyingError as exc:
            self._refuse(incoming, exc.sip_status, exc.warning_text)
            raise KeyingFailure(f"keying failed: {exc.reason}") from exc
        self._log("TRANSFER_INIT checked; resolving the ticket at the KMS")
        try:
            resolution = await self._kms.resolve_ticket(
                responder=ticket.responder, ticket=ticket.ticket
            )
        except KmsRejected as exc:
            refusal = kms_refusal(exc.err_code, exc.http_status)
            self._refuse(incoming, refusal.sip_status, refusal.warning_text)
            raise KmsFailure(f"KMS ticket resolve failed: {exc}") from exc
        except KmsClientError as exc:
            self._refuse(incoming, 480, "MIKEY: KMS unavailable")
            raise KmsFailure(f"KMS ticket resolve failed: {exc}") from exc
        try:
            result = complete_responder(
                ticket, resolution, caller=caller, now=self._now(), replay_cache=self._replay
            )
        except KeyingError as exc:
            self._refuse(incoming, exc.sip_status, exc.warning_text)
            raise KeyingFailure(f"keying failed: {exc.reason}") from exc
        for warning in result.key.warnings:
            self._log(f"warning: {warning}")
        self.room = result.key.initiator
        self._log(f"ticket resolved; TLS PSK derived for the call from {self.room}")
        tls = TLSPSKConfig(ciphers=config.cipher_suites, keylog_path=config.keylog_path)
        session_id = self._random(12).hex()
        host = _uri_host(config.local_host)
        leg: MsrpLeg
        if role is SetupRole.ACTIVE:
            first = line.peer_path[0]
            assert first.port is not None
            local_uri = MsrpUri("msrps", host, DISCARD_PORT, session_id)
            self._params = self._session_params(local_uri, line)
            answer = self._description(local_uri, role, KeyMgmt("mikey", result.transfer_resp))
            self._answered(incoming, answer)
            leg = self._active_leg(
                TLSPSKClientCreator(result.key.psk, tls), first.bare_host, first.port
            )
            where = f"to {first.bare_host}:{first.port}"
        else:
            self._passive = True
            # The port is known only once listening, and it goes into our path URI: the
            # session enters the registry after start() (the peer binds it with its first
            # SEND, RFC 4975 §5.4).
            registry = msrp.SessionRegistry()
            passive = PassiveLeg(
                session_id,
                TLSPSKServerCreator(result.key.psk, tls),
                msrp.MsrpConnection(registry=registry, random=self._random),
                _LegEvents(self),
                allocator=PortAllocator(*config.msrp_port_range),
                reactor=self._reactor,
                clock=self._reactor,
                config=self._leg_config(),
            )
            try:
                port = passive.start()
            except LegError as exc:
                self._refuse(incoming, 503, "no MSRP port free")
                raise LegFailure(f"cannot listen for the MSRP leg: {exc}") from exc
            local_uri = MsrpUri("msrps", host, port, session_id)
            self._params = self._session_params(local_uri, line)
            registry.add(self._params)
            answer = self._description(local_uri, role, KeyMgmt("mikey", result.transfer_resp))
            self._answered(incoming, answer)
            leg = passive
            where = f"listening on {config.local_host}:{port}"
        self._leg = leg
        return where

    def _session_params(
        self, local_uri: MsrpUri, line: OfferedLine | AnsweredLine
    ) -> msrp.SessionParams:
        """The negotiated session (RFC 4975 §8.6): we never send the peer a type it did
        not list, and refuse (415) what we did not list."""
        return msrp.SessionParams(
            local_uri=msrp.MsrpUri.parse(str(local_uri)),
            peer_path=tuple(msrp.MsrpUri.parse(str(u)) for u in line.peer_path),
            accept_types=ACCEPT_TYPES,
            accept_wrapped_types=ACCEPT_WRAPPED_TYPES,
            peer_accept_types=line.accept_types,
            peer_accept_wrapped_types=line.accept_wrapped_types,
            peer_max_size=line.max_size,
        )

    def _answered(self, incoming: IncomingRequest, answer: SessionDescription) -> None:
        incoming.respond(200, now=self._now(), body=answer.encode(), content_type="application/sdp")
        self._dialog = incoming.dialog
        self._log("answered 200 OK with TRANSFER_RESP")

    # -- chatting ---------------------------------------------------------------------------

    def _send_text(self, to: str, text: str) -> str | None:
        leg, params = self._leg, self._params
        if leg is None or params is None or not self.joined:
            self._log("cannot send: not in the room")
            return None
        body = build_cpim(sender=self.config.identity, to=to, text=text)
        try:
            message_id, commands = leg.connection.send_message(
                params.local_uri, CPIM, body, leg.now()
            )
        except msrp.MsrpError as exc:
            self._log(f"cannot send: {exc}")
            return None
        leg.execute(commands)
        return message_id

    # -- leg events ---------------------------------------------------------------------------

    def _leg_up(self, leg: MsrpLeg) -> None:
        assert self._params is not None
        if self._passive:
            self._log("TLS-PSK handshake done; waiting for the focus to bind the session")
            return
        self._log("TLS-PSK handshake done; binding the MSRP session")
        commands = leg.connection.open_session(self._params, leg.now())
        # The binding SEND is the first request of the connection (RFC 4975 §5.4).
        for command in commands:
            if isinstance(command, msrp.SendBytes) and self._bind_tid is None:
                self._bind_tid = command.data.split(b" ", 2)[1].decode("ascii")
        leg.execute(commands)

    def _msrp_event(self, leg: MsrpLeg, event: MsrpEvent) -> None:
        if isinstance(event, msrp.SessionBound):
            if self._passive:
                self._ready(None)  # the peer's first request bound it (RFC 4975 §5.4)
        elif isinstance(event, msrp.MessageReceived):
            self._message_received(leg, event)
        elif isinstance(event, msrp.TransactionCompleted):
            if event.transaction_id == self._bind_tid:
                self._ready(None)
            elif event.transaction_id in self._nick_tids:
                self._log(f"nickname {self._nick_tids.pop(event.transaction_id)!r} accepted")
        elif isinstance(event, msrp.TransactionFailed):
            if event.transaction_id == self._bind_tid:
                self._ready(
                    LegFailure(
                        f"the focus refused to bind the MSRP session: {event.code} "
                        f"{event.comment or ''}".rstrip()
                    )
                )
            elif event.transaction_id in self._nick_tids:
                nickname = self._nick_tids.pop(event.transaction_id)
                comment = f" {event.comment}" if event.comment else ""
                self._log(f"nickname {nickname!r} refused: {event.code}{comment}")
        elif isinstance(event, msrp.MessageFailed):
            comment = f" {event.comment}" if event.comment else ""
            self._log(f"message {event.message_id} not delivered: {event.code}{comment}")
        elif isinstance(event, msrp.ReportReceived):
            if event.status.code != 200:
                self._log(f"message {event.message_id} failed: REPORT {event.status.code}")
        elif isinstance(event, msrp.RequestReceived):
            leg.execute(leg.connection.respond(event.request.transaction_id, 501, leg.now()))
        elif isinstance(event, msrp.MessageAborted):
            self._log(f"incoming message {event.message_id} aborted: {event.reason}")
        elif isinstance(event, msrp.FrameRejected):
            self._log(f"MSRP frame rejected: {event.error}")

    def _message_received(self, leg: MsrpLeg, event: msrp.MessageReceived) -> None:
        if not event.body and event.content_type is None:
            # An empty SEND (a peer's binding request, RFC 4975 §5.4): nothing to show.
            if event.needs_answer:
                leg.execute(leg.connection.respond(event.transaction_id, 200, leg.now()))
            return
        try:
            received = describe_received(
                room=self.room, content_type=event.content_type, body=event.body
            )
        except msrp.MsrpError as exc:
            self._log(f"malformed message received: {exc}")
            if event.needs_answer:
                leg.execute(leg.connection.respond(event.transaction_id, exc.status, leg.now()))
            return
        if event.needs_answer:
            leg.execute(leg.connection.respond(event.transaction_id, 200, leg.now()))
        self._on_message(received)

    def _leg_failed(self, error: LegError) -> None:
        if self._leg_ready is not None and not self._leg_ready.called:
            if isinstance(error, LegConnectFailed) and self._retry_connect():
                return
            self._ready(LegFailure(f"MSRP leg failed: {error}"))
            return
        if self._leaving:
            return
        self._log(f"MSRP leg failed: {error}")
        ensureDeferred(self._hang_up()).addBoth(
            lambda _: self._end(LegFailure(f"MSRP leg failed: {error}"))
        )

    def _retry_connect(self) -> bool:
        """Connect again after a refused connection, while the setup time lasts.

        An offerer of ``actpass`` should already listen (RFC 4145 §4), but a peer that
        opens its listener only when our answer arrives loses the race against our
        connect; retrying every 0.2 s until ``leg_timeout`` costs nothing otherwise.
        """
        if self._reconnect is None:
            return False
        creator, host, port, deadline = self._reconnect
        if self._now() + 0.2 >= deadline:
            return False

        def again() -> None:
            if self._leg_ready is not None and not self._leg_ready.called:
                self._leg = self._active_leg(creator, host, port)

        self._reactor.callLater(0.2, again)
        return True

    def _ready(self, error: UeError | None) -> None:
        ready = self._leg_ready
        if ready is None or ready.called:
            return
        if error is None:
            ready.callback(None)
        else:
            ready.errback(error)

    # -- ending --------------------------------------------------------------------------------

    def _dialog_ended(self, dialog: Dialog, reason: str) -> None:
        if dialog is not self._dialog or reason == "local-bye":
            return
        self._dialog = None
        if self._leg is not None:
            self._leg.close()
        if reason == "bye":
            self._log("the focus ended the session (BYE)")
            error: UeError = RemoteHangup("the focus ended the session (BYE)")
        else:
            self._log(f"SIP dialog ended: {reason}")
            error = LegFailure(f"SIP dialog ended: {reason}")
        self._ready(error)
        self._reactor.callLater(0, lambda: ensureDeferred(self._stop()))
        self._end(error)

    async def _leave(self) -> None:
        self._leaving = True
        await self._hang_up()
        self._end(None)

    async def _hang_up(self) -> None:
        """Send BYE if there is a dialog, close the leg, wait for the answer (bounded).

        BYE goes first so that the focus learns from SIP that we leave (RFC 3261 §15)
        rather than from a lost MSRP connection it would have to treat as a failure.
        """
        dialog, self._dialog = self._dialog, None
        if dialog is not None and self._stack is not None:
            answered: Deferred[Response] = Deferred()

            def handler(_out: OutgoingRequest, response: Response) -> None:
                if response.status >= 200 and not answered.called:
                    answered.callback(response)

            self._log("sending BYE")
            self._stack.ua.bye(dialog, self._now(), handler)
            self._stack.flush()
            self._close_leg()
            try:
                response = await answered.addTimeout(self.config.bye_timeout, self._reactor)
                self._log(f"BYE answered: {response.status} {response.reason}")
            except TimeoutError:
                self._log(f"no answer to BYE within {self.config.bye_timeout:g} s")
        self._close_leg()
        await self._stop()

    def _close_leg(self) -> None:
        if self._leg is not None:
            self._leg.close()

    async def _stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.stop()

    def _end(self, error: UeError | None) -> None:
        if self._outcome is not False:
            return
        self._outcome = error
        waiting, self._ended = self._ended, []
        for d in waiting:
            self._fire(d, error)

    @staticmethod
    def _fire(d: Deferred[None], outcome: UeError | bool | None) -> None:
        if isinstance(outcome, UeError):
            d.errback(Failure(outcome))  # type: ignore[no-untyped-call]
        else:
            d.callback(None)

    def _now(self) -> float:
        return float(self._reactor.seconds())


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
