"""Many focus-ue sessions in one process: joins, chat load and idle legs.

:func:`run_worker` runs in a child process (``multiprocessing``, own reactor) and drives
``ue.client.ChatClient`` objects programmatically, one per identity.  Commands arrive on
a pipe, answers go back on it:

``("join", {"mode": "closed", "concurrency": C})`` or ``("join", {"mode": "open",
"rate": R})``
    join every identity of the worker (closed loop: C joins in flight; open loop: R new
    joins per second); answer ``("joined", stats)`` with per-join latencies.  The join
    latency runs from the moment the KMS ticket is in hand, i.e. when the INVITE leaves,
    to the moment the MSRP session is bound (the client's ``join`` fires).
``("relay", {...})``
    the windowed chat load of :mod:`bench.loadgen`, through the focus: each sender keeps
    ``window`` messages in flight (a message leaves the window on ``MessageSent``, i.e.
    the focus's 200); every client counts deliveries and fan-out latency from the send
    time stamped in the text.  Answer ``("relayed", stats)``.
``("leave", {})``  every client leaves (BYE); answer ``("left", count)``.
``("stop", {})``   exit.

The process exits by itself after ``max_seconds``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.deployment import KMS_IDENTITY, ROOM, account_key, identity

MAX_SAMPLES = 50_000


def run_worker(spec: dict[str, Any], pipe: Any) -> None:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor, task
    from twisted.internet.defer import Deferred

    if spec.get("nodelay_patch"):
        from bench._nodelay import patch

        patch()
    from focus import msrp
    from kms_client import KmsClient, https_agent
    from ue.client import ChatClient, UeConfig

    agent = https_agent(reactor)
    numbers: list[int] = list(spec["numbers"])
    clients: dict[int, Any] = {}
    joined: set[int] = set()
    timing: dict[str, int] = {}
    counts = {"received": 0}
    relay: dict[str, Any] = {}
    stats: dict[str, Any] = {}

    class TimedKms:
        """The KMS client of one identity that notes when the ticket arrived."""

        def __init__(self, who: str) -> None:
            self.client = KmsClient(
                base_url=spec["kms_url"],
                kms_identity=KMS_IDENTITY,
                psk=bytes.fromhex(account_key(who)),
                http=agent,
                reactor=reactor,
                allow_plain_http=True,
            )
            self.ticket_at: int | None = None

        def request_ticket(self, **kwargs: Any) -> Deferred[Any]:
            d = self.client.request_ticket(**kwargs)

            def noted(grant: Any) -> Any:
                self.ticket_at = time.monotonic_ns()
                return grant

            return d.addCallback(noted)

    class BenchClient(ChatClient):
        """A ChatClient that also reports when its own messages are acknowledged."""

        number = 0

        def _msrp_event(self, leg: Any, event: Any) -> None:
            if isinstance(event, msrp.MessageSent | msrp.MessageFailed):
                _acked(self.number, isinstance(event, msrp.MessageFailed))
            super()._msrp_event(leg, event)

    def make_client(number: int) -> Any:
        who = identity(number)
        kms = TimedKms(who)
        client = BenchClient(
            UeConfig(
                identity=who,
                room=ROOM,
                proxy=("127.0.0.1", spec["sip_port"]),
                transport=spec.get("transport", "udp"),
                invite_timeout=float(spec.get("invite_timeout", 32.0)),
                leg_timeout=float(spec.get("leg_timeout", 10.0)),
            ),
            kms=kms,
            reactor=reactor,
            on_message=lambda received, n=number: _received(n, received),
        )
        client.number = number
        client.timed_kms = kms
        return client

    # -- joining -------------------------------------------------------------------------

    def join_all(params: dict[str, Any]) -> None:
        todo = [n for n in numbers if n not in joined]
        latencies: list[float] = []
        totals: list[float] = []
        errors: dict[str, int] = {}
        started = time.monotonic()
        state = {"in_flight": 0, "done": 0}
        total = len(todo)

        def finish() -> None:
            pipe.send(
                (
                    "joined",
                    {
                        "ok": len(latencies),
                        "failed": sum(errors.values()),
                        "errors": errors,
                        "latencies_ms": latencies,
                        "total_ms": totals,
                        "elapsed": time.monotonic() - started,
                    },
                )
            )

        def one() -> None:
            number = todo.pop(0)
            client = make_client(number)
            clients[number] = client
            state["in_flight"] += 1
            begun = time.monotonic_ns()

            def ok(_: Any) -> None:
                end = time.monotonic_ns()
                joined.add(number)
                ticket_at = client.timed_kms.ticket_at or begun
                latencies.append((end - ticket_at) / 1e6)
                totals.append((end - begun) / 1e6)

            def bad(failure: Any) -> None:
                key = f"{type(failure.value).__name__}: {str(failure.value)[:80]}"
                errors[key] = errors.get(key, 0) + 1
                clients.pop(number, None)

            def done(_: Any) -> None:
                state["in_flight"] -= 1
                state["done"] += 1
                if params["mode"] == "closed" and todo:
                    one()
                if state["done"] == total:
                    finish()

            client.join().addCallbacks(ok, bad).addBoth(done)

        if not todo:
            finish()
            return
        if params["mode"] == "closed":
            for _ in range(min(int(params["concurrency"]), len(todo))):
                one()
        else:
            interval = 1.0 / float(params["rate"])
            ticker: dict[str, Any] = {}

            def tick() -> None:
                due = int((time.monotonic() - started) / interval) + 1 - (total - len(todo))
                for _ in range(min(due, len(todo))):
                    one()
                if not todo:
                    ticker["call"].stop()

            ticker["call"] = task.LoopingCall(tick)
            ticker["call"].start(min(0.01, interval))

    # -- chat load ---------------------------------------------------------------------

    def _received(number: int, received: Any) -> None:
        counts["received"] += 1
        if not timing:
            return
        arrival = time.monotonic_ns()
        stats["delivered_total"] = stats.get("delivered_total", 0) + 1
        if received.body[21:25] != relay["round"]:
            stats["stale"] = stats.get("stale", 0) + 1  # left over from an earlier round
            return
        if timing["from"] <= arrival < timing["to"]:
            stats["delivered"] = stats.get("delivered", 0) + 1
            stats["seen"] = stats.get("seen", 0) + 1
            if stats["seen"] % stats["sample_every"] == 0:
                try:
                    sent_ns = int(received.body[:20])
                except ValueError:
                    return
                samples = stats["latencies_ns"]
                samples.append(arrival - sent_ns)
                if len(samples) >= MAX_SAMPLES:
                    del samples[::2]
                    stats["sample_every"] *= 2

    def _acked(number: int, failed: bool) -> None:
        if number not in relay.get("outstanding", {}):
            return
        relay["outstanding"][number] -= 1
        stats["acked"] = stats.get("acked", 0) + 1
        if failed:
            stats["failed"] = stats.get("failed", 0) + 1
        pump(number)

    def pump(number: int) -> None:
        now = time.monotonic_ns()
        if not timing or now < timing["start"] or now >= timing["stop"]:
            return
        client = clients.get(number)
        if client is None or not client.joined:
            return
        outstanding = relay["outstanding"]
        room = relay["window"] - outstanding[number]
        if relay["rate"] is not None:
            room = min(room, int(relay["tokens"][number]))
        pad = "x" * max(0, relay["size"] - 33)
        for _ in range(max(0, room)):
            text = f"{time.monotonic_ns():020d} {relay['round']} {number:06d} {pad}"
            if client.send_chat(text) is None:
                stats["send_refused"] = stats.get("send_refused", 0) + 1
                return
            outstanding[number] += 1
            stats["sent"] = stats.get("sent", 0) + 1
            if relay["rate"] is not None:
                relay["tokens"][number] -= 1

    def start_relay(params: dict[str, Any]) -> None:
        senders = [n for n in params["senders"] if n in joined]
        relay.update(
            round=f"{int(params['round']) % 10000:04d}",
            window=int(params["window"]),
            size=int(params["size"]),
            rate=params.get("rate"),
            outstanding={n: 0 for n in senders},
            tokens={n: 0.0 for n in senders},
        )
        stats.clear()
        stats.update(latencies_ns=[], sample_every=1)
        start, w_from, w_to, stop = params["times"]
        timing.update(start=start, stop=stop, **{"from": w_from, "to": w_to})
        delay = max(0.0, (start - time.monotonic_ns()) / 1e9)

        def go() -> None:
            if relay["rate"] is not None:
                tick = 0.01

                def refill() -> None:
                    for n in senders:
                        relay["tokens"][n] = min(
                            relay["tokens"][n] + relay["rate"] * tick,
                            max(1.0, relay["rate"] * 0.05),
                        )
                        pump(n)

                relay["refill"] = task.LoopingCall(refill)
                relay["refill"].start(tick)
            else:
                for n in senders:
                    pump(n)

        def finish() -> None:
            if "refill" in relay and relay["refill"].running:
                relay["refill"].stop()
            timing.clear()
            pipe.send(("relayed", dict(stats)))

        reactor.callLater(delay, go)
        reactor.callLater(delay + (stop - start) / 1e9 + 0.5, finish)

    # -- leaving, commands -----------------------------------------------------------------

    def leave_all() -> None:
        from twisted.internet.defer import DeferredList

        ds = [c.leave() for n, c in clients.items() if n in joined]
        joined.clear()

        def done(results: Any) -> None:
            pipe.send(("left", len(results)))

        DeferredList(ds, consumeErrors=True).addCallback(done)

    def poll() -> None:
        while pipe.poll():
            command, params = pipe.recv()
            if command == "join":
                join_all(params)
            elif command == "relay":
                start_relay(params)
            elif command == "count":
                pipe.send(("count", counts["received"]))
            elif command == "leave":
                leave_all()
            elif command == "stop":
                reactor.stop()

    task.LoopingCall(poll).start(0.02)
    reactor.callLater(float(spec.get("max_seconds", 300)), reactor.stop)
    reactor.run()
    os._exit(0)
