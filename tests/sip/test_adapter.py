"""The Twisted SIP adapter in memory: MemoryReactorClock, StringTransport, fake UDP port."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from focus.adapters.sip_transport import SipStack
from focus.sip.message import Limits, Response, parse_message
from focus.sip.transaction import Target
from focus.sip.ua import UAConfig

from .harness import Recorder, counter_random

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


class FakeUDPPort:
    def __init__(self, port: int, proto: Any, interface: str) -> None:
        self.port = port
        self.proto = proto
        self.interface = interface
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.listening = True

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.written.append((data, addr))

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.interface, self.port or 5060)

    def stopListening(self) -> None:
        self.listening = False


class Reactor(MemoryReactorClock):
    """MemoryReactorClock plus listenUDP."""

    def __init__(self) -> None:
        super().__init__()
        self.udp: list[FakeUDPPort] = []

    def listenUDP(
        self, port: int, proto: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeUDPPort:
        p = FakeUDPPort(port, proto, interface)
        proto.makeConnection(p)
        self.udp.append(p)
        return p


def options(
    branch: str = "z9hG4bKa1", via: str = "SIP/2.0/UDP 127.0.0.2:5062", cid: str = "o1"
) -> bytes:
    return (
        "OPTIONS sip:room@127.0.0.1 SIP/2.0\r\n"
        f"Via: {via};branch={branch};rport\r\n"
        "From: <sip:alice@example.net>;tag=a\r\nTo: <sip:room@127.0.0.1>\r\n"
        f"Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def invite(branch: str = "z9hG4bKi1") -> bytes:
    return (
        "INVITE sip:room@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.2:5062;branch={branch};rport\r\n"
        "From: <sip:alice@example.net>;tag=a\r\nTo: <sip:room@127.0.0.1>\r\n"
        "Call-ID: inv1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:alice@127.0.0.2:5062>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP


def make_stack(app: Any = None, limits: Limits | None = None) -> tuple[Reactor, SipStack]:
    reactor = Reactor()
    cfg = UAConfig(host="127.0.0.1", listen=(), limits=limits or Limits())
    stack = SipStack(reactor, cfg, app or Recorder(body=SDP), counter_random(), idle_timeout=30)
    stack.listen_udp(5060, "127.0.0.1")
    stack.listen_tcp(5060, "127.0.0.1")
    return reactor, stack


def tcp_peer(reactor: Reactor, port: int = 40001) -> tuple[Any, StringTransport]:
    factory = reactor.tcpServers[0][1]
    addr = IPv4Address("TCP", "127.0.0.2", port)
    proto = factory.buildProtocol(addr)
    transport = StringTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 5060))
    proto.makeConnection(transport)
    transport.protocol = proto
    return proto, transport


def responses(data: bytes) -> list[Response]:
    out = []
    for chunk in data.split(b"SIP/2.0 ")[1:]:
        msg = parse_message(b"SIP/2.0 " + chunk)
        assert isinstance(msg, Response)
        out.append(msg)
    return out


def test_udp_options_answered_to_rport() -> None:
    """An OPTIONS datagram is answered to the source address and port (RFC 3581)."""
    reactor, _stack = make_stack()
    port = reactor.udp[0]
    port.proto.datagramReceived(options(), ("127.0.0.2", 40000))
    ((data, addr),) = port.written
    assert addr == ("127.0.0.2", 40000)
    assert data.startswith(b"SIP/2.0 200 OK")


def test_udp_2xx_retransmitted_on_the_clock_until_ack() -> None:
    """The one reactor timer drives 2xx retransmission (§13.3.1.4) until the ACK."""
    reactor, _stack = make_stack()
    port = reactor.udp[0]
    port.proto.datagramReceived(invite(), ("127.0.0.2", 5062))
    oks = lambda: [d for d, _ in port.written if d.startswith(b"SIP/2.0 200")]  # noqa: E731
    assert len(oks()) == 1
    reactor.advance(0.5)
    assert len(oks()) == 2
    ok = parse_message(oks()[0])
    assert isinstance(ok, Response)
    ack = (
        "ACK sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bKack\r\n"
        f"From: <sip:alice@example.net>;tag=a\r\nTo: {ok.headers.get('To')}\r\nCall-ID: inv1\r\n"
        "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    port.proto.datagramReceived(ack, ("127.0.0.2", 5062))
    reactor.advance(10)
    assert len(oks()) == 2


def test_tcp_options_answered_on_the_same_connection() -> None:
    """§18.2.2: a response to a request over TCP goes back on its connection."""
    reactor, _stack = make_stack()
    _, transport = tcp_peer(reactor)
    data = options(via="SIP/2.0/TCP 127.0.0.2:40001")
    for i in range(len(data)):  # one byte at a time
        transport.protocol.dataReceived(data[i : i + 1])
    (resp,) = responses(transport.value())
    assert resp.status == 200


def test_garbage_datagram_does_not_stop_the_server() -> None:
    """A garbage datagram is dropped; the next OPTIONS from another peer is answered."""
    reactor, _stack = make_stack()
    port = reactor.udp[0]
    port.proto.datagramReceived(b"\x00\xff garbage \r\n\r\n", ("127.0.0.9", 1))
    port.proto.datagramReceived(options(), ("127.0.0.3", 5062))
    assert [a for _, a in port.written] == [("127.0.0.3", 5062)]


def test_huge_header_block_is_cut_off_not_buffered() -> None:
    """10 MB of header lines over TCP: the connection closes at the header limit and the
    buffer never exceeds it; another peer's OPTIONS is still answered."""
    reactor, stack = make_stack()
    proto, transport = tcp_peer(reactor)
    head = b"OPTIONS sip:room@127.0.0.1 SIP/2.0\r\n"
    transport.protocol.dataReceived(head)
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    sent = 0
    while sent < 10 * 1024 * 1024 and not transport.disconnecting:
        transport.protocol.dataReceived(line * 64)
        sent += len(line) * 64
        buffered = stack.ua._streams.get(proto.target)
        assert buffered is None or buffered.buffered <= Limits().max_header_bytes + len(line) * 64
    assert transport.disconnecting
    assert sent < 200 * 1024  # cut off near the 64 KiB limit, not after 10 MB
    _, other = tcp_peer(reactor, 40002)
    other.protocol.dataReceived(options(via="SIP/2.0/TCP 127.0.0.2:40002", cid="o2"))
    assert responses(other.value())[0].status == 200


