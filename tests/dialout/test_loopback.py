"""Dial-out end to end on loopback: a reference KMS, the focus service, two `focus-ue`
answerers the focus dials out to (one a real ``focus-ue answer`` process, one the same
client as a library), and one dial-in participant; they chat through the focus. The admin
API and /metrics are checked on the same running focus.

Everything runs on the real reactor and free loopback ports, bounded by LIMIT seconds.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, protocol, task
from twisted.web.client import Agent
from twisted.web.server import Site

from focus.config import AdminConfig, FocusConfig, KmsSettings, MsrpSettings, SipListen, SipSettings
from focus.service import FocusService
from kms import Account, AccountStore, IdentityPattern, build_resource
from kms._engine import MikeyTicketEngine
from kms_client import KmsClient, RetryPolicy
from policies import parse_policy
from ue.chat import Received
from ue.client import ChatClient, UeConfig

pytestmark = pytest.mark.e2e

LIMIT = 20.0
KMS_ID = "sip:kms@example.net"
FOCUS = "sip:focus@conf.example.net"
ROOM = "sip:lobby@conf.example.net"
ALICE = "sip:alice@example.net"
TOKEN = "e2e-admin-token-0123456789"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_sip_port() -> int:
    """A port free for UDP and TCP at once (focus-ue answers on both)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class Kms:
    """The reference KMS engine behind an HTTP listener on 127.0.0.1."""

    def __init__(self, reactor: Any, identities: list[str]) -> None:
        self.keys = {who: os.urandom(16) for who in [*identities, FOCUS]}
        accounts = [
            Account(identity=who, key=self.keys[who],
                    may_act_as=(IdentityPattern.parse(who),), psk_id=who.encode())
            for who in identities
        ]  # fmt: skip
        accounts.append(
            Account(
                identity=FOCUS,
                key=self.keys[FOCUS],
                may_act_as=(IdentityPattern.parse(FOCUS),
                            IdentityPattern.parse("sip:*@conf.example.net")),
                psk_id=FOCUS.encode(),
            )
        )  # fmt: skip
        engine = MikeyTicketEngine(
            identity=KMS_ID,
            accounts=AccountStore.of(accounts),
            ticket_protection_key=os.urandom(32),
            random_bytes=os.urandom,
        )
        self.port = reactor.listenTCP(
            0, Site(build_resource(engine, clock=reactor)), interface="127.0.0.1"
        )
        self.base = f"http://127.0.0.1:{self.port.getHost().port}/mikey-ticket/v1"
        self.reactor = reactor

    def client(self, identity: str) -> KmsClient:
        return KmsClient(
            base_url=self.base,
            kms_identity=KMS_ID,
            psk=self.keys[identity],
            http=Agent(self.reactor),
            reactor=self.reactor,
            allow_plain_http=True,
            psk_id=identity.encode(),
            retry=RetryPolicy(timeout=5.0, max_attempts=1),
        )


