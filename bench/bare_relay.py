"""The baseline: a bare Twisted TLS-PSK relay with no MSRP and no CPIM work.

``python -m bench.bare_relay --psk HEX`` listens on one loopback port (printed as
``PORT <n>`` on stdout) through :class:`focus.tls_psk.TLSPSKServerCreator` and Twisted's
``TLSMemoryBIOFactory``, exactly the TLS stack the focus's legs use.  Every complete
frame (see :mod:`bench._framing`) a leg sends is acknowledged to that leg and forwarded
to every other leg; complete frames from one read are forwarded in one write per
destination, which is the cheapest a byte relay on this stack can be.

Flow control: each leg is a streaming producer of its TLS transport; while any
destination's send buffer is full, every leg stops reading (so memory stays bounded and
the senders' windows do the rest).  The process stops on SIGTERM or after
``--max-seconds``.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import protocol
from twisted.protocols.tls import TLSMemoryBIOFactory

from bench._framing import ACK, split_frames
from focus.tls_psk import TLSPSKConfig, TLSPSKServerCreator


class Room:
    """Every connected leg, and the count of destinations that asked us to pause."""

    def __init__(self) -> None:
        self.legs: list[RelayLeg] = []
        self.paused_destinations = 0
        self.reading = True

    def destination_paused(self) -> None:
        self.paused_destinations += 1
        if self.reading:
            self.reading = False
            for leg in self.legs:
                leg.transport.pauseProducing()

    def destination_resumed(self) -> None:
        self.paused_destinations -= 1
        if self.paused_destinations == 0 and not self.reading:
            self.reading = True
            for leg in self.legs:
                leg.transport.resumeProducing()


class RelayLeg(protocol.Protocol):
    def __init__(self, room: Room, nodelay: bool) -> None:
        self.room = room
        self.nodelay = nodelay
        self.buffer = bytearray()
        self.paused = False

    def connectionMade(self) -> None:
        self.room.legs.append(self)
        if self.nodelay:
            # Small frames must not wait for Nagle + delayed ACK (~40 ms on Linux).
            self.transport.setTcpNoDelay(True)
        self.transport.registerProducer(self, True)
        if not self.room.reading:
            self.transport.pauseProducing()

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        frames, used = split_frames(self.buffer)
        if not used:
            return
        del self.buffer[:used]
        self.transport.write(ACK * len(frames))
        batch = b"".join(frames)
        for leg in self.room.legs:
            if leg is not self:
                leg.transport.write(batch)

    def connectionLost(self, reason: object = None) -> None:
        if self in self.room.legs:
            self.room.legs.remove(self)
        if self.paused:
            self.paused = False
            self.room.destination_resumed()

    # IPushProducer: the TLS transport tells us when *our* outgoing buffer is full.
    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self.room.destination_paused()

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self.room.destination_resumed()

    def stopProducing(self) -> None:
        self.resumeProducing()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--psk", required=True, help="hex")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ciphers", default=None)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--no-nodelay", action="store_true", help="leave Nagle on")
    args = parser.parse_args()
    from twisted.internet import reactor

    config = TLSPSKConfig(ciphers=args.ciphers) if args.ciphers else TLSPSKConfig()
    room = Room()
    factory = protocol.Factory.forProtocol(lambda: RelayLeg(room, not args.no_nodelay))
    tls = TLSMemoryBIOFactory(TLSPSKServerCreator(bytes.fromhex(args.psk), config), False, factory)
    port = reactor.listenTCP(args.port, tls, backlog=1024, interface="127.0.0.1")
    print(f"PORT {port.getHost().port}", flush=True)
    reactor.callLater(args.max_seconds, reactor.stop)
    reactor.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