def test_body_too_large_gets_513_then_close() -> None:
    """A Content-Length above the body limit is answered 513 and the connection closed."""
    reactor, _stack = make_stack(limits=Limits(max_body_bytes=1000))
    _, transport = tcp_peer(reactor)
    data = options(via="SIP/2.0/TCP 127.0.0.2:40001").replace(
        b"Content-Length: 0", b"Content-Length: 99999"
    )
    transport.protocol.dataReceived(data)
    (resp,) = responses(transport.value())
    assert resp.status == 513 and transport.disconnecting


def test_half_sent_message_does_not_block_others_and_times_out() -> None:
    """A half-sent request on one connection leaves others served; idle timeout closes it."""
    reactor, _stack = make_stack()
    _, half = tcp_peer(reactor)
    half.protocol.dataReceived(options()[:50])
    _, other = tcp_peer(reactor, 40002)
    other.protocol.dataReceived(options(via="SIP/2.0/TCP 127.0.0.2:40002", cid="o2"))
    assert responses(other.value())[0].status == 200
    assert not half.disconnecting
    reactor.advance(31)
    assert half.disconnecting


def test_outgoing_tcp_connection_is_opened_once_and_reused() -> None:
    """Requests to a TCP target open one connection, queue until it is up, then reuse it."""
    reactor, stack = make_stack()
    ua = stack.ua
    for i in range(2):
        uri = "sip:127.0.0.5:5070;transport=tcp"
        req = ua.new_request("OPTIONS", uri, from_="<sip:focus@127.0.0.1>", call_id=f"c{i}")
        ua.send_request(req, stack.now())
    assert len(reactor.tcpClients) == 1
    host, port, factory, *_ = reactor.tcpClients[0]
    assert (host, port) == ("127.0.0.5", 5070)
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    assert transport.value().count(b"OPTIONS sip:127.0.0.5:5070;transport=tcp SIP/2.0") == 2


