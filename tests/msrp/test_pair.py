"""Two connection cores wired back to back: what one sends, the other receives."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import (
    Command,
    MessageReceived,
    MessageSent,
    MsrpConfig,
    MsrpConnection,
    MsrpUri,
    ReportReceived,
    SendBytes,
    SessionParams,
    SessionRegistry,
)

ALICE = MsrpUri.parse("msrp://alice.example.com:7777/as3ss10n;tcp")
BOB = MsrpUri.parse("msrp://bob.example.com:8888/bs3ss10n;tcp")


def make_pair(config: MsrpConfig) -> tuple[MsrpConnection, MsrpConnection, list[Command]]:
    counter = itertools.count(1)

    def random(n: int) -> bytes:
        return next(counter).to_bytes(n, "big")

    alice_registry, bob_registry = SessionRegistry(), SessionRegistry()
    alice_params = SessionParams(local_uri=ALICE, peer_path=(BOB,))
    alice_registry.add(alice_params)
    bob_registry.add(SessionParams(local_uri=BOB, peer_path=(ALICE,)))
    alice = MsrpConnection(registry=alice_registry, random=random, config=config)
    bob = MsrpConnection(
        registry=bob_registry, random=random, config=config, auto_accept=True, expected=[BOB]
    )
    return alice, bob, alice.open_session(alice_params, 0.0)


def pump(
    alice: MsrpConnection, bob: MsrpConnection, first: list[Command], cut: int
) -> tuple[list[Any], list[Any]]:
    """Deliver bytes both ways in pieces of ``cut`` octets until both are quiet."""
    seen_alice: list[Any] = list(first)
    seen_bob: list[Any] = []
    pending = [(bob, c.data) for c in first if isinstance(c, SendBytes)]
    while pending:
        target, data = pending.pop(0)
        for i in range(0, len(data), cut):
            out = target.receive_data(data[i : i + cut], 1.0)
            (seen_bob if target is bob else seen_alice).extend(out)
            other = alice if target is bob else bob
            pending.extend((other, c.data) for c in out if isinstance(c, SendBytes))
    return seen_alice, seen_bob


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 9000), min_size=1, max_size=4),
    cut=st.integers(1, 5000),
    chunk=st.integers(100, 5000),
    window=st.integers(1, 20000),
    success=st.booleans(),
)
def test_messages_arrive_intact(
    sizes: list[int], cut: int, chunk: int, window: int, success: bool
) -> None:
    """Every message arrives intact and is reported sent, whatever the chunking and splits."""
    config = MsrpConfig(chunk_size=chunk, send_window=window)
    alice, bob, first = make_pair(config)
    bodies = [bytes([n % 251]) * size + b"-------tail" for n, size in enumerate(sizes)]
    commands = list(first)
    ids = []
    for body in bodies:
        mid, out = alice.send_message(ALICE, "text/plain", body, 0.5, success_report=success)
        ids.append(mid)
        commands.extend(out)
    seen_alice, seen_bob = pump(alice, bob, commands, cut)
    received = [e for e in seen_bob if isinstance(e, MessageReceived)]
    assert [m.body for m in received] == bodies
    assert [m.message_id for m in received] == ids
    assert {e.message_id for e in seen_alice if isinstance(e, MessageSent)} == set(ids)
    reports = [e for e in seen_alice if isinstance(e, ReportReceived)]
    assert len(reports) == (len(ids) if success else 0)
    assert alice.next_deadline() is None and bob.next_deadline() is None
