"""What-if: TCP_NODELAY on every MSRP leg (``focus.adapters.msrp_leg``).

Neither the focus's legs nor focus-ue's set TCP_NODELAY, so small MSRP frames meet
Nagle's algorithm and the peer's delayed ACK (up to 40 ms on Linux) on every request/
response exchange.  :func:`patch` sets it when a leg's connection is made; the bench runs
the focus both ways (``python -m bench._nodelay <twistd args>`` is ``twistd`` with the
patch) to measure what the one-line fix in ``MsrpLeg._connection_made`` would give.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def patch() -> None:
    from focus.adapters import msrp_leg

    original = msrp_leg.MsrpLeg._connection_made
    if getattr(original, "_bench_nodelay", False):
        return

    def connection_made(self: Any, transport: Any) -> None:
        original(self, transport)
        with contextlib.suppress(AttributeError, OSError):
            transport.setTcpNoDelay(True)

    connection_made._bench_nodelay = True  # type: ignore[attr-defined]
    msrp_leg.MsrpLeg._connection_made = connection_made  # type: ignore[method-assign]


if __name__ == "__main__":
    patch()
    from twisted.scripts.twistd import run

    sys.argv[0] = "twistd"
    run()