def test_failed_connection_reports_503() -> None:
    """A refused outgoing connection ends the request with a synthesized 503 (§8.1.3.1)."""
    from twisted.internet.error import ConnectionRefusedError

    reactor, stack = make_stack()
    got: list[int] = []
    req = stack.ua.new_request(
        "OPTIONS", "sip:127.0.0.5:5070;transport=tcp", from_="<sip:f@127.0.0.1>"
    )
    stack.ua.send_request(req, stack.now(), lambda out, resp: got.append(resp.status))
    connector = reactor.connectors[0]
    reactor.tcpClients[0][2].clientConnectionFailed(connector, ConnectionRefusedError())
    assert got == [503]


def test_stop_closes_everything() -> None:
    """stop() stops listening, closes connections and leaves no timer behind."""
    reactor, stack = make_stack()
    reactor.udp[0].proto.datagramReceived(invite(), ("127.0.0.2", 5062))
    _, transport = tcp_peer(reactor)
    assert reactor.getDelayedCalls()
    d = stack.stop()
    assert transport.disconnecting
    assert not reactor.udp[0].listening
    assert [c for c in reactor.getDelayedCalls() if c.active() and c.func.__self__ is stack] == []  # type: ignore[attr-defined]
    assert d.called


@pytest.mark.parametrize("use_srv", [True, False])
def test_names_resolver_orders_srv_and_falls_back(use_srv: bool) -> None:
    """NamesResolver follows SRV records when present, else A records on the given port."""
    from twisted.internet import defer
    from twisted.names import dns

    from focus.adapters.sip_transport import NamesResolver

    class Fake:
        def lookupService(self, name: str) -> Any:
            assert name == "_sip._udp.example.net"
            rr = dns.RRHeader(
                name=name, type=dns.SRV, payload=dns.Record_SRV(10, 5, 5080, "sip1.example.net")
            )
            return defer.succeed(([rr], [], []))

        def getHostByName(self, name: str) -> Any:
            return defer.succeed(
                {"sip1.example.net": "192.0.2.7", "example.net": "192.0.2.8"}[name]
            )

    d = NamesResolver(Fake(), counter_random()).resolve("example.net", "UDP", 5060, use_srv)
    got = []
    d.addCallback(got.append)
    assert got == [[("192.0.2.7", 5080)] if use_srv else [("192.0.2.8", 5060)]]


def test_core_target_names_connection() -> None:
    """Stream targets are keyed by peer address, so responses find their connection."""
    reactor, stack = make_stack()
    proto, _ = tcp_peer(reactor)
    assert proto.target == Target("TCP", "127.0.0.2", 40001)
    assert stack._connections[proto.target] is proto


def test_sip_service_listens_and_stops() -> None:
    """SipService opens the configured listeners on start and releases them on stop."""
    from focus.adapters.sip_transport import Listen, SipService

    reactor = Reactor()
    stack = SipStack(reactor, UAConfig(host="127.0.0.1", listen=()), Recorder(), counter_random())
    svc = SipService(stack, [Listen("UDP", port=5070), Listen("TCP", port=5070)])
    svc.startService()
    assert [t.transport for t in stack.ua.config.listen] == ["UDP", "TCP"]
    assert len(reactor.tcpServers) == 1 and reactor.udp[0].listening
    d = svc.stopService()
    assert d.called and not reactor.udp[0].listening


def tls_peer(reactor: Reactor, port: int = 40003) -> tuple[Any, StringTransport]:
    factory = reactor.sslServers[0][1]
    addr = IPv4Address("TCP", "127.0.0.2", port)
    proto = factory.buildProtocol(addr)
    transport = StringTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 5061))
    proto.makeConnection(transport)
    transport.protocol = proto
    return proto, transport


