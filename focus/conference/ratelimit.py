"""Per-sender token bucket (policy ``rate_limit``): time is a parameter."""

from __future__ import annotations

import attrs

__all__ = ["TokenBucket"]


@attrs.define
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each message takes one.

    Starts full.  ``now`` is any monotonic clock in seconds; a clock that goes backwards
    adds nothing.
    """

    rate: float
    burst: int
    tokens: float = attrs.field(init=False)
    stamp: float | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a positive rate and burst")
        self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Take one token at ``now``; False when the bucket is empty."""
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
