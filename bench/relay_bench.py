"""One relay measurement: N legs in a room, senders pipelining with a window.

:func:`measure` drives legs spread over a few worker processes (:mod:`bench.loadgen`)
against a relay already listening (the bare relay, or later the focus), reads the relay's
CPU time at both ends of the measurement window, and returns deliveries/s, CPU seconds per
1000 deliveries and the fan-out latency percentiles.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from bench._procs import cpu_seconds
from bench.loadgen import run_worker


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure(
    *,
    host: str,
    port: int,
    psk_hex: str,
    relay_pid: int,
    legs: int,
    frame_size: int,
    window: int,
    senders: int | None = None,
    rate: float | None = None,
    workers: int = 2,
    warmup: float = 1.0,
    seconds: float = 3.0,
    ciphers: str | None = None,
    nodelay: bool = True,
) -> dict[str, Any]:
    """Run one measurement and return its figures (see the module docstring)."""
    senders = legs if senders is None else senders
    workers = max(1, min(workers, legs))
    context = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for w in range(workers):
        mine = list(range(w, legs, workers))
        spec = {
            "host": host,
            "port": port,
            "psk": psk_hex,
            "legs": mine,
            "senders": [n for n in mine if n < senders],
            "frame_size": frame_size,
            "window": window,
            "rate": rate,
            "ciphers": ciphers,
            "nodelay": nodelay,
            "max_seconds": warmup + seconds + 60,
        }
        parent, child = context.Pipe()
        proc = context.Process(target=run_worker, args=(spec, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        connected = failed = 0
        setup_started = time.monotonic()
        for pipe in pipes:
            if not pipe.poll(60):
                raise RuntimeError("a worker did not connect its legs within 60 s")
            _, ok, bad = pipe.recv()
            connected += ok
            failed += bad
        setup = time.monotonic() - setup_started
        start = time.monotonic_ns() + 200_000_000
        w_from = start + int(warmup * 1e9)
        w_to = w_from + int(seconds * 1e9)
        stop = w_to + 200_000_000
        for pipe in pipes:
            pipe.send(("go", start, w_from, w_to, stop))
        time.sleep(max(0.0, (w_from - time.monotonic_ns()) / 1e9))
        cpu_from = cpu_seconds(relay_pid)
        gen_from = sum(cpu_seconds(p.pid) for p in procs)
        time.sleep(max(0.0, (w_to - time.monotonic_ns()) / 1e9))
        cpu_to = cpu_seconds(relay_pid)
        gen_to = sum(cpu_seconds(p.pid) for p in procs)
        results = []
        for pipe in pipes:
            if not pipe.poll(30):
                raise RuntimeError("a worker did not report")
            results.append(pipe.recv()[1])
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    delivered = sum(r["delivered"] for r in results)
    latencies = sorted(
        ns / 1e6 for r in results for ns in r["latencies_ns"]
    )  # ms; workers sample at their own stride, close enough for percentiles
    cpu = cpu_to - cpu_from
    return {
        "legs": legs,
        "connected": connected,
        "failed_legs": failed,
        "setup_seconds": round(setup, 3),
        "frame_size": frame_size,
        "window": window,
        "senders": senders,
        "rate_per_sender": rate,
        "deliveries_per_s": delivered / seconds,
        "relay_cpu_seconds": cpu,
        "relay_cpu_share": cpu / seconds,
        "generator_cpu_share": (gen_to - gen_from) / seconds,
        "cpu_s_per_1000": (1000 * cpu / delivered) if delivered else None,
        "deliveries_per_cpu_s": (delivered / cpu) if cpu else None,
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p99": percentile(latencies, 99),
        "errors": [e for r in results for e in r["errors"]][:10],
    }
