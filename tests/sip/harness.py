"""An in-memory network of UserAgent cores (no sockets, no clock)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from focus.sip.message import Response, parse_message
from focus.sip.transaction import Target
from focus.sip.ua import (
    Application,
    CloseConnection,
    IncomingRequest,
    OutgoingRequest,
    Send,
    UAConfig,
    UserAgent,
)


def counter_random() -> Callable[[int], bytes]:
    """A deterministic random source: distinct values, no global state."""
    c = itertools.count(1)
    return lambda n: next(c).to_bytes(n, "big")


class Net:
    """Delivers Send commands between cores by destination address."""

    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[tuple[str, int], UserAgent] = {}
        self.log: list[tuple[float, tuple[str, int], Target, bytes]] = []
        self.drop: Callable[[bytes, Target], bool] = lambda data, target: False
        self.closed: list[Target] = []

    def add(self, host: str, port: int, app: Application, **config: object) -> UserAgent:
        cfg = UAConfig(host=host, listen=(Target("UDP", host, port),), **config)  # type: ignore[arg-type]
        ua = UserAgent(cfg, app, counter_random())
        self.nodes[(host, port)] = ua
        return ua

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for (host, port), ua in list(self.nodes.items()):
                for cmd in ua.drain():
                    if isinstance(cmd, CloseConnection):
                        self.closed.append(cmd.target)
                        continue
                    assert isinstance(cmd, Send)
                    moved = True
                    self.log.append((self.now, (host, port), cmd.target, cmd.data))
                    if self.drop(cmd.data, cmd.target):
                        continue
                    dest = self.nodes.get((cmd.target.host, cmd.target.port))
                    if dest is not None:
                        dest.datagram_received(cmd.data, Target("UDP", host, port), self.now)

    def advance(self, until: float) -> None:
        """Run timers up to ``until``."""
        while True:
            ds = [d for ua in self.nodes.values() if (d := ua.next_deadline()) is not None]
            if not ds or min(ds) > until:
                break
            self.now = max(self.now, min(ds))
            for ua in self.nodes.values():
                d = ua.next_deadline()
                if d is not None and d <= self.now:
                    ua.on_timer(self.now)
            self.pump()
        self.now = until

    def sent(self, start: str) -> list[tuple[float, bytes]]:
        """Messages on the wire whose first line starts with ``start``."""
        return [(t, d) for t, _, _, d in self.log if d.startswith(start.encode())]


class Recorder(Application):
    """An application that records what happens and answers as told."""

    methods = frozenset({"NOTIFY", "INFO", "MESSAGE"})

    def __init__(self, answer: int | None = 200, body: bytes = b"") -> None:
        self.answer = answer
        self.body = body
        self.requests: list[IncomingRequest] = []
        self.acks: list[object] = []
        self.cancelled: list[IncomingRequest] = []
        self.ended: list[tuple[object, str]] = []

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        self.requests.append(incoming)
        if self.answer is not None:
            incoming.respond(
                self.answer,
                now=now,
                body=self.body,
                content_type="application/sdp" if self.body else None,
            )

    def on_ack(self, dialog: object, ack: object, now: float) -> None:
        self.acks.append(ack)

    def on_cancel(self, incoming: IncomingRequest, now: float) -> None:
        self.cancelled.append(incoming)

    def on_dialog_terminated(self, dialog: object, reason: str, now: float) -> None:
        self.ended.append((dialog, reason))


class Responses:
    """A response handler that records every response."""

    def __init__(self) -> None:
        self.got: list[Response] = []

    def __call__(self, out: OutgoingRequest, resp: Response) -> None:
        self.got.append(resp)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.got]


def first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode()


def parse(data: bytes) -> object:
    return parse_message(data)
