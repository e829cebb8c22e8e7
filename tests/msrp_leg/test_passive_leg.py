"""Passive legs in memory: one port each, one connection, one handshake, typed failures."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import FakeTransport

from focus.adapters.msrp_leg import (
    LegConnectionLost,
    LegError,
    LegHandshakeFailed,
    LegProtocolError,
    LegState,
    LegTimeout,
    PortAllocator,
)
from focus.msrp.connection import (
    ArmTimer,
    FrameRejected,
    MessageAborted,
    MessageReceived,
    SessionBound,
)
from tests.msrp_leg._support import (
    FIRST_CHUNK,
    FOCUS_URI,
    OTHER_PSK,
    SEND,
    Recorder,
    config,
    core,
    dial,
    passive,
    server_factory,
)


@pytest.fixture
def reactor() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def allocator() -> PortAllocator:
    return PortAllocator(20000, 20009)


def test_listens_on_a_port_of_the_range(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """start() listens on the configured host, on a port taken from the allocator."""
    leg = passive(reactor, Recorder(), allocator)
    port, _factory, backlog, interface = reactor.tcpServers[0]
    assert leg.port == port == 20000
    assert interface == "127.0.0.1"
    assert backlog == 1
    assert allocator.in_use == {20000}
    assert leg.state is LegState.WAITING


def test_first_connection_keys_the_leg_and_stops_listening(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """The first client with the right PSK brings the leg up; the listener is closed."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    factory = server_factory(reactor, leg.port)  # type: ignore[arg-type]
    _server, probe, _pump, _io = dial(reactor, factory)
    assert probe.handshake_done
    assert rec.kinds() == ["up"]
    assert leg.state is LegState.UP
    assert leg._listening is None  # stopListening was called
    assert allocator.in_use == {leg.port}  # held until the leg ends


