"""A minimal fake focus and a loopback KMS for the UE tests, built from the lower pieces.

The focus is a SIP UAS (``focus.sip`` core on the UE's own small driver) that answers a
dial-in INVITE the way PROFILE §5/§8 says: examine the offer, check and resolve the
TRANSFER_INIT at the KMS (``focus.keying`` responder flow, ``kms_client``), open a passive
TLS-PSK leg on its own port and answer with ``a=setup:passive`` and the TRANSFER_RESP.
Its MSRP side relays CPIM messages like an RFC 7701 switch (copy to every other
participant, or to the one named by a private message's To; 404 otherwise) and answers
NICKNAME with 200, or 425 for the nickname "taken".
"""

from __future__ import annotations

import os
import socket
from typing import Any

import attrs
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.web.client import Agent
from twisted.web.server import Site

from focus import msrp
from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConfig,
    LegError,
    MsrpLeg,
    PassiveLeg,
    PortAllocator,
)
from focus.adapters.sip_transport import SipStack
from focus.keying import (
    check_transfer_init,
    complete_initiator,
    complete_responder,
    start_initiator,
)
from focus.sdp import (
    KeyMgmt,
    LocalMedia,
    MsrpCapabilities,
    MsrpUri,
    Origin,
    SessionDescription,
    SetupRole,
    build_answer,
    build_offer,
    examine_offer,
    interpret_answer,
)
from focus.sip.dialog import Dialog
from focus.sip.transaction import Target
from focus.sip.ua import Application, IncomingRequest, UAConfig
from focus.tls_psk import TLSPSKClientCreator, TLSPSKServerCreator
from kms import AccountStore, build_resource
from kms._engine import MikeyTicketEngine
from kms_client import KmsClient, RetryPolicy
from tests.kms.conftest import ALICE, BOB, FOCUS, KEYS, KMS_ID, ROOM, account

__all__ = ["ALICE", "BOB", "FOCUS", "KEYS", "KMS_ID", "ROOM", "FakeFocus", "LoopbackKms"]


class LoopbackKms:
    """The reference KMS engine behind a real HTTP listener on 127.0.0.1."""

    def __init__(self, reactor: Any) -> None:
        self.engine = MikeyTicketEngine(
            identity=KMS_ID,
            accounts=AccountStore.of(
                [
                    account(ALICE),
                    account(BOB),
                    account(FOCUS, FOCUS, "sip:*@conf.example.net"),
                ]
            ),
            ticket_protection_key=os.urandom(32),
            random_bytes=os.urandom,
        )
        self.port = reactor.listenTCP(
            0, Site(build_resource(self.engine, clock=reactor)), interface="127.0.0.1"
        )
        self.base = f"http://127.0.0.1:{self.port.getHost().port}/mikey-ticket/v1"
        self._reactor = reactor

    def client(self, identity: str, **kw: Any) -> KmsClient:
        options: dict[str, Any] = {
            "base_url": self.base,
            "kms_identity": KMS_ID,
            "psk": KEYS[identity],
            "http": Agent(self._reactor),
            "reactor": self._reactor,
            "allow_plain_http": True,
            "psk_id": identity.encode(),
            "retry": RetryPolicy(timeout=5.0, max_attempts=1),
        }
        options.update(kw)
        return KmsClient(**options)

    def stop(self) -> Any:
        return maybeDeferred(self.port.stopListening)


@attrs.define
class Participant:
    identity: str
    leg: MsrpLeg
    local_uri: msrp.MsrpUri
    dialog: Dialog | None = None


