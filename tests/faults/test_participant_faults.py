"""Participants and strangers misbehave: a participant vanishes mid-message with a TCP
reset, a participant never reads, half-open TCP connections flood the SIP port and the
leg ports, the leg port range runs out.  Each time the focus keeps serving everyone
else, frees what the offender held, and logs why."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
import pytest_twisted

from bench.deployment import Deployment
from ue.errors import SipFailure

from ._rig import Participant, chat_works, events, focus_fds, leave_all, sleep, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _tcp_of(participant: Participant) -> Any:
    """The TCP transport under a participant's TLS-PSK leg."""
    leg = participant.client._leg
    assert leg is not None
    return leg._transport.transport


def _leaves(dep: Deployment) -> list[dict[str, Any]]:
    return events(dep, "leave")


@pytest_twisted.ensureDeferred
async def test_participant_vanishes_mid_message_with_a_reset(dep: Deployment) -> None:
    """Half a SEND, then a TCP RST: the focus drops that participant (logged with the
    reason), frees its descriptor, and the others keep chatting."""
    alice, bob, carol = Participant(dep, 1), Participant(dep, 2), Participant(dep, 3)
    for p in (alice, bob, carol):
        await p.join()
    await chat_works(alice, bob, "hello")
    baseline = focus_fds(dep)
    tcp = _tcp_of(carol)
    leg = carol.client._leg
    assert leg is not None
    leg._transport.write(
        b"MSRP cut1 SEND\r\nTo-Path: msrps://127.0.0.1:1/x;tcp\r\nMessage-ID: m1\r\n"
        b"Content-Type: message/cpim\r\n\r\nFrom: <sip:u3@example.net>\r\n"
    )
    await sleep(0.2)
    # SO_LINGER {on, 0}: close() sends RST instead of FIN (RFC 793 "abort").
    tcp.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tcp.abortConnection()
    await wait_for(lambda: len(_leaves(dep)) >= 1)
    leave = _leaves(dep)[0]
    assert "leg" in leave["reason"] or "lost" in leave["reason"], leave
    await chat_works(bob, alice, "still here")
    await wait_for(lambda: focus_fds(dep) < baseline)
    await leave_all(alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_participant_that_never_reads(dep: Deployment) -> None:
    """A participant stops reading: the focus ends that leg alone once what it holds for
    it passes the bound (logged, BYE sent), while the sender and the other reader get
    every message."""
    alice, bob, mute = Participant(dep, 1), Participant(dep, 2), Participant(dep, 3)
    for p in (alice, bob, mute):
        await p.join()
    leg = mute.client._leg
    assert leg is not None
    leg.pause_reading()
    big = "x" * 60000
    for i in range(60):  # 3.6 MB for the mute one: far beyond its 256 KiB queue bound
        assert alice.client.send_chat(f"{i:04d} {big}") is not None
        await wait_for(lambda i=i: any(t.startswith(f"{i:04d} ") for t in bob.texts()), 10)
    assert len(bob.texts()) == 60, "the reader did not get every message"
    await chat_works(alice, bob, "the sender was not slowed down")
    await wait_for(lambda: len(_leaves(dep)) >= 1, timeout=5)
    reason = _leaves(dep)[0]["reason"]
    assert "Overflow" in reason or "queue" in reason, _leaves(dep)
    await leave_all(alice, bob, mute)


@pytest_twisted.ensureDeferred
async def test_half_open_flood_on_sip_and_leg_ports(dep: Deployment) -> None:
    """Hundreds of TCP connections that never send anything, to the SIP port and to every
    leg port: the room keeps chatting, a new participant still joins, and the focus
    closes the idle SIP connections (idle_timeout 2 s) and frees its descriptors."""
    from twisted.internet import reactor

    alice, bob = Participant(dep, 1), Participant(dep, 2)
    await alice.join()
    await bob.join()
    baseline = focus_fds(dep)
    flood: list[socket.socket] = []
    try:
        for _ in range(300):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", dep.sip_port))
            flood.append(s)
        low, high = dep.port_range
        for port in range(low, high + 1):
            for _ in range(3):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                flood.append(s)
        # The focus accepts them (listen backlog permitting) and holds them until idle.
        await wait_for(lambda: focus_fds(dep) > baseline + 100, timeout=5)
        await chat_works(alice, bob, "during the flood")
        carol = Participant(dep, 3, transport="udp")
        try:
            await carol.join()
            joined = True
        except SipFailure:
            joined = False  # a flooded leg port may have taken carol's one connection
        await chat_works(bob, alice, "still during the flood")
        await wait_for(lambda: focus_fds(dep) <= baseline + 1 + int(joined), timeout=10)
        twistd_log = (dep.dir / "twistd.log").read_text(errors="replace")
        assert "closing idle SIP connection" in twistd_log, "no log line says why"
    finally:
        for s in flood:
            s.close()
    del reactor
    await sleep(0.5)
    dave = Participant(dep, 4)
    await dave.join()
    await chat_works(dave, alice, "after the flood")
    await leave_all(alice, bob, dave)


@pytest_twisted.ensureDeferred
async def test_leg_port_range_exhausted(dep: Deployment) -> None:
    """With three leg ports, the fourth caller gets 503 ("no free MSRP port", logged), the
    three in the room keep chatting, and a port freed by a leave is used again."""
    dep.restart_focus(port_range=(25100, 25102))
    people = [Participant(dep, n) for n in (1, 2, 3)]
    for p in people:
        await p.join()
    extra = Participant(dep, 4)
    try:
        await extra.join()
    except SipFailure as failure:
        assert failure.status == 503, failure
    else:
        raise AssertionError("a fourth leg got a port from a range of three")
    assert any(e.get("reason") == "no free MSRP port" for e in events(dep, "join_refused"))
    await chat_works(people[0], people[2], "three is a crowd")
    await people[1].client.leave()
    await sleep(0.3)
    late = Participant(dep, 5)
    await late.join()
    await chat_works(late, people[0], "a port came back")
    await leave_all(people[0], people[2], late)
