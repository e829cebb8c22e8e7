"""Flow control: a slow reader fills only its own bounded queue and fails alone."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from focus.adapters.msrp_leg import LegQueueOverflow, LegState, PortAllocator
from focus.msrp.connection import MessageReceived
from tests.msrp_leg._support import (
    SEND,
    Recorder,
    SocketLikeTransport,
    config,
    dial,
    passive,
    server_factory,
)

CHUNK = b"x" * 2048


def _legs(count: int, max_queued: int = 64 * 1024):  # type: ignore[no-untyped-def]
    reactor = MemoryReactorClock()
    allocator = PortAllocator(20000, 20009)
    rec = Recorder()
    cfg = config(max_queued_bytes=max_queued)
    legs, links = [], []
    for i in range(count):
        leg = passive(reactor, rec, allocator, f"leg-{i}", cfg)
        _server, probe, pump, io = dial(
            reactor, server_factory(reactor, leg.port), transport_cls=SocketLikeTransport
        )
        legs.append(leg)
        links.append((probe, pump, io))
    assert rec.kinds() == ["up"] * count
    return reactor, rec, legs, links, allocator


def test_stalled_reader_fails_alone_and_others_keep_receiving() -> None:
    """With one reader stalled, a fan-out keeps reaching the others; only the stalled leg
    overflows its queue and is failed."""
    _reactor, rec, legs, links, allocator = _legs(3)
    stalled_probe, _pump, stalled_io = links[1]
    stalled_io.stalled = True
    rounds = 100  # 200 KiB per leg, far above the 64 KiB queue + 4 KiB socket buffer
    for _ in range(rounds):
        for leg in legs:
            leg.send(CHUNK)  # the "sender" never blocks and never sees an error
        for _probe, pump, _io in links:
            pump.flush()
    assert [
        (lg.leg_id, type(e))
        for lg, e in ((e_leg, e) for k, e_leg, e in rec.events if k == "failed")
    ] == [("leg-1", LegQueueOverflow)]
    assert legs[1].state is LegState.FAILED
    assert legs[0].state is legs[2].state is LegState.UP
    for i in (0, 2):
        probe = links[i][0]
        assert probe.received == CHUNK * rounds
    assert len(stalled_probe.received) < len(CHUNK) * rounds
    assert allocator.in_use == {legs[0].port, legs[2].port}


def test_paused_leg_queues_then_drains_in_order() -> None:
    """While the transport is paused, sends wait in the leg's queue; they drain in order
    when the peer reads again."""
    _reactor, rec, legs, links, _allocator = _legs(1)
    [leg] = legs
    probe, pump, io = links[0]
    io.stalled = True
    payload = [bytes([65 + i % 26]) * 1000 for i in range(40)]
    for part in payload:
        leg.send(part)
        pump.flush()
    assert leg.queued_bytes > 0  # the socket pushed back; bytes wait in our queue
    io.stalled = False
    pump.flush()
    assert probe.received == b"".join(payload)
    assert leg.queued_bytes == 0
    assert rec.failures() == []


def test_queue_bound_is_exact() -> None:
    """Queued bytes up to max_queued_bytes are kept; one byte more fails the leg."""
    _reactor, rec, legs, links, _allocator = _legs(1, max_queued=10_000)
    [leg] = legs
    _probe, pump, io = links[0]
    io.stalled = True
    # Fill the socket-like buffer until the transport pauses us.
    while leg.queued_bytes == 0:
        leg.send(CHUNK)
        pump.flush()
    leg.send(b"y" * (10_000 - leg.queued_bytes))
    assert leg.queued_bytes == 10_000
    assert rec.failures() == []
    leg.send(b"z")
    assert [type(e) for e in rec.failures()] == [LegQueueOverflow]
    assert leg.queued_bytes == 0  # dropped with the leg


def test_pause_reading_stops_delivery_until_resumed() -> None:
    """pause_reading() holds back incoming frames until resume_reading()."""
    _reactor, rec, legs, links, _allocator = _legs(1)
    [leg] = legs
    probe, pump, io = links[0]
    leg.pause_reading()
    assert io.reading_paused
    probe.transport.write(SEND)
    pump.flush()
    assert rec.msrp() == []
    leg.resume_reading()
    pump.flush()
    assert len(rec.msrp(MessageReceived)) == 1
