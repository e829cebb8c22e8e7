"""Three `focus-ue` participants chat through `twistd focus`, keyed by `twistd kms`:
every process is real, on loopback, as an operator would run them (PROFILE.md §3–§9)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._procs import ROOM, Deployment, free_port, messages, wait_message

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ALICE, BOB, CAROL = (f"sip:{n}@example.net" for n in ("alice", "bob", "carol"))


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, ("alice", "bob", "carol"))
    try:
        d.start_kms()
        d.start_focus()
        yield d
    finally:
        d.stop()


def in_room(line: str) -> bool:
    return "in the room" in line


def test_three_participants_chat_privately_and_by_nickname(deployment: Deployment) -> None:
    """Everyone sees the others' messages with the right CPIM From, a private message
    reaches only its target, a nickname clash gets 425, and after one participant leaves
    the other two keep chatting."""
    alice = deployment.ue("alice", "--nickname", "alice", linger=0)
    bob = deployment.ue("bob", "--nickname", "bob")
    carol = deployment.ue("carol", "--nickname", "carol")
    for ue, nick in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        ue.wait_for(in_room)
        ue.wait_for(lambda line, nick=nick: f"nickname {nick!r} accepted" in line)

    alice.send_line("hello from alice")
    for ue in (bob, carol):
        got = wait_message(ue, "hello from alice")
        assert got["from"] == ALICE
        assert got["to"] == ROOM
        assert got["private"] is False
        assert got["content_type"].startswith("text/plain")

    bob.send_line(f"/msg {CAROL} just between us")
    got = wait_message(carol, "just between us")
    assert got == {**got, "from": BOB, "to": CAROL, "private": True}

    carol.send_line("/nick alice")
    carol.wait_for(lambda line: "nickname 'alice' refused: 425" in line)

    carol.send_line("carol here")
    for ue in (alice, bob):
        assert wait_message(ue, "carol here")["from"] == CAROL

    alice.close_stdin()
    assert alice.wait_exit() == 0
    alice.wait_for(lambda line: "BYE answered: 200" in line)

    bob.send_line("still chatting")
    assert wait_message(carol, "still chatting")["from"] == BOB

    # Nobody got their own messages back, and the private message went to carol only.
    for ue, me in ((alice, ALICE), (bob, BOB), (carol, CAROL)):
        assert all(m["from"] != me for m in messages(ue)), ue.text()
    assert all(m["body"] != "just between us" for m in messages(alice))
    assert all(m["body"] != "just between us" for m in messages(bob))

    for ue in (bob, carol):
        ue.close_stdin()
    bob_status, carol_status = bob.popen, carol.popen
    for proc in (bob, carol):
        proc.popen.terminate()  # they linger 30 s; SIGTERM must still end them
    assert bob_status.wait(timeout=20) is not None
    assert carol_status.wait(timeout=20) is not None


def test_focus_answers_503_when_its_kms_is_unreachable(tmp_path: Path) -> None:
    """A focus that cannot reach the KMS answers the INVITE 503 with Retry-After; the UE
    exits non-zero with the status on stderr, and the focus keeps running."""
    dead_port = free_port()  # nothing listens there: the focus's KMS is "stopped"
    d = Deployment(tmp_path, ("alice",), focus_kms_port=dead_port)
    try:
        d.start_kms()
        focus = d.start_focus()
        ue = d.ue("alice", linger=0)
        ue.close_stdin()
        assert ue.wait_exit(timeout=60) == 4, ue.text()
        ue.wait_for(lambda line: "503" in line)
        assert [json.loads(line) for line in ue.lines["out"]] == []
        focus.wait_for(lambda line: "503" in line or "unavailable" in line.lower(), key="out")
        assert focus.popen.poll() is None
    finally:
        d.stop()
