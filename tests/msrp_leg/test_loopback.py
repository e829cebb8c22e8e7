"""MSRP legs on real loopback sockets against peers we did not write (openssl, tshark).

Each test starts every process it needs, on free loopback ports, under a hard timeout.
"""

from __future__ import annotations

import pathlib
import signal
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConfig,
    LegError,
    LegHandshakeFailed,
    MsrpLeg,
    PassiveLeg,
    PortAllocator,
)
from focus.msrp.frame import Request, Response
from focus.msrp.uri import MsrpUri
from focus.tls_psk import TLSPSKClientCreator, TLSPSKConfig, TLSPSKServerCreator
from tests.msrp_leg._support import SEND
from tests.tls_psk._peers import OPENSSL, deadline, free_port, spawn

pytestmark = pytest.mark.interop

PSK = bytes.fromhex("8f1e2d4c5b6a79880f1e2d3c4b5a6978")
LIMIT = 10.0
FOCUS_URI = MsrpUri.parse("msrps://127.0.0.1:20000/focus-s1;tcp")


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Responder:
    """A minimal stand-in for the conference layer: answers each SEND with 200 OK
    (RFC 4975 §7.2: To-Path = leftmost From-Path URI), then closes the leg."""

    def __init__(self, close_after_answer: bool = True) -> None:
        self.up: defer.Deferred[MsrpLeg] = defer.Deferred()
        self.done: defer.Deferred[None] = defer.Deferred()
        self.frames: list[Any] = []
        self.failures: list[LegError] = []
        self.close_after_answer = close_after_answer

    def leg_up(self, leg: MsrpLeg) -> None:
        self.up.callback(leg)

    def frame_received(self, leg: MsrpLeg, frame: Any) -> None:
        self.frames.append(frame)
        if isinstance(frame, Request) and frame.method == "SEND":
            answer = Response(frame.transaction_id, 200, (frame.from_path[0],), (FOCUS_URI,), "OK")
            leg.send(answer.encode())
            if self.close_after_answer:
                leg.close()
                self.done.callback(None)

    def leg_failed(self, leg: MsrpLeg, error: LegError) -> None:
        self.failures.append(error)
        if not self.done.called:
            self.done.callback(None)


def _passive(responder: Responder, psk: bytes = PSK, **tls: Any) -> PassiveLeg:
    port = free_port()
    config = LegConfig(host="127.0.0.1", port_range=(port, port), setup_timeout=LIMIT)
    leg = PassiveLeg(
        "loop-1",
        TLSPSKServerCreator(psk, TLSPSKConfig(**tls)),
        responder,
        allocator=PortAllocator.from_config(config),
        reactor=_reactor(),
        clock=_reactor(),
        config=config,
    )
    leg.start()
    return leg


def _s_client(port: int, psk: bytes) -> list[str]:
    return [
        OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-psk", psk.hex(),
        "-psk_identity", "", "-quiet", "-nocommands",
    ]  # fmt: skip


async def _send_through_s_client(responder: Responder, leg: PassiveLeg, psk: bytes = PSK) -> Any:
    client = spawn(_reactor(), _s_client(leg.port, psk), timeout=LIMIT)  # type: ignore[arg-type]
    client.write(SEND)
    await deadline(_reactor(), responder.done, LIMIT)
    return await client.ended


@pytest_twisted.ensureDeferred
async def test_raw_send_through_s_client_gets_200() -> None:
    """A raw MSRP SEND typed through openssl s_client reaches a passive leg and gets 200 OK."""
    responder = Responder()
    leg = _passive(responder)
    result = await _send_through_s_client(responder, leg)
    assert responder.failures == []
    [frame] = responder.frames
    assert isinstance(frame, Request) and frame.body == b"hello"
    assert b"MSRP a786hjs2 200 OK\r\n" in result.out
    assert b"-------a786hjs2$\r\n" in result.out


@pytest_twisted.ensureDeferred
async def test_wrong_psk_through_s_client_is_a_typed_failure() -> None:
    """s_client with another PSK fails the leg with LegHandshakeFailed; nothing is parsed."""
    responder = Responder()
    leg = _passive(responder)
    result = await _send_through_s_client(responder, leg, psk=bytes(16))
    [failure] = responder.failures
    assert isinstance(failure, LegHandshakeFailed)
    assert responder.frames == []
    assert b"200 OK" not in result.out


@pytest_twisted.ensureDeferred
async def test_active_leg_with_s_server() -> None:
    """An active leg (TLS client, empty identity) delivers a SEND to openssl s_server."""
    port = free_port()
    server = spawn(
        _reactor(),
        [OPENSSL, "s_server", "-nocert", "-tls1_2", "-psk", PSK.hex(),
         "-accept", f"127.0.0.1:{port}", "-naccept", "1"],
        timeout=LIMIT,
        marker=b"ACCEPT",
    )  # fmt: skip
    await deadline(_reactor(), server.ready, LIMIT)
    responder = Responder()
    leg = ActiveLeg(
        "out-1",
        TLSPSKClientCreator(PSK),
        responder,
        "127.0.0.1",
        port,
        reactor=_reactor(),
        clock=_reactor(),
        config=LegConfig(setup_timeout=LIMIT),
    )
    leg.start()
    await deadline(_reactor(), responder.up, LIMIT)
    leg.send(SEND)
    for _ in range(int(LIMIT / 0.05)):  # bounded wait for s_server to print the SEND
        if b"-------a786hjs2$" in server.out or server.ended.called:
            break
        await _sleep(0.05)
    leg.close()
    await server.ended
    assert b"MSRP a786hjs2 SEND\r\n" in server.out
    assert responder.failures == []


async def _sleep(seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(_reactor(), seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_tshark_decrypts_a_leg_with_the_key_log(tmp_path: pathlib.Path) -> None:
    """tshark, given the NSS key log the leg wrote, shows the MSRP SEND and its 200 OK."""
    capture = tmp_path / "leg.pcapng"
    keylog = tmp_path / "keys.log"
    responder = Responder()
    leg = _passive(responder, keylog_path=keylog)
    port = leg.port
    tshark = spawn(
        _reactor(),
        ["/usr/bin/tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", str(capture)],
        timeout=LIMIT * 2,
        marker=b"Capturing on",
    )
    await deadline(_reactor(), tshark.ready, LIMIT)
    result = await _send_through_s_client(responder, leg)
    assert b"200 OK" in result.out
    await _sleep(0.3)  # let the last segments (FIN/ACK) reach the capture
    tshark.transport.signalProcess(signal.SIGINT)
    await deadline(_reactor(), tshark.ended, LIMIT)
    assert keylog.read_bytes().startswith(b"CLIENT_RANDOM ")
    follow = spawn(
        _reactor(),
        ["/usr/bin/tshark", "-r", str(capture), "-o", f"tls.keylog_file:{keylog}",
         "-d", f"tcp.port=={port},tls", "-q", "-z", "follow,tls,ascii,0"],
        timeout=LIMIT,
    )  # fmt: skip
    decoded = await follow.ended
    assert decoded.code == 0, decoded.err
    assert b"MSRP a786hjs2 SEND" in decoded.out
    assert b"MSRP a786hjs2 200 OK" in decoded.out
