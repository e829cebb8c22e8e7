"""The real measurements through ``twistd focus`` with a reference ``twistd kms``.

* ``joins``: dial-in joins/s (closed loop, many joins in flight from a few processes)
  and the join latency INVITE -> MSRP session bound (p50/p99), then the latency again
  in an open loop at half the measured rate;
* ``relay``: the bare relay's matrix (N legs, 100 B and 64 KiB, same window) through the
  focus, with the focus's CPU per delivery, and the ratio to the bare relay;
* ``scale``: idle legs held by one focus process (1,000, then 2,000) and the resident
  memory per leg from /proc/<pid>/status VmRSS before and after.

Participants are ``ue.client.ChatClient`` objects driven by :mod:`bench.ue_worker`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import time
from typing import Any

from bench._procs import cpu_seconds, open_fds, status_kib
from bench.deployment import Deployment
from bench.relay_bench import percentile
from bench.ue_worker import run_worker

SMALL, LARGE = 100, 64 * 1024
WINDOW = {SMALL: 8, LARGE: 2}
LARGE_SENDERS = 3
#: A 200-person room where everyone pipelines at once only measures queueing; talkers
#: are capped (the same for both relays) so that every room size measures the relay.
SMALL_SENDERS = 10


class Workers:
    """``count`` UE worker processes sharing the identity numbers ``numbers``."""

    def __init__(self, deployment: Deployment, numbers: list[int], count: int, **spec: Any):
        context = multiprocessing.get_context("fork")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        self.numbers = numbers
        count = max(1, min(count, len(numbers)))
        for w in range(count):
            mine = numbers[w::count]
            full = {
                "numbers": mine,
                "kms_url": deployment.kms_url,
                "sip_port": deployment.sip_port,
                "nodelay_patch": deployment.nodelay_patch,
                "max_seconds": 600,
                **spec,
            }
            parent, child = context.Pipe()
            proc = context.Process(target=run_worker, args=(full, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def command(self, name: str, params: dict[str, Any], reply: str, timeout: float) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((name, params))
        return self.gather(reply, timeout)

    def gather(self, reply: str, timeout: float) -> list[Any]:
        out = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"a UE worker did not answer {reply!r} within {timeout} s")
            answer, value = pipe.recv()
            assert answer == reply, answer
            out.append(value)
        return out

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", {}))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join_round(
    dep: Deployment,
    numbers: list[int],
    *,
    workers: int,
    mode: str,
    concurrency: int = 8,
    rate: float | None = None,
    keep: Workers | None = None,
    timeout: float = 120,
) -> tuple[dict[str, Any], Workers]:
    """Join ``numbers``; return the figures and the workers (still holding the legs)."""
    crew = keep or Workers(dep, numbers, workers)
    per_worker_rate = None if rate is None else rate / len(crew.pipes)
    cpu_before = cpu_seconds(dep.focus.pid)
    kms_before = cpu_seconds(dep.kms.pid)
    gen_before = sum(cpu_seconds(p.pid) for p in crew.procs)
    started = time.monotonic()
    results = crew.command(
        "join",
        {"mode": mode, "concurrency": concurrency, "rate": per_worker_rate},
        "joined",
        timeout,
    )
    elapsed = time.monotonic() - started
    gen_cpu = sum(cpu_seconds(p.pid) for p in crew.procs) - gen_before
    focus_cpu = cpu_seconds(dep.focus.pid) - cpu_before
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    totals = sorted(x for r in results for x in r["total_ms"])
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ok = sum(r["ok"] for r in results)
    worker_elapsed = max(r["elapsed"] for r in results)
    return (
        {
            "mode": mode,
            "attempted": len(numbers),
            "joined": ok,
            "failed": sum(r["failed"] for r in results),
            "errors": dict(list(errors.items())[:5]),
            "seconds": round(worker_elapsed, 3),
            "joins_per_s": ok / worker_elapsed if worker_elapsed else None,
            "offered_rate": rate,
            "invite_to_bound_ms_p50": percentile(latencies, 50),
            "invite_to_bound_ms_p99": percentile(latencies, 99),
            "with_ticket_ms_p50": percentile(totals, 50),
            "with_ticket_ms_p99": percentile(totals, 99),
            "focus_cpu_s_per_join": focus_cpu / ok if ok else None,
            # What one focus core could do if the focus were the only bottleneck.
            "focus_bound_joins_per_s": ok / focus_cpu if focus_cpu else None,
            "focus_cpu_share": focus_cpu / elapsed if elapsed else None,
            "generator_cpu_share": gen_cpu / elapsed if elapsed else None,
            "kms_cpu_s_per_join": (cpu_seconds(dep.kms.pid) - kms_before) / ok if ok else None,
            "wall_seconds": round(elapsed, 3),
        },
        crew,
    )


_ROUND = [0]


def drain(crew: Workers, quiet: float = 1.0, limit: float = 20.0) -> float:
    """Wait until no worker has received anything for ``quiet`` seconds (the focus's
    queues are empty again), at most ``limit`` seconds; return how long it took."""
    started = time.monotonic()
    last, still_since = -1, time.monotonic()
    while time.monotonic() - started < limit:
        total = sum(crew.command("count", {}, "count", 10))
        if total != last:
            last, still_since = total, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
        time.sleep(0.25)
    return round(time.monotonic() - started, 1)


def relay_round(
    dep: Deployment,
    crew: Workers,
    *,
    legs: int,
    size: int,
    window: int,
    senders: list[int],
    rate: float | None = None,
    warmup: float = 1.0,
    seconds: float = 3.0,
) -> dict[str, Any]:
    _ROUND[0] += 1
    start = time.monotonic_ns() + 300_000_000
    w_from = start + int(warmup * 1e9)
    w_to = w_from + int(seconds * 1e9)
    stop = w_to + 200_000_000
    for pipe in crew.pipes:
        pipe.send(
            (
                "relay",
                {
                    "senders": senders,
                    "window": window,
                    "size": size,
                    "rate": rate,
                    "round": _ROUND[0],
                    "times": (start, w_from, w_to, stop),
                },
            )
        )
    time.sleep(max(0.0, (w_from - time.monotonic_ns()) / 1e9))
    cpu_from = cpu_seconds(dep.focus.pid)
    gen_from = sum(cpu_seconds(p.pid) for p in crew.procs)
    time.sleep(max(0.0, (w_to - time.monotonic_ns()) / 1e9))
    cpu_to = cpu_seconds(dep.focus.pid)
    gen_to = sum(cpu_seconds(p.pid) for p in crew.procs)
    results = crew.gather("relayed", warmup + seconds + 30)
    drained = drain(crew)
    delivered = sum(r.get("delivered", 0) for r in results)
    latencies = sorted(ns / 1e6 for r in results for ns in r.get("latencies_ns", []))
    cpu = cpu_to - cpu_from
    return {
        "legs": legs,
        "frame_size": size,
        "window": window,
        "senders": len(senders),
        "rate_per_sender": rate,
        "deliveries_per_s": delivered / seconds,
        "relay_cpu_seconds": cpu,
        "relay_cpu_share": cpu / seconds,
        "generator_cpu_share": (gen_to - gen_from) / seconds,
        "cpu_s_per_1000": (1000 * cpu / delivered) if delivered else None,
        "deliveries_per_cpu_s": (delivered / cpu) if cpu else None,
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p99": percentile(latencies, 99),
        "sent": sum(r.get("sent", 0) for r in results),
        "send_failed": sum(r.get("failed", 0) for r in results),
        "send_refused": sum(r.get("send_refused", 0) for r in results),
        "stale": sum(r.get("stale", 0) for r in results),
        "drain_seconds": drained,
        "setup_seconds": None,
        "errors": [],
    }


def med(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    out = dict(runs[0])
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["runs"] = len(runs)
    return out


RELAY_KEYS = (
    "deliveries_per_s",
    "deliveries_per_cpu_s",
    "cpu_s_per_1000",
    "relay_cpu_share",
    "generator_cpu_share",
    "latency_ms_p50",
    "latency_ms_p99",
)
JOIN_KEYS = (
    "joins_per_s",
    "invite_to_bound_ms_p50",
    "invite_to_bound_ms_p99",
    "with_ticket_ms_p50",
    "with_ticket_ms_p99",
    "focus_cpu_s_per_join",
    "kms_cpu_s_per_join",
    "focus_bound_joins_per_s",
    "focus_cpu_share",
    "generator_cpu_share",
)


def _print_join(label: str, r: dict[str, Any]) -> None:
    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else seconds * 1000

    def f(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    print(
        f"{label:10} {r['joined']}/{r['attempted']} joined  {f(r['joins_per_s'], '.0f')} joins/s  "
        f"INVITE->bound p50 {f(r['invite_to_bound_ms_p50'], '.0f')} ms "
        f"p99 {f(r['invite_to_bound_ms_p99'], '.0f')} ms  "
        f"focus {f(ms(r['focus_cpu_s_per_join']), '.1f')} ms-cpu/join  "
        f"kms {f(ms(r['kms_cpu_s_per_join']), '.1f')} ms-cpu/join  "
        f"cpu focus {f(r['focus_cpu_share'], '.2f')} gen {f(r['generator_cpu_share'], '.2f')}"
        + (f"  errors {r['errors']}" if r["errors"] else ""),
        flush=True,
    )


class Numbers:
    """Fresh identity numbers for every round (no identity joins twice in one run)."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> list[int]:
        out = list(range(self.next, self.next + count))
        self.next += count
        return out


