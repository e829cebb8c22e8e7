"""Profile ``twistd focus`` under one load with py-spy (``pip install py-spy``).

    python -m bench.profile_focus relay --legs 10 --seconds 5
    python -m bench.profile_focus join --joins 300

Starts a deployment (:mod:`bench.deployment`), applies the load, samples the focus
process with ``py-spy record --format raw`` meanwhile and prints the functions with the
most samples, by own time and by inclusive time (every frame of a stack counts once).
The collapsed stacks are kept in ``bench/results/profile-<load>.txt`` (flamegraph input).
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import shutil
import subprocess
import sys
import time

from bench.deployment import Deployment
from bench.focus_bench import SMALL, WINDOW, Numbers, join_round, relay_round

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def summarize(raw: pathlib.Path, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "-- own time --"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["-- inclusive --"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def record(pid: int, seconds: float, out: pathlib.Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(pathlib.Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-d",
            str(int(seconds)),
            "-p",
            str(pid),
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("load", choices=("relay", "join"))
    parser.add_argument("--legs", type=int, default=10)
    parser.add_argument("--size", type=int, default=SMALL)
    parser.add_argument("--joins", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{args.load}.txt"
    numbers = Numbers()
    with Deployment(accounts=max(args.legs, args.joins) + 10) as dep:
        if args.load == "join":
            spy = record(dep.focus.pid, args.seconds, out)
            time.sleep(1.0)
            result, crew = join_round(
                dep, numbers.take(args.joins), workers=2, mode="closed", concurrency=16
            )
            crew.close()
            print(result)
        else:
            members = numbers.take(args.legs)
            _, crew = join_round(dep, members, workers=2, mode="closed", concurrency=16)
            try:
                spy = record(dep.focus.pid, args.seconds, out)
                result = relay_round(
                    dep,
                    crew,
                    legs=args.legs,
                    size=args.size,
                    window=WINDOW.get(args.size, 8),
                    senders=members,
                    seconds=args.seconds,
                )
                print({k: result[k] for k in ("deliveries_per_s", "deliveries_per_cpu_s")})
            finally:
                crew.close()
        spy.wait(args.seconds + 30)
    print(summarize(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
