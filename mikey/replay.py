"""Bounded replay cache (RFC 3830 §5.4, RFC 6043 §12.4).

Entries are keyed by a hash of the message (RFC 6043 §12.4 "a hash of the message (or
parts of it)") and kept until their timestamp leaves the allowed clock-skew window; a
message outside the window is refused by its timestamp alone, so it no longer needs an
entry. The cache holds at most ``max_entries`` entries. Two policies for a full cache:

``STRICT``
    refuse every new message until an entry expires (RFC 3830 §5.4: after losing
    track of state, reject until one skew interval has passed). Safe, but an overload
    or a burst of deferred deliveries locks everyone out for up to the skew window.
``KEEP_NEWEST``
    the deferred-delivery variant from the source document: evict the entry with the
    oldest timestamp and keep the newest ones. To stay safe, the cache then refuses
    every message whose timestamp is not newer than the newest evicted one (a
    "low-water mark"), because it can no longer tell whether such a message was seen.
    Fresh messages keep flowing; late ones are refused first.
"""

from __future__ import annotations

import enum
import hashlib
import heapq

from mikey.errors import ReplayError, TimestampError

__all__ = ["ReplayCache", "ReplayPolicy", "replay_key"]


def replay_key(message: bytes) -> bytes:
    """SHA-256 of the complete message as received."""
    return hashlib.sha256(message).digest()


class ReplayPolicy(enum.Enum):
    STRICT = "strict"
    KEEP_NEWEST = "keep-newest"


class ReplayCache:
    """Remembers authenticated messages while their timestamps are in the window."""

    def __init__(
        self,
        max_entries: int = 10_000,
        max_skew: float = 300.0,
        policy: ReplayPolicy = ReplayPolicy.KEEP_NEWEST,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self.max_skew = max_skew
        self.policy = policy
        self._entries: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._floor = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        limit = now - self.max_skew
        while self._heap and self._heap[0][0] < limit:
            ts, key = heapq.heappop(self._heap)
            if self._entries.get(key) == ts:
                del self._entries[key]

    def check(self, key: bytes, timestamp: float, now: float) -> None:
        """Raise as :meth:`check_and_add` would for a seen or stale ``key``, without
        remembering it: a responder's early check before it can authenticate the
        message (RFC 3830 §5.3 caches only authenticated messages, but a replay can be
        refused before the costly step, e.g. resolving a ticket at the KMS)."""
        if abs(timestamp - now) > self.max_skew:
            raise TimestampError("timestamp outside the allowed clock skew")
        self._expire(now)
        if key in self._entries:
            raise ReplayError("replayed message")
        if timestamp <= self._floor:
            raise ReplayError("message older than the replay cache can vouch for")

    def check_and_add(self, key: bytes, timestamp: float, now: float) -> None:
        """Accept ``key`` once; raise TimestampError/ReplayError (both ERR 1) otherwise."""
        if abs(timestamp - now) > self.max_skew:
            raise TimestampError("timestamp outside the allowed clock skew")
        self._expire(now)
        if key in self._entries:
            raise ReplayError("replayed message")
        if timestamp <= self._floor:
            raise ReplayError("message older than the replay cache can vouch for")
        if len(self._entries) >= self.max_entries:
            if self.policy is ReplayPolicy.STRICT:
                raise ReplayError("replay cache full")
            oldest_ts, _ = self._heap[0]
            if timestamp <= oldest_ts:
                raise ReplayError("message older than every cached entry of a full cache")
            ts, old = heapq.heappop(self._heap)
            del self._entries[old]
            self._floor = max(self._floor, ts)
        self._entries[key] = timestamp
        heapq.heappush(self._heap, (timestamp, key))
