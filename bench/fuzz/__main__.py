"""Run every atheris harness for N seconds each: ``python -m bench.fuzz --seconds 60``.

Each harness runs in its own process (libFuzzer owns the process), with a corpus
directory seeded from the real samples of the package tests, on a bounded wall-clock
budget (``-max_total_time``) plus a hard timeout, and with ``-rss_limit_mb`` so a memory
blow-up counts as a finding.  Exit status 1 when any harness found a crash.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import time

from tests.fuzz import _corpus as corpus

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "results" / "fuzz"

SEEDS = {
    "sip_datagram": corpus.sip_samples,
    "sip_stream": corpus.sip_samples,
    "sip_header_values": corpus.sip_samples,
    "sdp_description": corpus.sdp_samples,
    "msrp_frames": corpus.msrp_samples,
    "msrp_connection": corpus.msrp_samples,
    "msrp_uri": corpus.msrp_samples,
    "cpim": corpus.cpim_samples,
    "mikey_message": corpus.mikey_samples,
    "mikey_verify": lambda: corpus.mikey_samples() + corpus.base_ticket_samples(),
}


def seed_corpus(name: str) -> pathlib.Path:
    """``bench/results/fuzz/<name>/corpus`` holding every real sample (kept across runs,
    so libFuzzer's own additions accumulate)."""
    directory = RESULTS / name / "corpus"
    directory.mkdir(parents=True, exist_ok=True)
    for sample in SEEDS[name]():
        (directory / hashlib.sha1(sample).hexdigest()).write_bytes(sample)
    return directory


def run(name: str, seconds: int) -> tuple[bool, str]:
    """Run one harness; return (clean, last line of its output)."""
    out_dir = RESULTS / name
    corpus_dir = seed_corpus(name)
    command = [
        sys.executable,
        str(HERE / f"fuzz_{name}.py"),
        str(corpus_dir),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=1024",
        "-timeout=10",
        "-max_len=16384",
        f"-artifact_prefix={out_dir}/",
        "-print_final_stats=1",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "hard timeout"
    log = done.stdout + done.stderr
    (out_dir / "last.log").write_text(log)
    stats = [line for line in log.splitlines() if line.startswith("stat::number_of_executed")]
    summary = stats[-1] if stats else (log.strip().splitlines() or ["no output"])[-1]
    return done.returncode == 0, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="per harness")
    parser.add_argument("targets", nargs="*", default=sorted(SEEDS))
    args = parser.parse_args()
    failures = 0
    for name in args.targets:
        started = time.monotonic()
        clean, summary = run(name, args.seconds)
        failures += not clean
        verdict = "ok" if clean else f"CRASH (see bench/results/fuzz/{name}/)"
        print(f"{name:20} {time.monotonic() - started:6.0f}s  {verdict}  {summary}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