def run_all(
    *,
    reps: int,
    rooms: tuple[int, ...],
    seconds: float,
    bare: dict[str, Any] | None,
    joins: int = 300,
    scale: tuple[int, ...] = (1000, 2000),
    workers: int = 2,
) -> dict[str, Any]:

    numbers = Numbers()
    # Every round takes fresh identities; the open-loop round takes ~4 s worth of joins.
    accounts = joins * (reps + 2) + 4000 + 2 * sum(rooms) + max(scale, default=0)
    out: dict[str, Any] = {"joins": None, "join_half_rate": None, "scale": []}
    with Deployment(accounts=accounts) as dep:
        # -- joins/s and join latency -------------------------------------------------
        runs = []
        for _ in range(reps):
            dep.stop_focus()
            dep.start_focus()
            result, crew = join_round(
                dep, numbers.take(joins), workers=workers, mode="closed", concurrency=16
            )
            crew.close()
            _print_join("join", result)
            runs.append(result)
        out["joins"] = med(runs, JOIN_KEYS)
        rate = (out["joins"]["joins_per_s"] or 10) / 2
        dep.stop_focus()
        dep.start_focus()
        half, crew = join_round(
            dep,
            numbers.take(min(4000, max(20, int(rate * 4)))),
            workers=workers,
            mode="open",
            rate=rate,
        )
        crew.close()
        _print_join("join@half", half)
        out["join_half_rate"] = half

        # -- relay through the focus, as shipped and with TCP_NODELAY on the legs -----------
        for variant, nodelay in (("focus", False), ("focus+nodelay", True)):
            dep.nodelay_patch = nodelay
            key = "relay" if not nodelay else "relay_nodelay"
            out[key] = []
            # The what-if variant only matters for small frames (Nagle + delayed ACK), and
            # two room sizes show it (the whole run stays under 10 minutes).
            for legs in [n for n in rooms if not nodelay or n in (10, 50)]:
                sizes = (SMALL,) if nodelay else (SMALL, LARGE)
                relay_room(
                    dep, numbers, legs, variant, out, key, reps, seconds, bare, workers, sizes
                )
        dep.nodelay_patch = False

        # -- idle legs and memory -------------------------------------------------------------
        dep.stop_focus()
        dep.start_focus()
        pid = dep.focus.pid
        time.sleep(0.5)
        rss0, fds0 = status_kib(pid), open_fds(pid)
        held = 0
        crews = []
        try:
            for target in scale:
                more = target - held
                result, crew = join_round(
                    dep,
                    numbers.take(more),
                    workers=max(workers, 4),
                    mode="closed",
                    concurrency=16,
                    timeout=300,
                )
                crews.append(crew)
                held += result["joined"]
                time.sleep(1.0)
                rss, fds = status_kib(pid), open_fds(pid)
                row = {
                    "idle_legs": held,
                    "rss_kib_before": rss0,
                    "rss_kib": rss,
                    "rss_kib_per_leg": (rss - rss0) / held if held else None,
                    "open_fds": fds,
                    "fds_per_leg": (fds - fds0) / held if held else None,
                    "joins_per_s": result["joins_per_s"],
                    "errors": result["errors"],
                }
                out["scale"].append(row)
                print(
                    f"scale      {held} idle legs: VmRSS {rss0} -> {rss} KiB = "
                    f"{row['rss_kib_per_leg']:.1f} KiB/leg, {fds} fds "
                    f"({row['fds_per_leg']:.2f}/leg)",
                    flush=True,
                )
                if result["joined"] < more:
                    break
        finally:
            for crew in crews:
                crew.close()
    return out


