"""Active legs in memory: connect, handshake as TLS client, typed failures."""

from __future__ import annotations

from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConnectFailed,
    LegHandshakeFailed,
    LegState,
    LegTimeout,
    PortAllocator,
)
from focus.msrp.connection import MessageReceived, MessageSent, SessionBound, TransactionFailed
from focus.msrp.session import SessionParams
from focus.tls_psk import TLSPSKClientCreator
from tests.msrp_leg._support import (
    ALICE_URI,
    FOCUS_URI,
    OTHER_PSK,
    PSK,
    Recorder,
    accept_from,
    config,
    core,
    passive,
    server_factory,
)


def active(reactor: MemoryReactorClock, rec: Recorder, psk: bytes = PSK, **kw: float) -> ActiveLeg:
    leg = ActiveLeg(
        "out-1",
        TLSPSKClientCreator(psk),
        core(ALICE_URI, FOCUS_URI),
        rec,
        host="127.0.0.1",
        port=20000,
        reactor=reactor,
        clock=reactor,
        config=config(**kw),
    )
    leg.start()
    return leg


def test_connects_to_the_given_address_with_the_setup_timeout() -> None:
    """start() connects to host:port with the configured timeout."""
    reactor = MemoryReactorClock()
    leg = active(reactor, Recorder(), setup_timeout=7.0)
    host, port, _factory, timeout, _bind = reactor.tcpClients[0]
    assert (host, port, timeout) == ("127.0.0.1", 20000, 7.0)
    assert leg.state is LegState.WAITING


def test_active_and_passive_legs_key_each_other() -> None:
    """An active and a passive leg with the same PSK come up; the active side binds the
    session with its first SEND (RFC 4975 §5.4) and a message crosses with its 200."""
    reactor = MemoryReactorClock()
    server_rec, client_rec = Recorder(), Recorder()
    server_leg = passive(reactor, server_rec, PortAllocator(20000, 20009))
    client_leg = active(reactor, client_rec)
    _s, _c, pump = accept_from(
        reactor,
        reactor.tcpClients[0][2],
        server_factory(reactor, server_leg.port),  # type: ignore[arg-type]
    )
    assert server_rec.kinds() == client_rec.kinds() == ["up"]
    [params] = [SessionParams(local_uri=ALICE_URI, peer_path=(FOCUS_URI,))]
    client_leg.execute(client_leg.connection.open_session(params, client_leg.now()))
    _mid, commands = client_leg.connection.send_message(
        ALICE_URI, "text/plain", b"hello", client_leg.now()
    )
    client_leg.execute(commands)
    pump.flush()
    assert [type(e) for e in server_rec.msrp()] == [SessionBound, MessageReceived]
    assert server_rec.msrp(MessageReceived)[0].body == b"hello"
    assert len(client_rec.msrp(MessageSent)) == 1


def test_unanswered_request_times_out_on_the_leg_clock() -> None:
    """A SEND nobody answers fails with 408 after the core's 30 s transaction timer,
    run by the leg's injected clock (RFC 4975 §7.1.1)."""
    reactor = MemoryReactorClock()
    rec = Recorder()
    server_leg = passive(reactor, Recorder(), PortAllocator(20000, 20009))
    client_leg = active(reactor, rec)
    accept_from(reactor, reactor.tcpClients[0][2], server_factory(reactor, server_leg.port))  # type: ignore[arg-type]
    server_leg.pause_reading()  # the peer reads nothing: no 200 will come
    params = SessionParams(local_uri=ALICE_URI, peer_path=(FOCUS_URI,))
    client_leg.execute(client_leg.connection.open_session(params, client_leg.now()))
    reactor.advance(29.0)
    assert rec.msrp(TransactionFailed) == []
    reactor.advance(1.0)
    [failed] = rec.msrp(TransactionFailed)
    assert failed.code == 408
    assert client_leg.state is LegState.UP


def test_wrong_psk_fails_both_legs() -> None:
    """Different PSKs on the two legs fail both with LegHandshakeFailed."""
    reactor = MemoryReactorClock()
    server_rec, client_rec = Recorder(), Recorder()
    server_leg = passive(reactor, server_rec, PortAllocator(20000, 20009))
    active(reactor, client_rec, psk=OTHER_PSK)
    accept_from(reactor, reactor.tcpClients[0][2], server_factory(reactor, server_leg.port))  # type: ignore[arg-type]
    assert [type(f) for f in server_rec.failures()] == [LegHandshakeFailed]
    assert [type(f) for f in client_rec.failures()] == [LegHandshakeFailed]


def test_connect_failure_is_typed() -> None:
    """A refused connect fails the leg with LegConnectFailed."""
    reactor = MemoryReactorClock()
    rec = Recorder()
    leg = active(reactor, rec)
    factory = reactor.tcpClients[0][2]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    [failure] = rec.failures()
    assert isinstance(failure, LegConnectFailed)
    assert leg.state is LegState.FAILED


def test_no_connection_within_timeout() -> None:
    """A connect (or handshake) that takes longer than setup_timeout fails with LegTimeout."""
    reactor = MemoryReactorClock()
    rec = Recorder()
    active(reactor, rec, setup_timeout=3.0)
    reactor.advance(3.0)
    assert [type(f) for f in rec.failures()] == [LegTimeout]
    assert reactor.connectors[0].stoppedConnecting


def test_tcp_connect_timeout_is_a_leg_timeout() -> None:
    """A connect that times out in the reactor is reported as LegTimeout, not as refused."""
    from twisted.internet.error import TimeoutError as ConnectTimeout

    reactor = MemoryReactorClock()
    rec = Recorder()
    active(reactor, rec)
    reactor.tcpClients[0][2].clientConnectionFailed(
        reactor.connectors[0], Failure(ConnectTimeout())
    )
    assert [type(f) for f in rec.failures()] == [LegTimeout]


def test_local_close_while_connecting_stops_the_attempt() -> None:
    """close() before the connection is made stops connecting and calls nobody back."""
    reactor = MemoryReactorClock()
    rec = Recorder()
    leg = active(reactor, rec)
    leg.close()
    reactor.advance(60)
    assert reactor.connectors[0].stoppedConnecting
    assert rec.events == []
    assert leg.state is LegState.CLOSED