class FakeFocus(Application):
    """See the module docstring. ``answer_status`` other than 200 refuses every INVITE."""

    def __init__(
        self, reactor: Any, kms: LoopbackKms, *, port_range: tuple[int, int] = (41000, 41999)
    ) -> None:
        self._reactor = reactor
        self._kms = kms.client(FOCUS)
        self._allocator = PortAllocator(*port_range)
        self.stack = SipStack(
            reactor,
            UAConfig(
                host="127.0.0.1", listen=(), domains=("conf.example.net",), user_agent="fake-focus"
            ),
            self,
            os.urandom,
        )
        port = self.stack.listen_udp(0, "127.0.0.1").getHost().port
        self.address = Target("UDP", "127.0.0.1", port)
        self.ua = self.stack.ua
        self.participants: list[Participant] = []
        self.received: list[tuple[str, bytes]] = []
        self.nicknames: list[str] = []
        self.byes: list[str] = []
        self.leg_failures: list[LegError] = []
        self._bind_on_up: dict[str, msrp.SessionParams] = {}
        self.refuse: tuple[int, str | None] | None = None
        self.tamper_transfer_resp = False

    # -- SIP -----------------------------------------------------------------------------

    async def listen_tcp(self) -> Target:
        """Also accept SIP over TCP; return that address."""
        port = await self.stack.listen_tcp(0, "127.0.0.1")
        return Target("TCP", "127.0.0.1", port.getHost().port)

    async def listen_tls(self, cert: str, key: str) -> Target:
        """Also accept SIP over TLS with this certificate; return that address."""
        port = await self.stack.listen_tls(0, "127.0.0.1", cert_path=cert, key_path=key)
        return Target("TLS", "127.0.0.1", port.getHost().port)

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        if incoming.request.method != "INVITE" or incoming.dialog is not None:
            incoming.respond(501, now=now)
            return
        if self.refuse is not None:
            status, warning = self.refuse
            headers = [("Warning", warning)] if warning else []
            incoming.respond(status, now=now, headers=headers)
            return
        ensureDeferred(self._answer(incoming)).addErrback(
            lambda f: incoming.respond(500, now=self.now()) and None
        )

    async def _answer(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        offer = SessionDescription.parse(request.body)
        examination = examine_offer(offer)
        line = examination.accepted[0]
        assert line.key_mgmt is not None
        caller = str(request.from_.uri)
        ticket = check_transfer_init(
            line.key_mgmt.data,
            room_uri=ROOM,
            offered_ids=line.key_mgmt_ids,
            now=self.now(),
            replay_cache=None,
        )
        resolution = await self._kms.resolve_ticket(
            responder=ticket.responder, ticket=ticket.ticket
        )
        result = complete_responder(
            ticket, resolution, caller=caller, now=self.now(), replay_cache=None
        )
        transfer_resp = result.transfer_resp
        if self.tamper_transfer_resp:
            transfer_resp = transfer_resp[:-1] + bytes([transfer_resp[-1] ^ 1])
        session_id = os.urandom(8).hex()
        registry = msrp.SessionRegistry()
        connection = msrp.MsrpConnection(registry=registry, random=os.urandom)
        leg = PassiveLeg(
            session_id,
            TLSPSKServerCreator(result.key.psk),
            connection,
            self,
            allocator=self._allocator,
            reactor=self._reactor,
            clock=self._reactor,
            config=LegConfig(host="127.0.0.1", setup_timeout=10.0),
        )
        port = leg.start()
        own = MsrpUri("msrps", "127.0.0.1", port, session_id)
        local_uri = msrp.MsrpUri.parse(str(own))
        registry.add(
            msrp.SessionParams(
                local_uri=local_uri,
                peer_path=tuple(msrp.MsrpUri.parse(str(u)) for u in line.peer_path),
                accept_types=("message/cpim",),
                accept_wrapped_types=("*",),
                peer_accept_types=line.accept_types,
                peer_accept_wrapped_types=line.accept_wrapped_types,
            )
        )
        participant = Participant(caller, leg, local_uri)
        self.participants.append(participant)
        answer = build_answer(
            examination,
            {line.index: LocalMedia(path=(own,), key_mgmt=KeyMgmt("mikey", transfer_resp))},
            origin=Origin("focus", 1, 1, "127.0.0.1"),
            capabilities=MsrpCapabilities(),
        )
        incoming.respond(200, now=self.now(), body=answer.encode(), content_type="application/sdp")
        participant.dialog = incoming.dialog

    async def dial_out(
        self, to: str, target: Target, *, setup: SetupRole = SetupRole.ACTPASS
    ) -> Participant:
        """Invite ``to`` at ``target`` as the room (RFC 7701 dial-out): MIKEY initiator."""
        grant = await self._kms.request_ticket(initiator=ROOM, responders=[to])
        offer_keys = start_initiator(
            grant,
            initiator=ROOM,
            responder=to,
            now=self.now(),
            csb_id=int.from_bytes(os.urandom(4), "big"),
            rand=os.urandom(16),
        )
        port = _free_port()
        session_id = os.urandom(8).hex()
        own = MsrpUri("msrps", "127.0.0.1", port, session_id)
        offer = build_offer(
            [LocalMedia(path=(own,), key_mgmt=KeyMgmt("mikey", offer_keys.transfer_init))],
            origin=Origin("focus", 2, 1, "127.0.0.1"),
        )
        if setup is not SetupRole.ACTPASS:
            media = offer.media[0]
            attributes = tuple(
                setup.attribute() if a.name == "setup" else a for a in media.attributes
            )
            offer = attrs.evolve(offer, media=(attrs.evolve(media, attributes=attributes),))
        answered: Deferred[Any] = Deferred()

        def handler(out: Any, response: Any) -> None:
            if response.status >= 200 and not answered.called:
                answered.callback((out, response))

        self.ua.invite(
            to,
            from_=f"<{ROOM}>",
            now=self.now(),
            handler=handler,
            body=offer.encode(),
            headers=[("Route", f"<sip:{target.host}:{target.port};lr>")],
        )
        self.stack.flush()
        out, response = await answered
        if response.status != 200:
            raise AssertionError(f"dial-out answered {response.status}")
        answer = SessionDescription.parse(response.body)
        line = interpret_answer(offer, answer).accepted[0]
        assert line.key_mgmt is not None
        key = complete_initiator(offer_keys, line.key_mgmt.data, now=self.now())
        registry = msrp.SessionRegistry()
        local_uri = msrp.MsrpUri.parse(str(own))
        params = msrp.SessionParams(
            local_uri=local_uri,
            peer_path=tuple(msrp.MsrpUri.parse(str(u)) for u in line.peer_path),
            accept_types=("message/cpim",),
            accept_wrapped_types=("*",),
            peer_accept_types=line.accept_types,
            peer_accept_wrapped_types=line.accept_wrapped_types,
        )
        registry.add(params)
        connection = msrp.MsrpConnection(registry=registry, random=os.urandom)
        leg: MsrpLeg
        if line.focus_role is SetupRole.PASSIVE:
            passive = PassiveLeg(
                session_id,
                TLSPSKServerCreator(key.psk),
                connection,
                self,
                allocator=PortAllocator(port, port),
                reactor=self._reactor,
                clock=self._reactor,
                config=LegConfig(host="127.0.0.1", setup_timeout=10.0),
            )
            passive.start()
            leg = passive
        else:
            assert line.connect_to is not None
            self._bind_on_up[session_id] = params
            active = ActiveLeg(
                session_id,
                TLSPSKClientCreator(key.psk),
                connection,
                self,
                host=line.connect_to[0],
                port=line.connect_to[1],
                reactor=self._reactor,
                clock=self._reactor,
                config=LegConfig(host="127.0.0.1", setup_timeout=10.0),
            )
            active.start()
            leg = active
        participant = Participant(to, leg, local_uri, out.dialog)
        self.participants.append(participant)
        return participant

    def on_dialog_terminated(self, dialog: Dialog, reason: str, now: float) -> None:
        for participant in list(self.participants):
            if participant.dialog is dialog:
                self.byes.append(participant.identity)
                participant.leg.close()
                self.participants.remove(participant)

    def hang_up(self, identity: str) -> None:
        """Send BYE to a participant (the focus ends the session)."""
        for participant in list(self.participants):
            if participant.identity == identity and participant.dialog is not None:
                self.ua.bye(participant.dialog, self.now())
                self.stack.flush()

    # -- MSRP ----------------------------------------------------------------------------

    def leg_up(self, leg: MsrpLeg) -> None:
        params = self._bind_on_up.pop(leg.leg_id, None)
        if params is not None:
            leg.execute(leg.connection.open_session(params, leg.now()))

    def msrp_event(self, leg: MsrpLeg, event: Any) -> None:
        sender = next((p for p in self.participants if p.leg is leg), None)
        if sender is None:
            return
        if isinstance(event, msrp.MessageReceived):
            if not event.body:
                leg.execute(leg.connection.respond(event.transaction_id, 200, leg.now()))
                return
            self.received.append((sender.identity, event.body))
            cpim = msrp.CpimMessage.parse(event.body)
            to = cpim.to[0].uri
            others = [p for p in self.participants if p is not sender and p.leg.state.value == "up"]
            if to != ROOM:
                others = [p for p in others if p.identity == to]
                if not others:
                    leg.execute(leg.connection.respond(event.transaction_id, 404, leg.now()))
                    return
            leg.execute(leg.connection.respond(event.transaction_id, 200, leg.now()))
            for other in others:
                _mid, commands = other.leg.connection.send_message(
                    other.local_uri, "message/cpim", event.body, other.leg.now()
                )
                other.leg.execute(commands)
        elif isinstance(event, msrp.RequestReceived):
            value = dict(event.request.headers).get("Use-Nickname", "")
            nickname = msrp.parse_use_nickname(value)
            self.nicknames.append(nickname)
            code = 425 if nickname == "taken" else 200
            leg.execute(leg.connection.respond(event.request.transaction_id, code, leg.now()))

    def leg_failed(self, leg: MsrpLeg, error: LegError) -> None:
        self.leg_failures.append(error)

    # -- housekeeping --------------------------------------------------------------------

    def now(self) -> float:
        return float(self._reactor.seconds())

    def stop(self) -> Any:
        for participant in self.participants:
            participant.leg.close()
        return self.stack.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