class UeProcess(protocol.ProcessProtocol):
    """A ``focus-ue`` process: stdout JSON lines collected, stderr kept for checks."""

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.ended: defer.Deferred[int | None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out = (self.out + data)[-100_000:]

    def errReceived(self, data: bytes) -> None:
        self.err = (self.err + data)[-100_000:]

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", None))

    def received(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def spawn_answerer(reactor: Any, kms: Kms, identity: str, port: int, msrp: int) -> UeProcess:
    ue = UeProcess()
    exe = Path(sys.executable).with_name("focus-ue")
    reactor.spawnProcess(
        ue,
        str(exe),
        [str(exe), "answer", "--listen", f"127.0.0.1:{port}", "--identity", identity,
         "--kms-url", kms.base, "--kms-insecure-http", "--kms-identity", KMS_ID,
         "--kms-key", kms.keys[identity].hex(), "--msrp-ports", f"{msrp}-{msrp + 9}",
         "--wait", str(LIMIT), "--leg-timeout", str(LIMIT / 2)],
        env={**os.environ},
    )  # fmt: skip
    return ue


async def eventually(reactor: Any, check: Any, what: str) -> None:
    for _ in range(int(LIMIT * 10)):
        if check():
            return
        await task.deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


@pytest_twisted.ensureDeferred
async def test_two_dialled_out_members_chat_with_a_dial_in_participant(tmp_path: Path) -> None:
    """The focus dials bob and carol (focus-ue answer) at start-up; alice dials in; a
    message from alice reaches both, one from bob reaches alice; the join counter shows
    two dial-out joins on /metrics, and the admin API without its token is 401."""
    from twisted.internet import reactor

    p_bob, p_carol = free_sip_port(), free_sip_port()
    # MIKEY identities carry no port; the dial_out URIs add the port to reach them.
    bob_id, carol_id = "sip:bob@127.0.0.1", "sip:carol@127.0.0.2"
    kms = Kms(reactor, [ALICE, bob_id, carol_id])
    received: dict[str, list[Received]] = {ALICE: [], carol_id: []}
    msrp_base = free_port() // 100 * 100

    def answerer(identity: str, port: int, offset: int, host: str = "127.0.0.1") -> ChatClient:
        return ChatClient(
            UeConfig(identity=identity, room="", proxy=None, listen=(host, port),
                     local_host=host,
                     msrp_port_range=(msrp_base + offset, msrp_base + offset + 9),
                     answer_wait=LIMIT, leg_timeout=LIMIT / 2),
            kms=kms.client(identity), reactor=reactor,
            on_message=received[identity].append,
        )  # fmt: skip

    bob = spawn_answerer(reactor, kms, bob_id, p_bob, msrp_base + 10)
    carol = answerer(carol_id, p_carol, 30, "127.0.0.2")
    carol_answered = carol.answer()
    await eventually(reactor, lambda: b"waiting for an INVITE" in bob.err, "focus-ue answer up")
    policy = parse_policy(
        f"""
[defaults]
allow = ["{ALICE}", "{bob_id}", "{carol_id}"]
[defaults.retry]
attempts = 2
backoff = 1.0
answer_timeout = 5.0

[[room]]
uri = "{ROOM}"
subject = "Lobby"
[[room.dial_out]]
uri = "{bob_id}:{p_bob}"
[[room.dial_out]]
uri = "{carol_id}:{p_carol}"
""",
        "policy.toml",
    )
    sip_port, admin_port = free_sip_port(), free_port()
    config = FocusConfig(
        kms=KmsSettings(base_url=kms.base, identity=KMS_ID, account=FOCUS,
                        key=kms.keys[FOCUS], allow_plain_http=True, timeout=5.0, retries=0),
        policy_file=tmp_path / "unused.toml",
        sip=SipSettings(listen=(SipListen("UDP", "127.0.0.1", sip_port),
                                SipListen("TCP", "127.0.0.1", sip_port))),
        msrp=MsrpSettings(port_min=msrp_base + 50, port_max=msrp_base + 59, leg_timeout=LIMIT / 2),
        admin=AdminConfig(host="127.0.0.1", port=admin_port, token=TOKEN),
    )  # fmt: skip
    focus = FocusService(config, reactor=reactor, policy=policy, log_stream=io.StringIO())
    alice: ChatClient | None = None
    try:
        focus.startService()
        await focus.ready
        await carol_answered.addTimeout(LIMIT, reactor)
        await eventually(reactor, lambda: b"in the room" in bob.err, "bob in the room")
        alice = ChatClient(
            UeConfig(identity=ALICE, room=ROOM, proxy=("127.0.0.1", sip_port),
                     leg_timeout=LIMIT / 2),
            kms=kms.client(ALICE), reactor=reactor, on_message=received[ALICE].append,
        )  # fmt: skip
        await alice.join().addTimeout(LIMIT, reactor)
        alice.send_chat("hello from alice")
        await eventually(
            reactor,
            lambda: (
                any(r.body == "hello from alice" for r in received[carol_id])
                and any(m["body"] == "hello from alice" for m in bob.received())
            ),
            "alice's message at bob and carol",
        )
        assert bob.received()[0]["from"] == ALICE
        bob.transport.write(b"hi alice\n")
        await eventually(
            reactor, lambda: any(r.body == "hi alice" for r in received[ALICE]), "bob's message"
        )
        assert any(r.body == "hi alice" and r.from_ == bob_id for r in received[carol_id])
        base = f"http://127.0.0.1:{admin_port}"
        response = await treq.get(f"{base}/metrics")
        metrics = (await response.content()).decode()
        assert 'focus_joins_total{direction="dial-out"} 2.0' in metrics
        assert 'focus_joins_total{direction="dial-in"} 1.0' in metrics
        unauthorised = await treq.get(f"{base}/api/v1/rooms")
        assert unauthorised.code == 401
        await unauthorised.content()
        rooms = await treq.get(f"{base}/api/v1/rooms", headers={"Authorization": f"Bearer {TOKEN}"})
        listing = await rooms.json()
        (room,) = listing["rooms"]
        assert {p["uri"] for p in room["participants"]} == {ALICE, bob_id, carol_id}
    finally:
        for client in (alice, carol):
            if client is not None and client.joined:
                await client.leave()
        bob.transport.closeStdin()  # focus-ue leaves (BYE) when stdin ends
        try:
            code = await bob.ended.addTimeout(LIMIT, reactor)
        except defer.TimeoutError:
            bob.transport.signalProcess("KILL")
            raise
        await focus.stopService()
        await kms.port.stopListening()
    assert code == 0, bob.err.decode(errors="replace")
