"""A pooled production random source: one ``os.urandom`` call per 4 KiB of draws.

The relay path draws a Message-ID and a transaction id for every relayed copy
(RFC 4975 §7.1 asks only that they be unique and, for the transaction id, hard to
guess); calling ``os.urandom`` for each was ~11 % of the focus's CPU per delivery.
The bytes handed out are still kernel CSPRNG output, each byte handed out once.
The pool is dropped in a forked child so parent and child never share bytes.
"""

from __future__ import annotations

import os
import weakref

__all__ = ["PooledRandom"]

_POOLS: weakref.WeakSet[PooledRandom] = weakref.WeakSet()


def _drop_pools_after_fork() -> None:
    for pool in list(_POOLS):
        pool.drop()


os.register_at_fork(after_in_child=_drop_pools_after_fork)


class PooledRandom:
    """``random(n)`` callable serving slices of one ``os.urandom(refill)`` buffer."""

    __slots__ = ("__weakref__", "_buffer", "_offset", "_refill")

    def __init__(self, refill: int = 4096) -> None:
        if refill <= 0:
            raise ValueError("refill must be positive")
        self._refill = refill
        self._buffer = b""
        self._offset = 0
        _POOLS.add(self)

    def __call__(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("negative byte count")
        if n > self._refill:
            # Large draws (keys, nonces) go straight to the kernel.
            return os.urandom(n)
        offset = self._offset
        end = offset + n
        if end > len(self._buffer):
            self._buffer = os.urandom(self._refill)
            offset, end = 0, n
        self._offset = end
        return self._buffer[offset:end]

    def drop(self) -> None:
        """Forget the unread bytes (after ``fork``)."""
        self._buffer = b""
        self._offset = 0

    def __repr__(self) -> str:
        return f"PooledRandom(refill={self._refill})"
