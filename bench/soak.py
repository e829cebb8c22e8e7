"""``make soak``: minutes of churn against ``twistd focus`` with the reference KMS.

    python -m bench.soak --minutes 10 --population 40

Participants (focus-ue ``ChatClient`` sessions in this process) join, chat and leave at
random (seeded) while the focus's resident memory (VmRSS), open file descriptors and
listening TCP ports are sampled every ``--every`` seconds and printed.  At the end
everyone leaves and the bound check runs:

* descriptors and listening ports come back to their value before the churn (+2);
* resident memory after the churn has grown by at most ``--max-growth-mib`` over the
  first sample taken with the room full (warm caches), so leaks show up, and
  the peak stays under that bound plus the room's own need;
* every join failure, if any, is reported with its reason.

The samples and the verdict go to ``bench/results/soak.json``; the exit status is 1 when a
bound is broken.  Every process started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import time
from typing import Any

from bench._procs import open_fds, status_kib
from bench.deployment import KMS_IDENTITY, ROOM, Deployment, account_key, identity

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def listening_ports(pid: int) -> int:
    """TCP sockets of ``pid`` in LISTEN state (its socket inodes matched to /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                count += 1
    return count


def sample(dep: Deployment, joined: int, started: float) -> dict[str, Any]:
    assert dep.focus is not None
    pid = dep.focus.pid
    return {
        "t": round(time.monotonic() - started, 1),
        "joined": joined,
        "rss_kib": status_kib(pid),
        "fds": open_fds(pid),
        "listening": listening_ports(pid),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--population", type=int, default=40, help="participants at most")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--max-growth-mib", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import defer, reactor, task

    from kms_client import KmsClient, https_agent
    from ue.client import ChatClient, UeConfig

    rnd = random.Random(args.seed)
    pool = args.population * 2
    duration = args.minutes * 60
    RESULTS.mkdir(exist_ok=True)
    report: dict[str, Any] = {"settings": vars(args), "samples": [], "join_errors": {}}
    dep = Deployment(accounts=pool, port_range=(26000, 26000 + pool + 20))
    dep.__enter__()
    agent = https_agent(reactor)
    clients: dict[int, Any] = {}
    busy: set[int] = set()
    counters = {"joins": 0, "leaves": 0, "messages": 0, "received": 0, "failed": 0}
    started = time.monotonic()

    def make(number: int) -> Any:
        who = identity(number)
        kms = KmsClient(
            base_url=dep.kms_url,
            kms_identity=KMS_IDENTITY,
            psk=bytes.fromhex(account_key(who)),
            http=agent,
            reactor=reactor,
            allow_plain_http=True,
        )

        def received(_message: Any) -> None:
            counters["received"] += 1

        return ChatClient(
            UeConfig(
                identity=who,
                room=ROOM,
                proxy=("127.0.0.1", dep.sip_port),
                invite_timeout=8.0,
                leg_timeout=5.0,
                bye_timeout=2.0,
            ),
            kms=kms,
            reactor=reactor,
            on_message=received,
        )

    def join(number: int) -> None:
        client = make(number)
        busy.add(number)

        def ok(_: Any) -> None:
            clients[number] = client
            counters["joins"] += 1

        def bad(failure: Any) -> None:
            key = f"{type(failure.value).__name__}: {str(failure.value)[:100]}"
            report["join_errors"][key] = report["join_errors"].get(key, 0) + 1
            counters["failed"] += 1

        client.join().addCallbacks(ok, bad).addBoth(lambda _: busy.discard(number))

    def leave(number: int) -> defer.Deferred[Any]:
        client = clients.pop(number)
        busy.add(number)
        counters["leaves"] += 1
        d = client.leave()
        d.addBoth(lambda _: busy.discard(number))
        return d

    def churn() -> None:
        if time.monotonic() - started > duration:
            return
        free = [n for n in range(pool) if n not in clients and n not in busy]
        if len(clients) + len(busy) < args.population and free and rnd.random() < 0.7:
            join(rnd.choice(free))
        if clients and rnd.random() < 0.15:
            leave(rnd.choice(sorted(clients)))
        for _number, client in list(clients.items()):
            if rnd.random() < 0.05 and client.joined:
                size = rnd.choice((20, 200, 2000, 20000))
                if client.send_chat("s" * size) is not None:
                    counters["messages"] += 1

    def record() -> None:
        row = sample(dep, len(clients), started)
        row.update(counters)
        report["samples"].append(row)
        print(json.dumps(row), flush=True)

    async def run() -> None:
        base = sample(dep, 0, started)
        report["baseline"] = base
        print("baseline", json.dumps(base), flush=True)
        churner = task.LoopingCall(churn)
        churner.start(0.1)
        sampler = task.LoopingCall(record)
        sampler.start(args.every, now=False)
        while time.monotonic() - started < duration:
            await task.deferLater(reactor, 1.0, lambda: None)
        churner.stop()
        sampler.stop()
        while busy:
            await task.deferLater(reactor, 0.2, lambda: None)
        await defer.DeferredList([leave(n) for n in list(clients)], consumeErrors=True)
        await task.deferLater(reactor, 3.0, lambda: None)
        report["final"] = sample(dep, 0, started)
        print("final", json.dumps(report["final"]), flush=True)

    outcome: dict[str, Any] = {}

    def done(result: Any) -> None:
        outcome["result"] = result
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run()).addBoth(done))
    reactor.callLater(duration + 120, reactor.stop)  # hard bound
    try:
        reactor.run()
    finally:
        dep.__exit__(None, None, None)
    if isinstance(outcome.get("result"), Exception) or "final" not in report:
        print("soak did not finish:", outcome.get("result"))
        return 1
    report["verdict"] = verdict(report, args.max_growth_mib)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["verdict"], indent=2))
    return 0 if report["verdict"]["ok"] else 1


def verdict(report: dict[str, Any], max_growth_mib: float) -> dict[str, Any]:
    base, final, samples = report["baseline"], report["final"], report["samples"]
    full = [s for s in samples if s["joined"] >= max(s2["joined"] for s2 in samples) * 0.8]
    warm = full[0]["rss_kib"] if full else base["rss_kib"]
    checks = {
        "fds_back": final["fds"] <= base["fds"] + 2,
        "listening_back": final["listening"] <= base["listening"],
        "rss_growth_kib": final["rss_kib"] - warm,
        "rss_growth_ok": final["rss_kib"] - warm <= max_growth_mib * 1024,
        "peak_rss_kib": max((s["rss_kib"] for s in samples), default=final["rss_kib"]),
        "peak_fds": max((s["fds"] for s in samples), default=final["fds"]),
        "join_failures": sum(report["join_errors"].values()),
    }
    checks["ok"] = bool(checks["fds_back"] and checks["listening_back"] and checks["rss_growth_ok"])
    return checks


if __name__ == "__main__":
    raise SystemExit(main())
