"""``make bench``: the stack's limits, measured side by side in one run.

Scenarios (each bounded in time; every process started here is stopped at the end):

``openssl``  one TLS-PSK stream, ``openssl s_client`` -> ``s_server`` (the ceiling).
``bare``     the bare Twisted TLS-PSK relay (:mod:`bench.bare_relay`): N legs, every frame
             of one leg acknowledged and fanned out to the others; N = 3, 10, 50, 200 with
             100 B frames (every leg sends) and 64 KiB frames (three legs send); then the
             fan-out latency at half the N=50 maximum rate.
``focus``    the same matrix through ``twistd focus`` (:mod:`bench.focus_bench`), joins/s
             and join latency with a reference ``twistd kms``, idle legs per process and
             resident memory per leg; skipped with a note while the focus or the UE
             library is missing.

The machine is small and shared, so each figure is the median of ``--reps`` runs, and the
focus-to-bare ratios compare runs made in the same invocation with the same window.
Output: a table on stdout and ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import openssl_baseline
from bench._procs import python, server
from bench.relay_bench import measure

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
PSK = "8f1e2d4c5b6a79880f1e2d3c4b5a6978"  # a fixed bench key, not a secret of anyone's
CIPHER = "ECDHE-PSK-CHACHA20-POLY1305"  # the first of focus.tls_psk.DEFAULT_CIPHERS
SMALL, LARGE = 100, 64 * 1024
WINDOW = {SMALL: 8, LARGE: 2}
LARGE_SENDERS = 3
#: A 200-person room where everyone pipelines at once only measures queueing; talkers
#: are capped (the same for both relays) so that every room size measures the relay.
SMALL_SENDERS = 10
ROOM_SIZES = (3, 10, 50, 200)
NUMERIC = (
    "deliveries_per_s",
    "deliveries_per_cpu_s",
    "cpu_s_per_1000",
    "relay_cpu_share",
    "generator_cpu_share",
    "latency_ms_p50",
    "latency_ms_p99",
    "setup_seconds",
)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's settings with the median of every numeric figure."""
    out = dict(runs[0])
    for key in NUMERIC:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["runs"] = len(runs)
    out["errors"] = [e for r in runs for e in r.get("errors", [])][:5]
    return out


def repeat(reps: int, once: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return median_of([once() for _ in range(reps)])


def bare_matrix(reps: int, sizes: tuple[int, ...], seconds: float) -> dict[str, Any]:
    """The bare relay: a fresh relay process per (room size, frame size), so a room's
    legs never meet the previous room's; ``reps`` runs each, median kept."""
    out: dict[str, Any] = {"relay": [], "half_rate": None}
    for legs in sizes:
        for size in (SMALL, LARGE):
            with server(
                [python(), "-m", "bench.bare_relay", "--psk", PSK, "--ciphers", CIPHER]
            ) as (
                proc,
                line,
            ):
                port = int(line.split()[1])
                result = repeat(
                    reps,
                    lambda legs=legs, size=size, port=port, pid=proc.pid: measure(
                        host="127.0.0.1",
                        port=port,
                        psk_hex=PSK,
                        relay_pid=pid,
                        legs=legs,
                        frame_size=size,
                        window=WINDOW[size],
                        senders=min(legs, SMALL_SENDERS if size == SMALL else LARGE_SENDERS),
                        ciphers=CIPHER,
                        seconds=seconds,
                    ),
                )
            out["relay"].append(result)
            print_row("bare", result)
    base = next((r for r in out["relay"] if r["legs"] == 50 and r["frame_size"] == SMALL), None)
    if base and base["deliveries_per_s"]:
        legs = 50
        talkers = min(legs, SMALL_SENDERS)
        rate = base["deliveries_per_s"] / 2 / (legs - 1) / talkers  # frames/s per sender
        with server([python(), "-m", "bench.bare_relay", "--psk", PSK, "--ciphers", CIPHER]) as (
            proc,
            line,
        ):
            port = int(line.split()[1])
            half = repeat(
                reps,
                lambda: measure(
                    host="127.0.0.1",
                    port=int(line.split()[1]),
                    psk_hex=PSK,
                    relay_pid=proc.pid,
                    legs=legs,
                    frame_size=SMALL,
                    window=WINDOW[SMALL],
                    senders=talkers,
                    rate=rate,
                    ciphers=CIPHER,
                    seconds=seconds,
                ),
            )
        out["half_rate"] = half
        print_row("bare@half", half)
    return out


def print_row(label: str, r: dict[str, Any]) -> None:
    def fmt(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(
        f"{label:10} N={r['legs']:<4} {r['frame_size']:>6}B w={r['window']:<2} "
        f"senders={r['senders']:<4} "
        f"{fmt(r['deliveries_per_s'], ',.0f'):>11} deliv/s  "
        f"{fmt(r['deliveries_per_cpu_s'], ',.0f'):>11} deliv/relay-cpu-s  "
        f"{fmt(r['cpu_s_per_1000'], '.4f'):>7} cpu-s/1000  "
        f"relay cpu {fmt(r['relay_cpu_share'], '.2f')} "
        f"gen cpu {fmt(r['generator_cpu_share'], '.2f')}  "
        f"p50 {fmt(r['latency_ms_p50'], '.1f')} ms p99 {fmt(r['latency_ms_p99'], '.1f')} ms"
        + (f"  errors: {r['errors'][:1]}" if r.get("errors") else ""),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement window")
    parser.add_argument(
        "--only", action="append", choices=("openssl", "bare", "focus"), help="repeatable"
    )
    parser.add_argument("--rooms", default=",".join(map(str, ROOM_SIZES)))
    parser.add_argument("--joins", type=int, default=300, help="joins per join round")
    parser.add_argument("--scale", default="1000,2000", help="idle legs held, in steps")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args(argv)
    only = set(args.only or ("openssl", "bare", "focus"))
    rooms = tuple(int(n) for n in args.rooms.split(","))
    started = time.monotonic()
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": len(__import__("os").sched_getaffinity(0)),
            "python": sys.version,
            "platform": platform.platform(),
        },
        "settings": {
            "reps": args.reps,
            "seconds": args.seconds,
            "cipher": CIPHER,
            "window": WINDOW,
            "large_senders": LARGE_SENDERS,
        },
    }
    if "openssl" in only:
        runs = [openssl_baseline.measure(PSK, CIPHER) for _ in range(args.reps)]
        best = median_of_openssl(runs)
        report["openssl"] = best
        print(
            f"openssl    1 stream {CIPHER}: {best['mb_per_s']:.0f} MB/s = "
            f"{best['frames_per_s_100B']:,.0f} frames/s of 100 B, "
            f"{best['frames_per_s_64KiB']:,.0f} frames/s of 64 KiB",
            flush=True,
        )
    if "bare" in only:
        report["bare"] = bare_matrix(args.reps, rooms, args.seconds)
    if "focus" in only:
        from bench import focus_bench

        report["focus"] = focus_bench.run_all(
            reps=args.reps,
            rooms=rooms,
            seconds=args.seconds,
            bare=report.get("bare"),
            joins=args.joins,
            scale=tuple(int(n) for n in args.scale.split(",") if n),
        )
    report["elapsed_seconds"] = round(time.monotonic() - started, 1)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out} in {report['elapsed_seconds']} s", flush=True)
    return 0


def median_of_openssl(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(runs[0])
    for key in ("mb_per_s", "frames_per_s_100B", "frames_per_s_64KiB", "cpu_seconds", "seconds"):
        out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
