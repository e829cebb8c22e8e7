"""The focus service on real loopback sockets: sipp's refused offers, what reaches a
leg port without the right key, and a keyed two-participant relay.

Each test starts the focus in-process (real reactor, a stand-in KMS) and every client it
needs, on free loopback ports, bounded by LIMIT seconds.
"""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, protocol
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

import mikey
from focus.config import FocusConfig, KmsSettings, MsrpSettings, SipListen, SipSettings
from focus.keying import TransferOffer, complete_initiator, start_initiator
from focus.msrp import (
    ByteRange,
    CpimAddress,
    CpimMessage,
    FrameParser,
    MsrpUri,
    Request,
    Response,
    parse_path,
)
from focus.sdp import SessionDescription, effective_key_mgmt, path
from focus.service import FocusService
from focus.sip.message import Response as SipResponse
from focus.sip.message import parse_message
from focus.tls_psk import TLSPSKClientCreator
from kms_client import TicketResolution
from policies import parse_policy
from tests.keying._tickets import ROOM, make_grant

from ._harness import POLICY, invite, mikey_attr, offer_sdp

pytestmark = pytest.mark.interop

LIMIT = 10.0
SIPP = "/usr/bin/sipp"
SCENARIOS = Path(__file__).parent / "sipp"
ALICE = "sip:alice@example.net"
BOB = "sip:bob@example.net"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@attrs.define
class TicketKms:
    """Stands in for the KMS: resolves the tickets of the grants it was given."""

    grants: dict[bytes, mikey.TicketGrant] = attrs.Factory(dict)

    def add(self, grant: mikey.TicketGrant) -> None:
        self.grants[grant.ticket] = grant

    def resolve_ticket(
        self, *, responder: str, ticket: bytes, rand_r: bytes | None = None
    ) -> defer.Deferred[Any]:
        grant = self.grants[ticket]
        return defer.succeed(
            TicketResolution(
                mpki=grant.mpki,
                tgk=grant.tgk,
                spi=grant.spi,
                responder=responder,
                rand_r=os.urandom(16),
            )
        )


@pytest_twisted.inlineCallbacks
def start_focus(kms: TicketKms) -> Any:
    reactor = _reactor()
    base = free_port() // 10 * 10
    config = FocusConfig(
        kms=KmsSettings(
            base_url="https://127.0.0.1:1/mikey-ticket/v1",
            identity="sip:kms@example.net",
            account="sip:focus@conf.example.net",
            key=bytes(16),
        ),
        policy_file=Path("unused.toml"),
        sip=SipSettings(
            listen=(
                SipListen("UDP", "127.0.0.1", free_port(socket.SOCK_DGRAM)),
                SipListen("TCP", "127.0.0.1", free_port()),
            ),
        ),
        msrp=MsrpSettings(port_min=base, port_max=base + 9, leg_timeout=LIMIT / 2),
    )
    service = FocusService(
        config,
        reactor=reactor,
        kms=kms,
        policy=parse_policy(POLICY),
        log_stream=io.StringIO(),
    )
    service.startService()
    yield service.ready
    return service


# -- sipp: offers the focus must refuse -----------------------------------------------------


class _Collect(protocol.ProcessProtocol):
    def __init__(self, done: defer.Deferred[tuple[int | None, bytes]]) -> None:
        self.done = done
        self.out = b""

    def outReceived(self, data: bytes) -> None:
        self.out = (self.out + data)[-20000:]

    def errReceived(self, data: bytes) -> None:
        self.out = (self.out + data)[-20000:]

    def processEnded(self, reason: Any) -> None:
        self.done.callback((reason.value.exitCode, self.out))


