"""MSRP legs on real loopback sockets against peers we did not write (openssl, tshark).

Each test starts every process it needs, on free loopback ports, under a hard timeout.
"""

from __future__ import annotations

import pathlib
import signal
import socket
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from focus.adapters.msrp_leg import (
    ActiveLeg,
    LegConfig,
    LegConnectionLost,
    LegError,
    LegHandshakeFailed,
    MsrpLeg,
    PassiveLeg,
    PortAllocator,
)
from focus.msrp.connection import MessageReceived
from focus.msrp.session import SessionParams
from focus.tls_psk import TLSPSKClientCreator, TLSPSKConfig, TLSPSKServerCreator
from tests.msrp_leg._support import ALICE_URI, FOCUS_URI, SEND, core
from tests.tls_psk._peers import OPENSSL, deadline, free_port, spawn

pytestmark = pytest.mark.interop

PSK = bytes.fromhex("8f1e2d4c5b6a79880f1e2d3c4b5a6978")
LIMIT = 10.0


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Responder:
    """A minimal stand-in for the conference layer: accepts each complete message with
    200 through the leg's MSRP core, then closes the leg."""

    def __init__(self, close_after_answer: bool = True) -> None:
        self.up: defer.Deferred[MsrpLeg] = defer.Deferred()
        self.done: defer.Deferred[None] = defer.Deferred()
        self.frames: list[Any] = []
        self.failures: list[LegError] = []
        self.close_after_answer = close_after_answer

    def leg_up(self, leg: MsrpLeg) -> None:
        self.up.callback(leg)

    def msrp_event(self, leg: MsrpLeg, event: Any) -> None:
        self.frames.append(event)
        if isinstance(event, MessageReceived):
            leg.execute(leg.connection.respond(event.transaction_id, 200, leg.now()))
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
        core(auto_accept=False),
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
    [_bound, message] = responder.frames
    assert isinstance(message, MessageReceived) and message.body == b"hello"
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


def _active(responder: Responder, port: int, psk: bytes = PSK) -> ActiveLeg:
    leg = ActiveLeg(
        "out-1",
        TLSPSKClientCreator(psk),
        core(ALICE_URI, FOCUS_URI),
        responder,
        host="127.0.0.1",
        port=port,
        reactor=_reactor(),
        clock=_reactor(),
        config=LegConfig(setup_timeout=LIMIT),
    )
    leg.start()
    return leg


@pytest_twisted.ensureDeferred
async def test_passive_leg_refuses_a_second_tcp_connection() -> None:
    """Once a passive leg has its connection, its port refuses any other connection."""
    server_side = Responder(close_after_answer=False)
    passive_leg = _passive(server_side)
    client_side = Responder(close_after_answer=False)
    active_leg = _active(client_side, passive_leg.port)  # type: ignore[arg-type]
    await deadline(_reactor(), server_side.up, LIMIT)
    await deadline(_reactor(), client_side.up, LIMIT)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", passive_leg.port), timeout=2).close()  # type: ignore[arg-type]
    active_leg.close()
    await deadline(_reactor(), server_side.done, LIMIT)
    assert [type(f) for f in server_side.failures] == [LegConnectionLost]


@pytest_twisted.ensureDeferred
async def test_active_leg_wrong_psk_with_s_server() -> None:
    """An active leg whose PSK s_server does not hold fails with LegHandshakeFailed."""
    port = free_port()
    server = spawn(
        _reactor(),
        [OPENSSL, "s_server", "-nocert", "-tls1_2", "-psk", bytes(16).hex(),
         "-accept", f"127.0.0.1:{port}", "-naccept", "1"],
        timeout=LIMIT,
        marker=b"ACCEPT",
    )  # fmt: skip
    await deadline(_reactor(), server.ready, LIMIT)
    responder = Responder()
    _active(responder, port)
    await deadline(_reactor(), responder.done, LIMIT)
    await server.ended
    [failure] = responder.failures
    assert isinstance(failure, LegHandshakeFailed)
    assert any("bad record mac" in r for r in failure.reasons)


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
    leg = _active(responder, port)
    await deadline(_reactor(), responder.up, LIMIT)
    params = SessionParams(local_uri=ALICE_URI, peer_path=(FOCUS_URI,))
    leg.execute(leg.connection.open_session(params, leg.now()))
    _mid, commands = leg.connection.send_message(ALICE_URI, "text/plain", b"hello", leg.now())
    leg.execute(commands)
    for _ in range(int(LIMIT / 0.05)):  # bounded wait for s_server to print the SEND
        if b"hello\r\n-------" in server.out or server.ended.called:
            break
        await _sleep(0.05)
    leg.close()
    await server.ended
    # The binding SEND (body-less, RFC 4975 §5.4) and then the message.
    assert server.out.count(b" SEND\r\nTo-Path: msrps://127.0.0.1:20000/focus-s1;tcp") == 2
    assert b"\r\n\r\nhello\r\n-------" in server.out
    assert responder.failures == []


async def _sleep(seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(_reactor(), seconds, lambda: None)


async def _capture_shows(capture: pathlib.Path, display_filter: str) -> bytes:
    reader = spawn(
        _reactor(), ["/usr/bin/tshark", "-r", str(capture), "-Y", display_filter], timeout=LIMIT
    )
    return (await reader.ended).out


async def _wait_until_capturing(capture: pathlib.Path, canary: int) -> None:
    """Send UDP canaries until one shows up in the capture (bounded).

    tshark prints "Capturing on" a moment before packets are really captured; a leg
    started then can lose its ClientHello, and without it nothing can be decrypted.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(int(LIMIT / 0.2)):
            udp.sendto(b"canary", ("127.0.0.1", canary))
            if (await _capture_shows(capture, "udp")).strip():
                return
            await _sleep(0.2)
    raise AssertionError("tshark never captured the canary")


async def _wait_for_both_fins(capture: pathlib.Path) -> None:
    """Poll the growing capture until both sides' FIN are in it (bounded).

    tshark writes packets in batches; stopping it right after the exchange can lose the
    last batch, so wait until the capture shows the whole connection.
    """
    for _ in range(int(LIMIT / 0.2)):
        if (await _capture_shows(capture, "tcp.flags.fin == 1")).count(b"FIN") >= 2:
            return
        await _sleep(0.2)
    raise AssertionError("the capture never showed both FINs")


@pytest_twisted.ensureDeferred
async def test_tshark_decrypts_a_leg_with_the_key_log(tmp_path: pathlib.Path) -> None:
    """tshark, given the NSS key log the leg wrote, shows the MSRP SEND and its 200 OK."""
    capture = tmp_path / "leg.pcapng"
    keylog = tmp_path / "keys.log"
    responder = Responder()
    leg = _passive(responder, keylog_path=keylog)
    port = leg.port
    canary = free_port()
    tshark = spawn(
        _reactor(),
        ["/usr/bin/tshark", "-i", "lo", "-f", f"tcp port {port} or udp port {canary}",
         "-w", str(capture)],
        timeout=LIMIT * 3,
        marker=b"Capturing on",
    )  # fmt: skip
    await deadline(_reactor(), tshark.ready, LIMIT)
    await _wait_until_capturing(capture, canary)
    result = await _send_through_s_client(responder, leg)
    assert b"200 OK" in result.out
    await _wait_for_both_fins(capture)
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
