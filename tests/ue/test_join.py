"""Full dial-in joins on loopback: UE ↔ fake focus (SIP/UDP, TLS-PSK MSRP) and a real KMS.

Every test starts the KMS listener and the fake focus it needs in-process, on loopback
ports chosen by the system, and is bounded by a hard timeout.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.internet.defer import ensureDeferred
from twisted.internet.protocol import ProcessProtocol

from focus.sdp import KeyMgmt, MsrpUri, SetupRole
from focus.sip.transaction import Target, TimerConfig
from kms._tls import ensure_self_signed
from tests.ue._focus import ALICE, BOB, KEYS, KMS_ID, ROOM, FakeFocus, LoopbackKms, _free_port
from ue.chat import Received
from ue.cli import run
from ue.client import ChatClient, UeConfig
from ue.errors import JoinTimeout, KeyingFailure, KmsFailure, LegFailure, RemoteHangup, SipFailure

pytestmark = pytest.mark.timeout(30)

TEXT = "text/plain;charset=utf-8"


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Peer:
    """A ChatClient with its received messages and log lines kept for the test."""

    def __init__(self, kms: LoopbackKms, focus: FakeFocus, identity: str, **kw: Any) -> None:
        self.messages: list[Received] = []
        self.log: list[str] = []
        config = UeConfig(
            identity=identity,
            room=ROOM,
            proxy=(focus.address.host, focus.address.port),
            leg_timeout=5.0,
            invite_timeout=5.0,
            bye_timeout=2.0,
            **kw,
        )
        self.client = ChatClient(
            config,
            kms=kms.client(identity),
            reactor=_reactor(),
            on_message=self.messages.append,
            on_log=self.log.append,
        )

    def logged(self, fragment: str) -> bool:
        return any(fragment in line for line in self.log)


async def wait_for(
    condition: Callable[[], object], timeout: float = 5.0, why: Callable[[], str] = str
) -> None:
    """Poll ``condition`` on the reactor (bounded); fail the test when it stays false."""
    waited = 0.0
    while not condition():
        if waited > timeout:
            raise AssertionError(f"condition not met in time {why()}")
        await task.deferLater(_reactor(), 0.02, lambda: None)
        waited += 0.02


@pytest_twisted.async_yield_fixture
async def setup() -> AsyncIterator[tuple[LoopbackKms, FakeFocus]]:
    reactor = _reactor()
    kms = LoopbackKms(reactor)
    focus = FakeFocus(reactor, kms)
    yield kms, focus
    await focus.stop()
    await kms.stop()


@pytest_twisted.ensureDeferred
async def test_join_chat_private_and_leave(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """Two UEs join, chat through the focus, exchange a private message and leave with BYE."""
    kms, focus = setup
    alice, bob = Peer(kms, focus, ALICE), Peer(kms, focus, BOB)
    await alice.client.join()
    await bob.client.join()
    assert alice.client.joined and bob.client.joined
    alice.client.send_chat("hello room")
    await wait_for(lambda: bob.messages)
    assert bob.messages == [Received(ALICE, ROOM, TEXT, "hello room", private=False)]
    bob.client.send_private(ALICE, "psst")
    await wait_for(lambda: alice.messages)
    assert alice.messages == [Received(BOB, ALICE, TEXT, "psst", private=True)]
    # The focus saw CPIM with From = the identity and To = the room (RFC 7701 §5).
    sender, body = focus.received[0]
    assert sender == ALICE
    assert body.startswith(b"From: <sip:alice@example.net>\r\nTo: <sip:lobby@conf.example.net>")
    await alice.client.leave()
    await bob.client.leave()
    assert sorted(focus.byes) == [ALICE, BOB]
    for fragment in ("KMS ticket obtained", "INVITE answered: 200", "TRANSFER_RESP verified"):
        assert alice.logged(fragment), fragment
    assert alice.logged("BYE answered: 200")


@pytest_twisted.ensureDeferred
async def test_join_over_sip_tcp(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """--transport tcp: INVITE, ACK and BYE go over a TCP connection to the proxy."""
    kms, focus = setup
    address = await focus.listen_tcp()
    alice = Peer(kms, focus, ALICE, transport="tcp")
    alice.client.config = attrs.evolve(alice.client.config, proxy=(address.host, address.port))
    await alice.client.join()
    assert alice.logged("over TCP")
    await alice.client.leave()
    assert focus.byes == [ALICE], "\n".join(alice.log)


@pytest_twisted.ensureDeferred
async def test_join_over_sip_tls(setup: tuple[LoopbackKms, FakeFocus], tmp_path: Path) -> None:
    """--transport tls: the proxy's certificate is checked against --sip-ca; chat works and
    BYE goes over the same TLS connection."""
    kms, focus = setup
    files = ensure_self_signed(tmp_path / "sip.toml", names=["127.0.0.1"], now=time.time())
    assert files.ca is not None
    address = await focus.listen_tls(str(files.certificate), str(files.key))
    alice = Peer(kms, focus, ALICE, transport="tls", sip_tls_ca=files.ca)
    alice.client.config = attrs.evolve(alice.client.config, proxy=(address.host, address.port))
    bob = Peer(kms, focus, BOB)
    await alice.client.join()
    await bob.client.join()
    bob.client.send_chat("over tls")
    await wait_for(lambda: alice.messages)
    assert alice.messages[0].body == "over tls"
    await alice.client.leave()
    assert alice.logged("BYE answered: 200")
    await bob.client.leave()


@pytest_twisted.ensureDeferred
async def test_sip_tls_with_an_untrusted_certificate_fails(
    setup: tuple[LoopbackKms, FakeFocus], tmp_path: Path
) -> None:
    """A proxy certificate that does not chain to --sip-ca makes the INVITE fail (503)."""
    kms, focus = setup
    files = ensure_self_signed(tmp_path / "sip.toml", names=["127.0.0.1"], now=time.time())
    other = ensure_self_signed(tmp_path / "other.toml", names=["127.0.0.1"], now=time.time())
    assert other.ca is not None
    address = await focus.listen_tls(str(files.certificate), str(files.key))
    alice = Peer(kms, focus, ALICE, transport="tls", sip_tls_ca=other.ca)
    alice.client.config = attrs.evolve(alice.client.config, proxy=(address.host, address.port))
    # A failed TLS handshake is not reported to the transaction as a transport error by
    # the SIP stack, so the INVITE ends by Timer B (64*T1): keep T1 small here.
    alice.client._sip_timers = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
    with pytest.raises(SipFailure) as caught:
        await alice.client.join()
    assert caught.value.status in (408, 503)


@pytest_twisted.ensureDeferred
async def test_sip_refusal_carries_status_and_warning(
    setup: tuple[LoopbackKms, FakeFocus],
) -> None:
    """A 488 with a Warning from the focus fails the join with both in the message."""
    kms, focus = setup
    focus.refuse = (488, '399 focus "MIKEY: ticket expired"')
    alice = Peer(kms, focus, ALICE)
    with pytest.raises(SipFailure) as caught:
        await alice.client.join()
    assert caught.value.status == 488
    assert caught.value.warning == '399 focus "MIKEY: ticket expired"'
    assert "488" in str(caught.value) and "MIKEY: ticket expired" in str(caught.value)
    assert caught.value.exit_code == 4


@pytest_twisted.ensureDeferred
async def test_forged_transfer_resp_is_a_keying_failure_and_hangs_up(
    setup: tuple[LoopbackKms, FakeFocus],
) -> None:
    """A TRANSFER_RESP whose MAC does not verify fails the join, and the UE sends BYE."""
    kms, focus = setup
    focus.tamper_transfer_resp = True
    alice = Peer(kms, focus, ALICE)
    with pytest.raises(KeyingFailure, match="does not authenticate"):
        await alice.client.join()
    await wait_for(lambda: focus.byes == [ALICE])


@pytest_twisted.ensureDeferred
async def test_kms_refusal_is_reported(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """A KMS that refuses our key (wrong PSK) fails the join with the HTTP status."""
    kms, focus = setup
    alice = Peer(kms, focus, ALICE)
    alice.client._kms = kms.client(ALICE, psk=KEYS[BOB])
    with pytest.raises(KmsFailure, match="HTTP 403"):
        await alice.client.join()


@pytest_twisted.ensureDeferred
async def test_nickname_accepted_and_refused(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """NICKNAME is sent with Use-Nickname; 200 and a 425 refusal are both only logged."""
    kms, focus = setup
    alice = Peer(kms, focus, ALICE, nickname="al")
    await alice.client.join()
    await wait_for(lambda: alice.logged("nickname 'al' accepted"))
    alice.client.set_nickname("taken")
    await wait_for(lambda: alice.logged("nickname 'taken' refused: 425"))
    assert focus.nicknames == ["al", "taken"]
    assert alice.client.joined
    await alice.client.leave()


@pytest_twisted.ensureDeferred
async def test_private_message_to_a_stranger_is_reported(
    setup: tuple[LoopbackKms, FakeFocus],
) -> None:
    """A private message the focus answers 404 is logged as not delivered."""
    kms, focus = setup
    alice = Peer(kms, focus, ALICE)
    await alice.client.join()
    alice.client.send_private("sip:nobody@example.net", "hello?")
    await wait_for(lambda: alice.logged("not delivered: 404"))
    await alice.client.leave()


@pytest_twisted.ensureDeferred
async def test_remote_bye_ends_the_session(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """A BYE from the focus ends the session with RemoteHangup."""
    kms, focus = setup
    alice = Peer(kms, focus, ALICE)
    await alice.client.join()
    ended = alice.client.when_ended()
    focus.hang_up(ALICE)
    with pytest.raises(RemoteHangup):
        await ended


@pytest_twisted.ensureDeferred
async def test_broken_leg_ends_the_session_with_bye(
    setup: tuple[LoopbackKms, FakeFocus],
) -> None:
    """When the focus drops the MSRP connection the UE hangs up and reports LegFailure."""
    kms, focus = setup
    alice = Peer(kms, focus, ALICE)
    await alice.client.join()
    ended = alice.client.when_ended()
    focus.participants[0].leg.close()
    with pytest.raises(LegFailure, match="MSRP leg failed"):
        await ended
    await wait_for(lambda: focus.byes == [ALICE])


class Lines:
    """A LineSource fed by the test."""

    def __init__(self) -> None:
        self.on_line: Callable[[str], None] | None = None
        self.on_eof: Callable[[], None] | None = None

    def start(self, on_line: Callable[[str], None], on_eof: Callable[[], None]) -> None:
        self.on_line, self.on_eof = on_line, on_eof


def cli_args(kms: LoopbackKms, focus: FakeFocus, *extra: str) -> list[str]:
    return [
        "join",
        ROOM,
        "--identity",
        ALICE,
        "--kms-url",
        kms.base,
        "--kms-insecure-http",
        "--kms-identity",
        KMS_ID,
        "--kms-key",
        KEYS[ALICE].hex(),
        "--proxy",
        f"{focus.address.host}:{focus.address.port}",
        "--leg-timeout",
        "5",
        *extra,
    ]


@pytest_twisted.ensureDeferred
async def test_cli_chats_prints_json_and_leaves(
    setup: tuple[LoopbackKms, FakeFocus], tmp_path: Path
) -> None:
    """The CLI sends stdin lines, prints received messages as JSON lines, writes the TLS
    key log, lingers after end of input, sends BYE and exits 0."""
    kms, focus = setup
    bob = Peer(kms, focus, BOB)
    await bob.client.join()
    lines, out, err = Lines(), io.StringIO(), io.StringIO()
    keylog = tmp_path / "keys.log"
    finished = ensureDeferred(
        run(
            _reactor(),
            cli_args(kms, focus, "--linger", "0.5", "--nickname", "al"),
            lines=lines,
            stdout=out,
            stderr=err,
            environ={"SSLKEYLOGFILE": str(keylog)},
        )
    )
    finished.addErrback(lambda f: print(f.getTraceback()) or f)
    await wait_for(lambda: lines.on_line is not None, why=err.getvalue)
    assert lines.on_line is not None and lines.on_eof is not None
    lines.on_line("hello from the cli\n")
    lines.on_line("/msg sip:bob@example.net just you\n")
    lines.on_line("/bogus\n")
    await wait_for(lambda: len(bob.messages) == 2)
    bob.client.send_chat("hi alice")
    await wait_for(out.getvalue)
    lines.on_eof()
    code = await finished
    assert code == 0, err.getvalue()
    assert bob.messages == [
        Received(ALICE, ROOM, TEXT, "hello from the cli", private=False),
        Received(ALICE, BOB, TEXT, "just you", private=True),
    ]
    assert out.getvalue() == (
        '{"from": "sip:bob@example.net", "to": "sip:lobby@conf.example.net", '
        '"content_type": "text/plain;charset=utf-8", "body": "hi alice", "private": false}\n'
    )
    log = err.getvalue()
    assert "unknown command /bogus" in log
    assert "nickname 'al' accepted" in log
    assert "BYE answered: 200" in log
    assert keylog.read_text().strip(), "no NSS key log lines written"
    assert ALICE in focus.byes
    await bob.client.leave()


@pytest_twisted.ensureDeferred
async def test_cli_exits_non_zero_on_remote_bye(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """When the focus hangs up, the CLI reports it and exits with 7."""
    kms, focus = setup
    lines, out, err = Lines(), io.StringIO(), io.StringIO()
    finished = ensureDeferred(
        run(_reactor(), cli_args(kms, focus), lines=lines, stdout=out, stderr=err)
    )
    await wait_for(lambda: lines.on_line is not None, why=err.getvalue)
    focus.hang_up(ALICE)
    assert await finished == 7
    assert "the focus ended the session (BYE)" in err.getvalue()


class Collect(ProcessProtocol):
    """Feeds stdin to a child process and keeps its output and exit code."""

    def __init__(self, stdin: bytes) -> None:
        self.stdin = stdin
        self.out = b""
        self.err = b""
        self.ended: defer.Deferred[int] = defer.Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(reason.value.exitCode)


@pytest.mark.e2e
@pytest_twisted.ensureDeferred
async def test_console_script_reads_stdin_and_exits_0(
    setup: tuple[LoopbackKms, FakeFocus],
) -> None:
    """The installed focus-ue script, stdin piped: joins, sends, lingers, leaves, exits 0."""
    kms, focus = setup
    bob = Peer(kms, focus, BOB)
    await bob.client.join()
    script = Path(sys.executable).with_name("focus-ue")
    child = Collect(b"hello from a process\n")
    args = [str(script), *cli_args(kms, focus, "--linger", "1")]
    process = _reactor().spawnProcess(child, str(script), args, env=None)
    timer = _reactor().callLater(20, process.signalProcess, "KILL")
    await wait_for(lambda: bob.messages, timeout=10, why=child.err.decode)
    bob.client.send_chat("welcome")
    code = await child.ended
    if timer.active():
        timer.cancel()
    assert code == 0, child.err.decode()
    assert bob.messages == [Received(ALICE, ROOM, TEXT, "hello from a process", private=False)]
    printed = [json.loads(line) for line in child.out.decode().splitlines()]
    assert printed == [
        {"from": BOB, "to": ROOM, "content_type": TEXT, "body": "welcome", "private": False}
    ]
    assert b"left the room" in child.err
    await bob.client.leave()


def answering_peer(kms: LoopbackKms, focus: FakeFocus, identity: str, **kw: Any) -> Peer:
    """A Peer configured for answer mode on a free loopback port."""
    peer = Peer(kms, focus, identity, **kw)
    port = _free_port()
    peer.client.config = attrs.evolve(
        peer.client.config,
        room="",
        proxy=None,
        listen=("127.0.0.1", port),
        msrp_port_range=(42000, 42999),
        answer_wait=5.0,
    )
    return peer


@pytest.mark.parametrize("setup_role", [SetupRole.ACTPASS, SetupRole.ACTIVE])
@pytest_twisted.ensureDeferred
async def test_answer_a_dial_out_and_chat(
    setup: tuple[LoopbackKms, FakeFocus], setup_role: SetupRole
) -> None:
    """answer: the UE resolves the focus's ticket, answers with TRANSFER_RESP, brings up
    the leg (active to actpass, passive to active) and chats with a dial-in participant."""
    kms, focus = setup
    bob = Peer(kms, focus, BOB)
    await bob.client.join()
    alice = answering_peer(kms, focus, ALICE)
    answered = alice.client.answer()
    assert alice.client.config.listen is not None
    target = Target("UDP", *alice.client.config.listen)
    await focus.dial_out(ALICE, target, setup=setup_role)
    await answered
    assert alice.client.room == ROOM
    role = "listening on" if setup_role is SetupRole.ACTIVE else "to 127.0.0.1"
    assert alice.logged(f"MSRP leg up ({role}"), alice.log
    bob.client.send_chat("hi alice")
    await wait_for(lambda: alice.messages)
    assert alice.messages == [Received(BOB, ROOM, TEXT, "hi alice", private=False)]
    alice.client.send_chat("hi bob")
    await wait_for(lambda: bob.messages)
    assert bob.messages == [Received(ALICE, ROOM, TEXT, "hi bob", private=False)]
    await alice.client.leave()
    await bob.client.leave()
    assert sorted(focus.byes) == [ALICE, BOB]


@pytest_twisted.ensureDeferred
async def test_answer_refuses_an_invite_for_someone_else(
    setup: tuple[LoopbackKms, FakeFocus],
) -> None:
    """A dial-out whose TRANSFER_INIT names another responder gets 488 with a MIKEY Warning."""
    kms, focus = setup
    alice = answering_peer(kms, focus, ALICE)
    answered = alice.client.answer()
    assert alice.client.config.listen is not None
    target = Target("UDP", *alice.client.config.listen)
    with pytest.raises(AssertionError, match="dial-out answered 488"):
        await focus.dial_out(BOB, target)
    with pytest.raises(KeyingFailure, match="another responder"):
        await answered
    assert alice.logged("refused the INVITE: 488 (MIKEY: TRANSFER_INIT is addressed")


@pytest_twisted.ensureDeferred
async def test_answer_gives_up_after_the_wait(setup: tuple[LoopbackKms, FakeFocus]) -> None:
    """Without an INVITE within --wait, answer fails with JoinTimeout."""
    kms, focus = setup
    alice = answering_peer(kms, focus, ALICE)
    alice.client.config = attrs.evolve(alice.client.config, answer_wait=0.3)
    with pytest.raises(JoinTimeout, match=r"no INVITE within 0\.3 s"):
        await alice.client.answer()


def test_offer_is_a_tls_msrp_line_with_active_setup_and_media_level_key_mgmt() -> None:
    """The dial-in offer: m=message 9 TCP/TLS/MSRP *, msrps path, CPIM and text/plain,
    wrapped text/plain and *, a=setup:active, a=chatroom and a media-level a=key-mgmt."""
    client = ChatClient(
        UeConfig(identity=ALICE, room=ROOM, proxy=("127.0.0.1", 5060)),
        kms=None,  # type: ignore[arg-type]
        reactor=None,
        random_bytes=bytes,
    )
    uri = MsrpUri("msrps", "127.0.0.1", 9, "abc")
    text = client._description(uri, SetupRole.ACTIVE, KeyMgmt("mikey", b"\x01\x02")).encode()
    lines = text.decode().split("\r\n")
    media = lines[lines.index("m=message 9 TCP/TLS/MSRP *") :]
    assert media[1:] == [
        "a=path:msrps://127.0.0.1:9/abc;tcp",
        "a=accept-types:message/cpim text/plain",
        "a=accept-wrapped-types:text/plain *",
        "a=setup:active",
        "a=chatroom:nickname private-messages",
        "a=key-mgmt:mikey AQI=",
        "",
    ]
    assert "c=IN IP4 127.0.0.1" in lines
