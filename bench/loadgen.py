"""Load generator: many TLS-PSK legs from a few processes (multiprocessing).

:func:`run_worker` runs in a child process with its own reactor and hosts a slice of the
room's legs.  Protocol with the parent over a ``multiprocessing`` pipe:

1. the worker connects its legs (TLS-PSK client role through
   :class:`focus.tls_psk.TLSPSKClientCreator`), waits for every handshake, sends
   ``("ready", connected, failed)``;
2. the parent sends ``("go", start_ns, window_from_ns, window_to_ns, stop_ns)`` (all
   ``time.monotonic_ns()`` values, the clock every process on the host shares);
3. from ``start_ns`` to ``stop_ns`` each sending leg keeps ``window`` frames in flight
   (a frame leaves the window when the relay acknowledges it), optionally capped at
   ``rate`` frames/s; every leg counts the frames delivered to it and samples the fan-out
   latency (arrival time minus the send time stamped in the payload) inside
   ``[window_from_ns, window_to_ns)``;
4. the worker answers ``("done", stats)`` and exits.

Everything is bounded: the worker stops itself ``stop_ns`` + 10 s after start whatever
happens, and at most ``MAX_SAMPLES`` latencies are kept per worker.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench._framing import LENGTH, STAMP, payload, split_frames

MAX_SAMPLES = 50_000
CONNECT_BATCH = 32


class Stats:
    def __init__(self) -> None:
        self.sent = 0
        self.acked = 0
        self.delivered = 0  # in the measurement window
        self.delivered_total = 0
        self.latencies_ns: list[int] = []
        self.sample_every = 1
        self.seen = 0
        self.errors: list[str] = []
        self.connected = 0
        self.failed = 0


def run_worker(spec: dict[str, Any], pipe: Any) -> None:
    """Child process entry point (see the module docstring)."""
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import protocol, reactor, task
    from twisted.internet.interfaces import IHandshakeListener
    from twisted.protocols.tls import TLSMemoryBIOFactory
    from zope.interface import implementer

    from focus.tls_psk import TLSPSKClientCreator, TLSPSKConfig

    stats = Stats()
    legs: list[Any] = []
    size = int(spec["frame_size"])
    window = int(spec["window"])
    rate = spec.get("rate")  # frames/s per sender, None = as fast as the window allows
    timing: dict[str, int] = {}

    def frame_for(sender: int) -> bytes:
        body = payload(size, sender, time.monotonic_ns())
        return LENGTH.pack(len(body)) + body

    @implementer(IHandshakeListener)
    class Leg(protocol.Protocol):
        def __init__(self, number: int, sender: bool) -> None:
            self.number = number
            self.sender = sender
            self.buffer = bytearray()
            self.outstanding = 0
            self.tokens = 0.0
            self.keyed = False

        def connectionMade(self) -> None:
            if spec.get("nodelay", True):
                self.transport.setTcpNoDelay(True)

        def handshakeCompleted(self) -> None:
            self.keyed = True
            stats.connected += 1
            legs.append(self)
            _connected()

        def pump(self) -> None:
            now = time.monotonic_ns()
            if not timing or now < timing["start"] or now >= timing["stop"]:
                return
            room = window - self.outstanding
            if rate is not None:
                room = min(room, int(self.tokens))
            if room <= 0:
                return
            self.outstanding += room
            if rate is not None:
                self.tokens -= room
            stats.sent += room
            self.transport.write(b"".join(frame_for(self.number) for _ in range(room)))

        def dataReceived(self, data: bytes) -> None:
            arrival = time.monotonic_ns()
            self.buffer += data
            try:
                frames, used = split_frames(self.buffer)
            except ValueError as exc:
                stats.errors.append(str(exc))
                self.transport.abortConnection()
                return
            del self.buffer[:used]
            acks = 0
            in_window = bool(timing) and timing["from"] <= arrival < timing["to"]
            for frame in frames:
                if len(frame) == 4:
                    acks += 1
                    continue
                stats.delivered_total += 1
                if in_window:
                    stats.delivered += 1
                    stats.seen += 1
                    if stats.seen % stats.sample_every == 0:
                        sent_ns, _sender = STAMP.unpack_from(frame, 4)
                        stats.latencies_ns.append(arrival - sent_ns)
                        if len(stats.latencies_ns) >= MAX_SAMPLES:
                            del stats.latencies_ns[::2]
                            stats.sample_every *= 2
            if acks:
                self.outstanding -= acks
                stats.acked += acks
                if self.sender:
                    self.pump()

        def connectionLost(self, reason: Any = None) -> None:
            if not self.keyed:
                stats.failed += 1
                stats.errors.append(f"handshake failed: {reason.getErrorMessage()}")
                self.keyed = True  # count once
                _connected()
                return
            if self in legs:
                legs.remove(self)
                if timing and time.monotonic_ns() < timing["stop"]:
                    stats.errors.append(f"leg {self.number} lost: {reason.getErrorMessage()}")

    class Factory(protocol.ClientFactory):
        def __init__(self, number: int, sender: bool) -> None:
            self.number = number
            self.sender = sender

        def buildProtocol(self, addr: Any) -> Leg:
            return Leg(self.number, self.sender)

        def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
            stats.failed += 1
            stats.errors.append(f"connect failed: {reason.getErrorMessage()}")
            _connected()

    config = TLSPSKConfig(ciphers=spec["ciphers"]) if spec.get("ciphers") else TLSPSKConfig()
    creator = TLSPSKClientCreator(bytes.fromhex(spec["psk"]), config)
    numbers = list(spec["legs"])
    senders = set(spec["senders"])
    pending = list(numbers)

    def _connect_some() -> None:
        # Connect in small batches so the relay's accept backlog never overflows.
        for _ in range(min(CONNECT_BATCH, len(pending))):
            number = pending.pop(0)
            factory = TLSMemoryBIOFactory(creator, True, Factory(number, number in senders))
            reactor.connectTCP(spec["host"], spec["port"], factory, timeout=10)

    def _connected() -> None:
        done = stats.connected + stats.failed
        if pending and done % CONNECT_BATCH == 0:
            _connect_some()
        if done == len(numbers):
            pipe.send(("ready", stats.connected, stats.failed))

    def _poll_parent() -> None:
        if not pipe.poll():
            return
        message = pipe.recv()
        if message[0] == "go":
            _, start, w_from, w_to, stop = message
            timing.update(start=start, **{"from": w_from, "to": w_to}, stop=stop)
            delay = max(0.0, (start - time.monotonic_ns()) / 1e9)
            reactor.callLater(delay, _start)
            reactor.callLater(delay + (stop - start) / 1e9 + 0.5, _finish)
        elif message[0] == "stop":
            reactor.stop()

    def _start() -> None:
        if rate is not None:
            tick = 0.01
            senders_here = [leg for leg in legs if leg.sender]

            def refill() -> None:
                for leg in senders_here:
                    leg.tokens = min(leg.tokens + rate * tick, max(1.0, rate * 0.05))
                    leg.pump()

            task.LoopingCall(refill).start(tick)
        else:
            for leg in legs:
                if leg.sender:
                    leg.pump()

    def _finish() -> None:
        pipe.send(
            (
                "done",
                {
                    "sent": stats.sent,
                    "acked": stats.acked,
                    "delivered": stats.delivered,
                    "delivered_total": stats.delivered_total,
                    "latencies_ns": stats.latencies_ns,
                    "sample_every": stats.sample_every,
                    "errors": stats.errors[:20],
                    "connected": stats.connected,
                },
            )
        )
        for leg in list(legs):
            leg.transport.loseConnection()
        reactor.callLater(0.5, reactor.stop)

    task.LoopingCall(_poll_parent).start(0.02)
    _connect_some()
    reactor.callLater(float(spec.get("max_seconds", 120)), reactor.stop)
    reactor.run()
    os._exit(0)
