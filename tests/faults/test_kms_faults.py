"""The KMS fails while people join: down, slower than the focus's client timeout, or
answering garbage.  Each time the joining caller gets a prompt SIP error, the focus logs
why, frees what the join held, and everyone already in the room keeps chatting."""

from __future__ import annotations

import pytest
import pytest_twisted

from bench.deployment import Deployment
from ue.errors import SipFailure

from ._rig import KmsFront, Participant, chat_works, events, focus_fds, leave_all, sleep

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


async def _room(dep: Deployment) -> tuple[Participant, Participant]:
    alice, bob = Participant(dep, 1), Participant(dep, 2)
    await alice.join()
    await bob.join()
    await chat_works(alice, bob, "before the fault")
    return alice, bob


async def _refused_join(dep: Deployment, number: int) -> SipFailure:
    carol = Participant(dep, number)
    try:
        await carol.join()
    except SipFailure as failure:
        return failure
    raise AssertionError("the join succeeded although the KMS is broken")


async def _check_fault(dep: Deployment, front: KmsFront, mode: str, status: int) -> None:
    alice, bob = await _room(dep)
    fds = focus_fds(dep)
    failures_before = len(events(dep, "key_failure"))
    await front.set_mode(mode)
    failure = await _refused_join(dep, 3)
    assert failure.status == status, failure
    await chat_works(bob, alice, f"during {mode}")
    await sleep(0.5)
    assert focus_fds(dep) <= fds, "the refused join left a descriptor open"
    assert len(events(dep, "key_failure")) > failures_before, "no log line says why"
    await front.set_mode("normal")
    dave = Participant(dep, 4)
    await dave.join()
    await chat_works(dave, alice, f"after {mode}")
    await leave_all(alice, bob, dave)


@pytest_twisted.ensureDeferred
async def test_kms_down(dep: Deployment, front: KmsFront) -> None:
    """KMS connection refused: the caller gets 503 (Retry-After), the room keeps chatting,
    the failure is logged and a later join works once the KMS is back."""
    await _check_fault(dep, front, "down", 503)


@pytest_twisted.ensureDeferred
async def test_kms_slower_than_the_client_timeout(dep: Deployment, front: KmsFront) -> None:
    """A KMS that never answers: after the focus's 1 s client timeout the caller gets 503,
    the room keeps chatting and nothing of the join is left behind."""
    await _check_fault(dep, front, "slow", 503)


@pytest_twisted.ensureDeferred
async def test_kms_answers_garbage(dep: Deployment, front: KmsFront) -> None:
    """A KMS answering random bytes: the caller gets 500 ("KMS answer unusable"), the
    room keeps chatting, the failure is logged."""
    await _check_fault(dep, front, "garbage", 500)