@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest.mark.parametrize("scenario", ["tcp_msrp_488.xml", "audio_only_488.xml"])
@pytest_twisted.inlineCallbacks
def test_sipp_offer_refused_with_488_and_warning(
    tmp_path: Path, scenario: str, transport: str
) -> Any:
    """sipp offers TCP/MSRP or audio only: the running focus answers 488 with a Warning
    saying why (checked by the scenario), and nobody joins."""
    reactor = _reactor()
    service = yield start_focus(TicketKms())
    sip = {t.transport: t.port for t in service.listening}
    port = sip["UDP" if transport == "u1" else "TCP"]
    kind = socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM
    args = [
        SIPP, "-sf", str(SCENARIOS / scenario), "-m", "1", "-timeout", "10s",
        "-timeout_error", "-trace_err", "-error_file", str(tmp_path / "errors.log"),
        "-trace_stat", "-stf", str(tmp_path / "stats.csv"),
        "-i", "127.0.0.1", "-p", str(free_port(kind)), "-t", transport, "-nostdin",
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    done: defer.Deferred[tuple[int | None, bytes]] = defer.Deferred()
    proc = reactor.spawnProcess(_Collect(done), SIPP, args, env=dict(os.environ),
                                path=str(tmp_path))  # fmt: skip
    killer = reactor.callLater(LIMIT * 2, proc.signalProcess, "KILL")
    try:
        code, out = yield done
    finally:
        if killer.active():
            killer.cancel()
        yield service.stopService()
    errors = tmp_path / "errors.log"
    err_text = errors.read_text(errors="replace") if errors.exists() else ""
    assert code == 0, out.decode(errors="replace")[-3000:] + err_text
    assert err_text.strip() == "", err_text
    stats = (tmp_path / "stats.csv").read_text().splitlines()
    row = dict(zip(stats[0].split(";"), stats[-1].split(";"), strict=False))
    assert row["SuccessfulCall(C)"] == "1" and row["FailedCall(C)"] == "0", row
    assert service.app.conference.participants == ()


# -- an in-process SIP phone over UDP ----------------------------------------------------


class Phone(protocol.DatagramProtocol):
    """Sends requests to the focus and hands every datagram to whoever waits for it."""

    def __init__(self, focus_port: int) -> None:
        self.focus = ("127.0.0.1", focus_port)
        self.received: list[bytes] = []
        self.waiters: list[tuple[Any, defer.Deferred[bytes]]] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)
        for item in list(self.waiters):
            predicate, d = item
            if predicate(datagram):
                self.waiters.remove(item)
                d.callback(datagram)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data, self.focus)

    def wait(self, predicate: Any) -> defer.Deferred[bytes]:
        for data in self.received:
            if predicate(data):
                return defer.succeed(data)
        d: defer.Deferred[bytes] = defer.Deferred()
        self.waiters.append((predicate, d))
        return d.addTimeout(LIMIT, _reactor())


@attrs.define
class Joined:
    phone: Phone
    port: int
    focus_path: tuple[MsrpUri, ...]
    psk: bytes
    response: SipResponse


def _final(data: bytes) -> bool:
    return data.startswith(b"SIP/2.0 ") and not data.startswith(b"SIP/2.0 1")