def test_tls_connection_without_handshake_is_aborted_early() -> None:
    """An accepted SIP/TLS connection that does not finish its handshake within
    ``handshake_timeout`` is aborted long before the idle timeout, so half-open
    handshakes cannot hold the connection slots (RFC 3261 §26.3.1 deployments)."""
    reactor, stack = make_stack()
    stack.handshake_timeout = 5.0
    stack.listen_tls(5061, options=object())
    _, stalled = tls_peer(reactor)
    done, keyed = tls_peer(reactor, 40004)
    done.handshakeCompleted()
    reactor.advance(4.9)
    assert not stalled.disconnecting
    reactor.advance(0.2)
    assert stalled.disconnecting and stalled.disconnected  # aborted, not a polite close
    assert not keyed.disconnecting  # keyed in time: only the idle timeout applies
    reactor.advance(30)
    assert keyed.disconnecting


def test_closed_connection_is_aborted_if_the_peer_never_lets_go() -> None:
    """A connection we close (idle, framing error) is aborted after ``close_timeout`` if
    it is still there: a peer that stops reading (TCP) or never sends close_notify (TLS)
    cannot keep it open for ever."""
    reactor, stack = make_stack()
    stack.close_timeout = 2.0
    proto, transport = tcp_peer(reactor)
    reactor.advance(30)  # idle timeout: polite close first
    assert transport.disconnecting and not transport.disconnected
    reactor.advance(2.1)
    assert transport.disconnected
    proto.connectionLost(None)
    assert reactor.getDelayedCalls() == []


def test_response_after_the_connection_closed_goes_to_the_via_port() -> None:
    """§18.2.2: when the request's connection is gone, the response opens a connection to
    the source address (``received``) and the port of the Via sent-by, not to the peer's
    ephemeral source port, where nobody listens."""
    app = Recorder(answer=None)
    reactor, _stack = make_stack(app)
    proto, _transport = tcp_peer(reactor, 40001)
    proto.dataReceived(
        options(via="SIP/2.0/TCP 127.0.0.2:5070", cid="late").replace(b"OPTIONS", b"INFO")
    )
    proto.connectionLost(None)
    (incoming,) = app.requests
    incoming.respond(200, now=reactor.seconds())
    host, port, *_ = reactor.tcpClients[-1]
    assert (host, port) == ("127.0.0.2", 5070)


def test_response_on_a_live_connection_stays_on_it() -> None:
    """While the request's connection is open, the response uses it (§18.2.2)."""
    app = Recorder(answer=None)
    reactor, _stack = make_stack(app)
    proto, transport = tcp_peer(reactor, 40001)
    proto.dataReceived(
        options(via="SIP/2.0/TCP 127.0.0.2:5070", cid="live").replace(b"OPTIONS", b"INFO")
    )
    (incoming,) = app.requests
    incoming.respond(200, now=reactor.seconds())
    assert responses(transport.value())[0].status == 200
    assert reactor.tcpClients == []


def test_connection_attempts_count_against_the_limit() -> None:
    """Connections being opened count against ``max_connections`` like open ones: a
    request that would need one more gets 503 at once (§8.1.3.1) instead of an unbounded
    number of connection attempts and queues."""
    reactor, stack = make_stack()
    stack.max_connections = 2
    tcp_peer(reactor)
    got: list[int] = []
    for i in range(3):
        req = stack.ua.new_request(
            "OPTIONS", f"sip:127.0.0.{5 + i}:5070;transport=tcp", from_="<sip:f@127.0.0.1>"
        )
        stack.ua.send_request(req, stack.now(), lambda out, resp: got.append(resp.status))
    reactor.advance(0)
    assert len(reactor.tcpClients) == 1
    assert got == [503, 503]


def test_outgoing_connection_refused_by_the_limit_fails_its_requests() -> None:
    """An opened connection that arrives when the table is full is closed, and the
    requests queued for it end with 503 instead of waiting for ever."""
    reactor, stack = make_stack()
    got: list[int] = []
    req = stack.ua.new_request(
        "OPTIONS", "sip:127.0.0.5:5070;transport=tcp", from_="<sip:f@127.0.0.1>"
    )
    stack.ua.send_request(req, stack.now(), lambda out, resp: got.append(resp.status))
    stack.max_connections = 1
    tcp_peer(reactor)  # fills the table while we were connecting
    host, port, factory, *_ = reactor.tcpClients[0]
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    reactor.advance(0)
    assert transport.disconnecting and transport.value() == b""
    assert got == [503]
    assert stack._pending == {}