def test_second_connection_is_refused(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A passive leg accepts exactly one connection; the next gets no protocol at all."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    factory = server_factory(reactor, leg.port)  # type: ignore[arg-type]
    dial(reactor, factory)
    second, probe, _pump, _io = dial(reactor, factory)
    assert second is None
    assert not probe.handshake_done
    assert rec.kinds() == ["up"]


def test_nobody_connects_times_out_and_frees_port(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """With no connection within setup_timeout the leg fails with LegTimeout and frees its port."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator, cfg=config(setup_timeout=5.0))
    reactor.advance(4.9)
    assert rec.kinds() == []
    reactor.advance(0.2)
    [failure] = rec.failures()
    assert isinstance(failure, LegTimeout)
    assert leg.state is LegState.FAILED
    assert allocator.in_use == frozenset()
    assert leg._listening is None
    # A connection arriving after the timeout is refused.
    second, _probe, _pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    assert second is None


def test_connected_but_silent_peer_times_out(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A TCP connection without a completed handshake does not stop the setup timer."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    server = server_factory(reactor, leg.port).buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))  # type: ignore[arg-type]
    transport = StringTransport()
    server.makeConnection(transport)
    assert leg.state is LegState.HANDSHAKING
    reactor.advance(5.0)
    assert [type(f) for f in rec.failures()] == [LegTimeout]
    assert transport.disconnecting  # aborted
    assert allocator.in_use == frozenset()


def test_wrong_psk_is_a_typed_handshake_failure(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A client holding another PSK fails the handshake: LegHandshakeFailed, port freed."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, _pump, _io = dial(reactor, server_factory(reactor, leg.port), psk=OTHER_PSK)  # type: ignore[arg-type]
    assert not probe.handshake_done
    [failure] = rec.failures()
    assert isinstance(failure, LegHandshakeFailed)
    assert any("bad record mac" in r for r in failure.reasons)
    assert "up" not in rec.kinds()
    assert allocator.in_use == frozenset()
    assert OTHER_PSK.hex() not in str(failure)


def test_messages_reach_the_listener_and_are_answered(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """Bytes from the peer go to the leg's MSRP core; its events reach the listener and
    its answer (200 OK) goes back on the leg, whatever the TLS record boundaries."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    for i in range(0, len(SEND), 7):  # split across TLS records
        probe.transport.write(SEND[i : i + 7])
        pump.flush()
    assert [type(e) for e in rec.msrp()] == [SessionBound, MessageReceived]
    [message] = rec.msrp(MessageReceived)
    assert (message.message_id, message.body) == ("87652491", b"hello")
    assert message.local_uri == FOCUS_URI
    assert probe.received.startswith(b"MSRP a786hjs2 200")
    assert probe.received.endswith(b"-------a786hjs2$\r\n")


def test_bad_frame_is_answered_not_fatal(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A frame the core rejects is answered 400 and reported; the leg stays up."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    bad = SEND.replace(b"Byte-Range: 1-5/5", b"Byte-Range: nonsense")
    probe.transport.write(bad + SEND)
    pump.flush()
    [rejected] = rec.msrp(FrameRejected)
    assert rejected.error.status == 400
    assert len(rec.msrp(MessageReceived)) == 1
    assert b"MSRP a786hjs2 400" in probe.received
    assert leg.state is LegState.UP


def test_unframeable_stream_fails_the_leg(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """Bytes that are not MSRP at all fail the leg with LegProtocolError and close it."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    probe.transport.write(b"GET / HTTP/1.1\r\n\r\n")
    pump.flush()
    [failure] = rec.failures()
    assert isinstance(failure, LegProtocolError)
    assert failure.status == 400
    assert rec.kinds()[-1] == "failed"
    assert probe.reason is not None  # the peer saw the connection go
    assert allocator.in_use == frozenset()


def test_pending_work_fails_before_leg_failed(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """When a leg is lost mid-message, the core's MessageAborted precedes leg_failed."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    probe.transport.write(FIRST_CHUNK)
    pump.flush()
    probe.transport.loseConnection()
    pump.flush()
    assert rec.kinds()[-2:] == ["msrp", "failed"]
    assert isinstance(rec.events[-2][2], MessageAborted)
    assert isinstance(rec.failures()[0], LegConnectionLost)


def test_chunk_reception_timer_runs_on_the_leg_clock(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """The core's ArmTimer is carried out with the injected clock (RFC 7701 §6.1 timer)."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    leg.connection = core(chunk_reception_timeout=100.0)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    probe.transport.write(
        SEND.replace(b"Byte-Range: 1-5/5", b"Byte-Range: 1-5/10").replace(
            b"a786hjs2$", b"a786hjs2+"
        )
    )
    pump.flush()
    reactor.advance(99.0)
    assert rec.msrp(MessageAborted) == []
    reactor.advance(1.0)
    [aborted] = rec.msrp(MessageAborted)
    assert aborted.reason == "chunk reception timeout"
    assert leg.state is LegState.UP


def test_send_before_up_is_delivered_after_handshake(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """Bytes sent before the handshake wait in the leg's queue and follow it in order."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    leg.send(b"first ")
    leg.send(b"second")
    assert leg.queued_bytes == 12
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    pump.flush()
    assert probe.received == b"first second"
    assert leg.queued_bytes == 0


def test_local_close_is_silent_and_frees_port(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """close() ends the leg without a listener callback, closes TLS, and frees the port."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    leg.send(b"bye")
    pump.flush()
    leg.close()
    pump.flush()
    assert rec.kinds() == ["up"]
    assert probe.received == b"bye"
    assert probe.reason is not None
    assert leg.state is LegState.CLOSED
    assert allocator.in_use == frozenset()
    leg.send(b"ignored")  # a closed leg swallows sends
    assert leg.queued_bytes == 0


def test_peer_close_after_up_is_connection_lost(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """When the peer closes a leg that was up, the listener gets LegConnectionLost."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    probe.transport.loseConnection()
    pump.flush()
    [failure] = rec.failures()
    assert isinstance(failure, LegConnectionLost)
    assert "closed by the peer" in str(failure)
    assert allocator.in_use == frozenset()


def test_listener_may_close_leg_while_frames_arrive(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A listener that closes the leg on the first event receives no further events."""

    class Closer(Recorder):
        def msrp_event(self, leg, event):  # type: ignore[no-untyped-def]
            super().msrp_event(leg, event)
            leg.close()

    rec = Closer()
    leg = passive(reactor, rec, allocator)
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    probe.transport.write(SEND + SEND)
    pump.flush()
    assert rec.kinds() == ["up", "msrp"]


def test_start_twice_is_an_error(reactor: MemoryReactorClock, allocator: PortAllocator) -> None:
    """A leg is started once; a second start() raises LegError."""
    leg = passive(reactor, Recorder(), allocator)
    with pytest.raises(LegError):
        leg.start()


def test_local_close_while_waiting_frees_port_silently(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """close() before anyone connected stops listening, frees the port, and never times out."""
    rec = Recorder()
    leg = passive(reactor, rec, allocator)
    leg.close()
    reactor.advance(60)
    assert rec.events == []
    assert allocator.in_use == frozenset()
    second, _probe, _pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    assert second is None


def test_close_aborts_a_peer_that_never_finishes_the_tls_shutdown(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """After close(), a peer that neither answers close_notify nor closes TCP is cut off
    after ``close_timeout``: the leg's socket is never held for ever (RFC 5246 §7.2.1
    lets us close without waiting, Twisted waits for the peer's close_notify)."""
    leg = passive(reactor, Recorder(), allocator, cfg=config(close_timeout=2.0))
    _server, _probe, _pump, server_io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    leg.close()  # the peer reads nothing from now on: no pump
    assert not server_io.disconnecting
    reactor.advance(1.9)
    assert not server_io.disconnecting
    reactor.advance(0.2)
    assert server_io.disconnecting
    assert reactor.getDelayedCalls() == []


def test_close_timer_is_cancelled_when_the_peer_completes_the_shutdown(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A peer that completes the TLS shutdown leaves no timer behind."""
    leg = passive(reactor, Recorder(), allocator, cfg=config(close_timeout=2.0))
    _server, probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    leg.close()
    pump.flush()
    assert probe.reason is not None
    assert reactor.getDelayedCalls() == []


class _Faulty(Recorder):
    """A listener with a bug: every callback records, then raises."""

    def msrp_event(self, leg, event):  # type: ignore[no-untyped-def]
        super().msrp_event(leg, event)
        raise RuntimeError("listener bug")

    def leg_failed(self, leg, error):  # type: ignore[no-untyped-def]
        super().leg_failed(leg, error)
        raise RuntimeError("listener bug")


def test_listener_exception_does_not_escape_into_the_reactor(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A listener that raises is logged, not propagated: the frames after it are still
    delivered and the connection stays up (an exception in dataReceived would make
    Twisted drop the connection, and with the conference relaying synchronously, one
    participant's leg could drop another's)."""
    rec = _Faulty()
    leg = passive(reactor, rec, allocator)
    _server, _probe, pump, _io = dial(reactor, server_factory(reactor, leg.port))  # type: ignore[arg-type]
    _probe.transport.write(SEND + SEND.replace(b"a786hjs2", b"b786hjs2"))
    pump.flush()
    assert len(rec.msrp(MessageReceived)) == 2
    assert leg.state is LegState.UP


def test_send_never_raises_even_if_leg_failed_does(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """send() keeps its promise never to raise: a queue overflow reports leg_failed, and
    an exception from that callback stays inside the leg (the caller may be relaying
    another participant's message)."""
    rec = _Faulty()
    leg = passive(reactor, rec, allocator, cfg=config(max_queued_bytes=10))
    leg.send(b"x" * 11)  # not up yet: queued, over the bound
    assert leg.state is LegState.FAILED
    assert rec.kinds() == ["failed"]


def test_msrp_timer_is_not_rearmed_for_every_later_deadline(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """A deadline moving later (a 200 retired the oldest transaction) keeps the one armed
    DelayedCall; it still fires handle_timeout at the last deadline asked for, and an
    earlier deadline re-arms it earlier."""
    leg = passive(reactor, Recorder(), allocator, cfg=config(setup_timeout=1000.0))
    fired: list[float] = []

    def handle_timeout(now: float) -> list[object]:
        fired.append(now)
        return []

    leg.connection.handle_timeout = handle_timeout  # type: ignore[method-assign]
    setup_calls = len(reactor.getDelayedCalls())
    leg.execute([ArmTimer(10.0)])
    (call,) = reactor.getDelayedCalls()[setup_calls:]
    for deadline in (11.0, 12.5, 14.0):
        leg.execute([ArmTimer(deadline)])
    assert reactor.getDelayedCalls()[setup_calls:] == [call]
    reactor.advance(10.0)  # the early timer fires and re-arms for 14.0
    assert fired == []
    reactor.advance(4.0)
    assert fired == [14.0]
    leg.execute([ArmTimer(30.0)])
    leg.execute([ArmTimer(20.0)])  # earlier than armed: re-armed earlier
    reactor.advance(6.0)
    assert fired == [14.0, 20.0]
    leg.execute([ArmTimer(None)])  # nothing due any more: a leftover timer does nothing
    reactor.advance(60.0)
    assert fired == [14.0, 20.0]


class _NoDelayRecorder(FakeTransport):  # type: ignore[misc]
    nodelay: bool | None = None

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.nodelay = enabled


def test_leg_disables_nagle_on_its_connection(
    reactor: MemoryReactorClock, allocator: PortAllocator
) -> None:
    """Small MSRP frames are not held back by Nagle's algorithm (TCP_NODELAY is set when
    the leg's connection is made), so a 200 or a chat message never waits for a delayed
    ACK."""
    leg = passive(reactor, Recorder(), allocator)
    _server, _probe, _pump, server_io = dial(
        reactor, server_factory(reactor, leg.port), transport_cls=_NoDelayRecorder
    )
    assert isinstance(server_io, _NoDelayRecorder)
    assert server_io.nodelay is True
    assert leg.state is LegState.UP