def relay_room(
    dep: Deployment,
    numbers: Numbers,
    legs: int,
    variant: str,
    out: dict[str, Any],
    key: str,
    reps: int,
    seconds: float,
    bare: dict[str, Any] | None,
    workers: int,
    sizes: tuple[int, ...] = (SMALL, LARGE),
) -> None:
    """One room of ``legs`` participants on a fresh focus: 100 B and 64 KiB rounds, and for
    N = 50 the latency round at half the 100 B rate."""
    from bench.run import print_row

    dep.stop_focus()
    dep.start_focus()
    members = numbers.take(legs)
    joined, crew = join_round(
        dep, members, workers=workers, mode="closed", concurrency=16, timeout=180
    )
    try:
        if joined["joined"] < legs:
            print(f"relay N={legs}: only {joined['joined']} joined: {joined['errors']}")
        for size in sizes:
            senders = members[: SMALL_SENDERS if size == SMALL else LARGE_SENDERS]
            runs = [
                relay_round(
                    dep,
                    crew,
                    legs=legs,
                    size=size,
                    window=WINDOW[size],
                    senders=senders,
                    seconds=seconds,
                )
                for _ in range(reps)
            ]
            result = med(runs, RELAY_KEYS)
            result["variant"] = variant
            result["bare_ratio"] = _ratio(bare, legs, size, result)
            out[key].append(result)
            print_row(variant[:10], result)
        if legs == 50:
            base = next(r for r in out[key] if r["legs"] == 50 and r["frame_size"] == SMALL)
            if base["deliveries_per_s"]:
                talkers = members[:SMALL_SENDERS]
                rate = base["deliveries_per_s"] / 2 / (legs - 1) / len(talkers)
                half_runs = [
                    relay_round(
                        dep,
                        crew,
                        legs=legs,
                        size=SMALL,
                        window=WINDOW[SMALL],
                        senders=talkers,
                        rate=rate,
                        seconds=seconds,
                    )
                    for _ in range(reps)
                ]
                half = med(half_runs, RELAY_KEYS)
                half["variant"] = variant
                out[key + "_half_rate"] = half
                print_row((variant[:7] + "@half"), half)
    finally:
        crew.close()


def _ratio(bare: dict[str, Any] | None, legs: int, size: int, focus: dict[str, Any]) -> Any:
    if not bare:
        return None
    match = next(
        (r for r in bare.get("relay", []) if r["legs"] == legs and r["frame_size"] == size), None
    )
    if not match:
        return None
    out = {}
    for key in ("deliveries_per_s", "deliveries_per_cpu_s"):
        if match.get(key) and focus.get(key):
            out[key] = focus[key] / match[key]
    return out
