"""Shared pieces: a KMS with three accounts behind an in-memory HTTP agent."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import attrs
import pytest
from treq.testing import RequestTraversalAgent
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from kms import Account, AccountStore, IdentityPattern, build_resource
from kms._engine import MikeyTicketEngine
from kms_client import KmsClient, RetryPolicy

NOW = 1_800_000_000.0
KMS_ID = "sip:kms@example.net"
BASE = "http://kms.test/mikey-ticket/v1"
ALICE, BOB, FOCUS = "sip:alice@example.net", "sip:bob@example.net", "sip:focus@conf.example.net"
ROOM = "sip:lobby@conf.example.net"
KEYS = {ALICE: bytes(range(16)), BOB: bytes(range(16, 32)), FOCUS: bytes(range(32, 64))}


def account(identity: str, *patterns: str) -> Account:
    return Account(
        identity=identity,
        key=KEYS[identity],
        may_act_as=tuple(IdentityPattern.parse(p) for p in (patterns or (identity,))),
        psk_id=identity.encode(),
    )


def counting_random() -> Callable[[int], bytes]:
    """Deterministic, never-repeating 'random' bytes for tests."""
    counter = itertools.count(1)

    def draw(n: int) -> bytes:
        return next(counter).to_bytes(8, "big").rjust(n, b"\x5a")[:n]

    return draw


@attrs.define
class Kms:
    clock: Clock
    engine: MikeyTicketEngine
    agent: RequestTraversalAgent

    def client(self, identity: str, **kw: object) -> KmsClient:
        options: dict[str, object] = {
            "base_url": BASE,
            "kms_identity": KMS_ID,
            "psk": KEYS[identity],
            "http": self.agent,
            "reactor": self.clock,
            "allow_plain_http": True,
            "random_bytes": counting_random(),
            "retry": RetryPolicy(timeout=5.0, max_attempts=1),
        }
        options.update(kw)
        return KmsClient(**options)  # type: ignore[arg-type]

    def settle(self, d: Deferred) -> object:
        """Pump the in-memory connection and return the Deferred's result or Failure."""
        results: list[object] = []
        d.addBoth(results.append)
        for _ in range(20):
            if results:
                break
            self.agent.flush()
        assert results, "the client did not finish"
        return results[0]

    def value(self, d: Deferred) -> object:
        result = self.settle(d)
        if isinstance(result, Failure):
            result.raiseException()
        return result

    def failure(self, d: Deferred) -> Failure:
        result = self.settle(d)
        assert isinstance(result, Failure), f"expected a failure, got {result!r}"
        return result


@pytest.fixture
def kms() -> Kms:
    clock = Clock()
    clock.advance(NOW)
    engine = MikeyTicketEngine(
        identity=KMS_ID,
        accounts=AccountStore.of(
            [account(ALICE), account(BOB), account(FOCUS, FOCUS, "sip:*@conf.example.net")]
        ),
        ticket_protection_key=b"\x77" * 32,
        random_bytes=counting_random(),
    )
    agent = RequestTraversalAgent(build_resource(engine, clock=clock))
    return Kms(clock=clock, engine=engine, agent=agent)
