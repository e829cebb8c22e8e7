"""In-memory plumbing for leg tests: a recording listener and TLS peers over iosim."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import protocol
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, IOPump, connect

from focus.adapters.msrp_leg import LegConfig, LegError, MsrpLeg, PassiveLeg, PortAllocator
from focus.msrp.connection import MsrpConnection
from focus.msrp.session import SessionParams, SessionRegistry
from focus.msrp.uri import MsrpUri
from focus.tls_psk import TLSPSKClientCreator, TLSPSKServerCreator
from tests.tls_psk._peers import Probe

PSK = bytes(range(16, 48))
OTHER_PSK = bytes(32)

FOCUS_URI = MsrpUri.parse("msrps://127.0.0.1:20000/focus-s1;tcp")
ALICE_URI = MsrpUri.parse("msrps://127.0.0.1:9/alice-s1;tcp")

SEND = (
    b"MSRP a786hjs2 SEND\r\n"
    b"To-Path: msrps://127.0.0.1:20000/focus-s1;tcp\r\n"
    b"From-Path: msrps://127.0.0.1:9/alice-s1;tcp\r\n"
    b"Message-ID: 87652491\r\n"
    b"Byte-Range: 1-5/5\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"hello\r\n"
    b"-------a786hjs2$\r\n"
)

#: The first of two chunks of a 10-octet message (RFC 4975 §7.1: ``+`` = more to come).
FIRST_CHUNK = SEND.replace(b"Byte-Range: 1-5/5", b"Byte-Range: 1-5/10").replace(
    b"a786hjs2$", b"a786hjs2+"
)


@attrs.define
class Recorder:
    """A LegListener that records every callback, in order."""

    events: list[tuple[str, MsrpLeg, Any]] = attrs.field(factory=list)

    def leg_up(self, leg: MsrpLeg) -> None:
        self.events.append(("up", leg, None))

    def msrp_event(self, leg: MsrpLeg, event: Any) -> None:
        self.events.append(("msrp", leg, event))

    def leg_failed(self, leg: MsrpLeg, error: LegError) -> None:
        self.events.append(("failed", leg, error))

    def kinds(self, leg: MsrpLeg | None = None) -> list[str]:
        return [k for k, lg, _ in self.events if leg is None or lg is leg]

    def failures(self, leg: MsrpLeg | None = None) -> list[LegError]:
        return [e for k, lg, e in self.events if k == "failed" and (leg is None or lg is leg)]

    def msrp(self, kind: type | None = None, leg: MsrpLeg | None = None) -> list[Any]:
        """The core's events delivered to this listener, optionally of one type/leg."""
        return [
            e
            for k, lg, e in self.events
            if k == "msrp" and (leg is None or lg is leg) and (kind is None or isinstance(e, kind))
        ]


def core(
    local: MsrpUri = FOCUS_URI,
    peer: MsrpUri = ALICE_URI,
    *,
    auto_accept: bool = True,
    **config: Any,
) -> MsrpConnection:
    """An MSRP core for one leg that expects the session ``local`` with peer ``peer``."""
    from focus.msrp.config import MsrpConfig

    registry = SessionRegistry()
    registry.add(SessionParams(local_uri=local, peer_path=(peer,)))
    counter = iter(range(1, 1 << 30))
    return MsrpConnection(
        registry=registry,
        random=lambda n: next(counter).to_bytes(n, "big"),
        config=MsrpConfig(**config),
        auto_accept=auto_accept,
    )


def config(**kw: Any) -> LegConfig:
    kw.setdefault("port_range", (20000, 20009))
    kw.setdefault("setup_timeout", 5.0)
    kw.setdefault("max_queued_bytes", 64 * 1024)
    return LegConfig(**kw)


def passive(
    reactor: MemoryReactorClock,
    listener: Recorder,
    allocator: PortAllocator,
    leg_id: str = "leg-1",
    cfg: LegConfig | None = None,
    psk: bytes = PSK,
) -> PassiveLeg:
    leg = PassiveLeg(
        leg_id,
        TLSPSKServerCreator(psk),
        core(),
        listener,
        allocator=allocator,
        reactor=reactor,
        clock=reactor,
        config=cfg or config(),
    )
    leg.start()
    return leg


def server_factory(reactor: MemoryReactorClock, port: int) -> Any:
    """The factory the leg handed to listenTCP for ``port``."""
    for p, factory, _backlog, _iface in reversed(reactor.tcpServers):
        if p == port:
            return factory
    raise AssertionError(f"nothing listens on {port}")


def dial(
    reactor: MemoryReactorClock,
    factory: Any,
    psk: bytes = PSK,
    probe: Probe | None = None,
    transport_cls: type[FakeTransport] = FakeTransport,
) -> tuple[Any, Probe, IOPump, FakeTransport]:
    """Connect an in-memory TLS-PSK client to a listening factory and run the handshake.

    Returns (server-side TLS protocol or None if refused, client probe, pump, server transport).
    """
    server = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    probe = probe or Probe()
    client_factory = TLSMemoryBIOFactory(
        TLSPSKClientCreator(psk), True, protocol.Factory.forProtocol(lambda: probe), reactor
    )
    client = client_factory.buildProtocol(None)
    if server is None:
        return None, probe, None, None  # type: ignore[return-value]
    server_io = transport_cls(server, False)
    pump = connect(server, server_io, client, FakeTransport(client, True), clock=reactor)
    pump.flush()
    return server, probe, pump, server_io


def accept_from(
    reactor: MemoryReactorClock, client_factory_wrapper: Any, server_factory_: Any
) -> tuple[Any, Any, IOPump]:
    """Connect a recorded client factory (from connectTCP) to a server factory in memory."""
    client = client_factory_wrapper.buildProtocol(IPv4Address("TCP", "127.0.0.1", 20000))
    server = server_factory_.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
    pump = connect(
        server, FakeTransport(server, False), client, FakeTransport(client, True), clock=reactor
    )
    pump.flush()
    return server, client, pump


def server_creator(psk: bytes = PSK) -> TLSPSKServerCreator:
    return TLSPSKServerCreator(psk)


class SocketLikeTransport(FakeTransport):
    """A FakeTransport that pushes back like a TCP socket: past ``buffer_limit`` unsent
    bytes it pauses its producer, and resumes it once the peer has read them. With
    ``stalled`` set, the peer reads nothing. ``pauseProducing`` stops reading (bytes
    from the peer are held, as the kernel would) until ``resumeProducing``."""

    buffer_limit = 4096
    stalled = False
    _paused = False
    reading_paused = False
    _held = b""

    def pauseProducing(self) -> None:
        self.reading_paused = True

    def resumeProducing(self) -> None:
        self.reading_paused = False
        if self._held:
            data, self._held = self._held, b""
            super().bufferReceived(data)

    def bufferReceived(self, data: bytes) -> None:
        if self.reading_paused:
            self._held += data
        else:
            super().bufferReceived(data)

    def write(self, data: bytes) -> None:
        super().write(data)
        pending = sum(len(x) for x in self.stream)
        if self.producer is not None and pending > self.buffer_limit and not self._paused:
            self._paused = True
            self.producer.pauseProducing()

    def getOutBuffer(self) -> bytes:
        if self.stalled:
            return b""
        data: bytes = super().getOutBuffer()
        if self._paused and self.producer is not None:
            self._paused = False
            self.producer.resumeProducing()
        return data