@pytest_twisted.inlineCallbacks
def dial_in(service: FocusService, kms: TicketKms, who: str, call_id: str) -> Any:
    reactor = _reactor()
    sip = {t.transport: t.port for t in service.listening}
    phone = Phone(sip["UDP"])
    listening = reactor.listenUDP(0, phone, interface="127.0.0.1")
    grant = make_grant(initiator=who, now=reactor.seconds())
    kms.add(grant)
    offer: TransferOffer = start_initiator(
        grant,
        initiator=who,
        responder=ROOM,
        now=reactor.seconds(),
        csb_id=int.from_bytes(os.urandom(4), "big"),
        rand=os.urandom(16),
    )
    body = offer_sdp(mikey_attr(offer.transfer_init))
    local = listening.getHost().port
    data = invite(body, from_uri=who, call_id=call_id, branch=f"z9hG4bK{call_id}")
    data = data.replace(b"127.0.0.2:5062", f"127.0.0.1:{local}".encode())
    phone.send(data)
    raw = yield phone.wait(_final)
    response = parse_message(raw)
    assert isinstance(response, SipResponse) and response.status == 200, raw[:300]
    answer = SessionDescription.parse(response.body)
    media = answer.media[0]
    keys, _level = effective_key_mgmt(media, answer)
    key = complete_initiator(offer, keys[0].data, now=reactor.seconds())
    to = response.headers.get("To")
    phone.send(
        (
            f"ACK {ROOM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKa{call_id}"
            f"\r\nFrom: <{who}>;tag=ph1\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    focus_path = tuple(MsrpUri.parse(str(u)) for u in path(media))
    return Joined(phone, media.port, focus_path, key.psk, response), listening


# -- TLS-PSK and plain clients of a leg ----------------------------------------------------


@implementer(IHandshakeListener)
class LegClient(protocol.Protocol):
    def __init__(self) -> None:
        self.keyed: defer.Deferred[None] = defer.Deferred()
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.data = b""
        self.frames: list[Any] = []
        self.parser = FrameParser()
        self.frame_waiters: list[tuple[Any, defer.Deferred[Any]]] = []

    def handshakeCompleted(self) -> None:
        self.keyed.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for frame in self.parser.feed(data):
            self.frames.append(frame)
            for item in list(self.frame_waiters):
                if item[0](frame):
                    self.frame_waiters.remove(item)
                    item[1].callback(frame)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.keyed.called:
            self.keyed.errback(reason)
        self.lost.callback(None)

    def wait_frame(self, predicate: Any) -> defer.Deferred[Any]:
        for frame in self.frames:
            if predicate(frame):
                return defer.succeed(frame)
        d: defer.Deferred[Any] = defer.Deferred()
        self.frame_waiters.append((predicate, d))
        return d.addTimeout(LIMIT, _reactor())


def connect_tls(port: int, psk: bytes) -> LegClient:
    client = LegClient()
    factory = TLSMemoryBIOFactory(
        TLSPSKClientCreator(psk),
        True,
        protocol.ClientFactory.forProtocol(lambda: client),  # type: ignore[arg-type]
    )
    _reactor().connectTCP("127.0.0.1", port, factory, timeout=LIMIT)
    return client


def connect_plain(port: int) -> LegClient:
    client = LegClient()
    protocol.ClientCreator(_reactor(), lambda: client).connectTCP("127.0.0.1", port, LIMIT)
    return client


MY_PATH = parse_path("msrps://127.0.0.2:7654/s3ss10n;tcp")


def msrp_send(joined: Joined, tid: str, body: bytes | None, content_type: str | None) -> bytes:
    return Request(
        transaction_id=tid,
        method="SEND",
        to_path=joined.focus_path,
        from_path=MY_PATH,
        message_id=f"m{tid}",
        byte_range=ByteRange(1, len(body), len(body)) if body else None,
        content_type=content_type,
        body=body,
    ).encode()


def _is_bye(data: bytes) -> bool:
    return data.startswith(b"BYE ")


@pytest_twisted.inlineCallbacks
def test_plain_tcp_to_a_leg_port_gets_nothing() -> None:
    """An MSRP request over plain TCP to a participant's leg port is never answered: the
    connection is dropped, the leg fails and the focus hangs up that call with BYE."""
    kms = TicketKms()
    service = yield start_focus(kms)
    joined, udp = yield dial_in(service, kms, ALICE, "plain1")
    try:
        client = connect_plain(joined.port)
        yield _wait_connected(client)
        client.transport.write(msrp_send(joined, "plainTid1", None, None))  # type: ignore[union-attr]
        yield client.lost.addTimeout(LIMIT, _reactor())
        assert b"MSRP" not in client.data
        yield joined.phone.wait(_is_bye)
        assert service.app.conference.participants == ()
    finally:
        yield service.stopService()
        yield udp.stopListening()


@pytest_twisted.inlineCallbacks
def _wait_connected(client: LegClient) -> Any:
    reactor = _reactor()
    for _ in range(int(LIMIT / 0.01)):
        if client.transport is not None:
            return
        yield defer.Deferred().addTimeout(0.01, reactor).addErrback(lambda _f: None)
    raise AssertionError("not connected")


@pytest_twisted.inlineCallbacks
def test_wrong_psk_cannot_reach_a_leg() -> None:
    """A TLS-PSK client with another key fails the handshake, never sees MSRP, and the
    leg it tried is gone (BYE to the participant whose port it took)."""
    kms = TicketKms()
    service = yield start_focus(kms)
    joined, udp = yield dial_in(service, kms, ALICE, "wrong1")
    try:
        client = connect_tls(joined.port, bytes(16))
        with pytest.raises(Exception):  # noqa: B017 - any handshake failure
            yield client.keyed
        yield client.lost.addTimeout(LIMIT, _reactor())
        assert client.frames == []
        yield joined.phone.wait(_is_bye)
        assert service.app.conference.participants == ()
    finally:
        yield service.stopService()
        yield udp.stopListening()


@pytest_twisted.inlineCallbacks
def test_two_keyed_participants_chat() -> None:
    """Alice and Bob dial in, key their legs with the PSKs from their MIKEY exchanges,
    bind their sessions, and Alice's CPIM message reaches Bob unchanged."""
    kms = TicketKms()
    service = yield start_focus(kms)
    alice, udp_a = yield dial_in(service, kms, ALICE, "chatA")
    bob, udp_b = yield dial_in(service, kms, BOB, "chatB")
    try:
        assert alice.port != bob.port
        a, b = connect_tls(alice.port, alice.psk), connect_tls(bob.port, bob.psk)
        yield defer.gatherResults([a.keyed, b.keyed])
        for client, joined, tid in ((a, alice, "bindA01"), (b, bob, "bindB01")):
            client.transport.write(msrp_send(joined, tid, None, None))  # type: ignore[union-attr]
            ok = yield client.wait_frame(
                lambda f, tid=tid: isinstance(f, Response) and f.transaction_id == tid
            )
            assert ok.code == 200
        body = CpimMessage.build(
            from_=CpimAddress(ALICE), to=(CpimAddress(ROOM),), content_type="text/plain",
            content=b"hello bob",
        ).encode()  # fmt: skip
        a.transport.write(msrp_send(alice, "msgA0001", body, "message/cpim"))  # type: ignore[union-attr]
        copy = yield b.wait_frame(lambda f: isinstance(f, Request) and f.method == "SEND")
        assert copy.body == body and copy.transaction_id != "msgA0001"
        answered = yield a.wait_frame(
            lambda f: isinstance(f, Response) and f.transaction_id == "msgA0001"
        )
        assert answered.code == 200
        states = {p.uri: p.state.value for p in service.app.conference.participants}
        assert states == {ALICE: "bound", BOB: "bound"}
    finally:
        yield service.stopService()
        yield udp_a.stopListening()
        yield udp_b.stopListening()
