"""The pooled production random source (focus._random)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from focus._random import PooledRandom
from focus.service import FocusService

from ._harness import POLICY, FakeKms, config
from .test_service import _with_policy


def test_draws_have_requested_length_and_do_not_repeat_within_a_refill() -> None:
    """Consecutive draws are distinct slices of the pool with the requested lengths."""
    pool = PooledRandom(refill=64)
    draws = [pool(6) for _ in range(30)]  # crosses several refills
    assert all(len(d) == 6 for d in draws)
    assert len(set(draws)) == len(draws)


def test_large_draw_bypasses_the_pool() -> None:
    """A draw larger than the pool comes straight from the kernel at full length."""
    pool = PooledRandom(refill=16)
    assert len(pool(100)) == 100
    assert pool(0) == b""


def test_invalid_sizes_are_rejected() -> None:
    """Negative counts and non-positive refills raise ValueError."""
    with pytest.raises(ValueError):
        PooledRandom(refill=0)
    with pytest.raises(ValueError):
        PooledRandom()(-1)


def test_drop_forgets_unread_bytes() -> None:
    """After drop (as after fork) the next draw is from a fresh buffer."""
    pool = PooledRandom(refill=32)
    pool(4)
    pool.drop()
    assert pool._offset == 0
    assert len(pool(4)) == 4


def test_service_pools_os_urandom_and_keeps_an_injected_source(tmp_path: Path) -> None:
    """FocusService wraps the default os.urandom in a pool and keeps an injected source."""
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    cfg = _with_policy(config(), policy)

    def injected(n: int) -> bytes:
        return b"\x00" * n

    default = FocusService(cfg, reactor=MemoryReactorClock(), kms=FakeKms(), log_stream=StringIO())
    assert isinstance(default.random, PooledRandom)
    assert default.app.random is default.random
    given = FocusService(
        cfg, reactor=MemoryReactorClock(), kms=FakeKms(), log_stream=StringIO(), random=injected
    )
    assert given.random is injected
    assert given.app.random is injected
