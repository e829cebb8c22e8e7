"""The bounded replay cache (RFC 3830 §5.4, RFC 6043 §12.4) in its two full-cache policies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mikey import ReplayCache, ReplayError, ReplayPolicy, TimestampError, replay_key

NOW = 1_000_000.0


def test_replay_key_is_a_hash_of_the_message() -> None:
    """Keys are SHA-256 digests: equal messages collide, different ones do not."""
    assert replay_key(b"a") == replay_key(b"a") != replay_key(b"b")
    assert len(replay_key(b"a")) == 32


@pytest.mark.parametrize("policy", list(ReplayPolicy))
def test_second_delivery_is_refused(policy: ReplayPolicy) -> None:
    """The same key inside the window is refused with ReplayError (ERR 1)."""
    cache = ReplayCache(max_entries=4, max_skew=300, policy=policy)
    cache.check_and_add(b"k", NOW, NOW)
    with pytest.raises(ReplayError) as info:
        cache.check_and_add(b"k", NOW, NOW + 10)
    assert info.value.err_code == 1


@pytest.mark.parametrize("policy", list(ReplayPolicy))
def test_timestamps_outside_the_window_are_refused(policy: ReplayPolicy) -> None:
    """A timestamp further than the skew from now is refused without caching."""
    cache = ReplayCache(max_entries=4, max_skew=300, policy=policy)
    with pytest.raises(TimestampError):
        cache.check_and_add(b"k", NOW - 301, NOW)
    with pytest.raises(TimestampError):
        cache.check_and_add(b"k", NOW + 301, NOW)
    assert len(cache) == 0


def test_entries_expire_when_their_timestamp_leaves_the_window() -> None:
    """An entry disappears once its timestamp is older than now - skew."""
    cache = ReplayCache(max_entries=2, max_skew=300, policy=ReplayPolicy.STRICT)
    cache.check_and_add(b"a", NOW, NOW)
    cache.check_and_add(b"b", NOW + 100, NOW + 100)
    cache.check_and_add(b"c", NOW + 301, NOW + 301)  # "a" expired, room again
    assert len(cache) == 2


def test_strict_cache_refuses_when_full() -> None:
    """STRICT: a full cache refuses new messages until entries expire."""
    cache = ReplayCache(max_entries=2, max_skew=300, policy=ReplayPolicy.STRICT)
    cache.check_and_add(b"a", NOW, NOW)
    cache.check_and_add(b"b", NOW + 1, NOW + 1)
    with pytest.raises(ReplayError, match="full"):
        cache.check_and_add(b"c", NOW + 2, NOW + 2)
    cache.check_and_add(b"c", NOW + 302, NOW + 302)


def test_keep_newest_evicts_the_oldest_and_keeps_the_newest() -> None:
    """KEEP_NEWEST: a full cache evicts the oldest entry and accepts the newer message."""
    cache = ReplayCache(max_entries=2, max_skew=300, policy=ReplayPolicy.KEEP_NEWEST)
    cache.check_and_add(b"a", NOW, NOW)
    cache.check_and_add(b"b", NOW + 1, NOW + 1)
    cache.check_and_add(b"c", NOW + 2, NOW + 2)
    assert len(cache) == 2
    with pytest.raises(ReplayError):
        cache.check_and_add(b"b", NOW + 1, NOW + 3)
    with pytest.raises(ReplayError):
        cache.check_and_add(b"c", NOW + 2, NOW + 3)


def test_keep_newest_refuses_what_it_can_no_longer_vouch_for() -> None:
    """After evicting, messages not newer than the evicted one are refused, so the
    evicted message cannot be replayed."""
    cache = ReplayCache(max_entries=1, max_skew=300, policy=ReplayPolicy.KEEP_NEWEST)
    cache.check_and_add(b"a", NOW, NOW)
    cache.check_and_add(b"b", NOW + 5, NOW + 5)  # evicts "a"
    with pytest.raises(ReplayError):
        cache.check_and_add(b"a", NOW, NOW + 6)  # the replay of "a"
    with pytest.raises(ReplayError):
        cache.check_and_add(b"late", NOW - 1, NOW + 6)  # deferred but older than the floor
    with pytest.raises(ReplayError):
        cache.check_and_add(b"older", NOW + 4, NOW + 6)  # older than everything kept
    cache.check_and_add(b"new", NOW + 6, NOW + 6)


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 400)), max_size=60),
    st.sampled_from(list(ReplayPolicy)),
)
def test_no_key_is_ever_accepted_twice_within_the_window(
    events: list[tuple[int, int]], policy: ReplayPolicy
) -> None:
    """Whatever the sequence, a key accepted once is never accepted again while its
    timestamp is inside the window, and the cache never exceeds its bound."""
    cache = ReplayCache(max_entries=5, max_skew=50, policy=policy)
    accepted: dict[int, float] = {}
    now = NOW
    for key, step in events:
        now += step / 10
        ts = now - (key % 7)
        try:
            cache.check_and_add(bytes([key]) + int(ts * 10).to_bytes(8, "big"), ts, now)
        except (ReplayError, TimestampError):
            continue
        marker = key * 10**9 + int(ts * 10)
        assert marker not in accepted or accepted[marker] < now - 50
        accepted[marker] = ts
        assert len(cache) <= 5


def test_check_refuses_seen_and_stale_keys_without_remembering_new_ones() -> None:
    """check() raises like check_and_add() for a replay or a stale timestamp, but a new
    key stays unknown, so an unauthenticated message never enters the cache."""
    cache = ReplayCache(max_entries=4, max_skew=300)
    cache.check(b"new", NOW, NOW)
    assert len(cache) == 0
    cache.check_and_add(b"new", NOW, NOW)
    with pytest.raises(ReplayError):
        cache.check(b"new", NOW, NOW + 1)
    with pytest.raises(TimestampError):
        cache.check(b"other", NOW - 1000, NOW)
