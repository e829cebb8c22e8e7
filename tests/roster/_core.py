"""A stand-in for the dial-in service around a real SIP core and a real Conference, so
the control plane (focus.control) can be driven in memory: requests in as datagrams,
NOTIFYs and other requests out as parsed messages."""

from __future__ import annotations

import itertools
import os
from typing import Any

from twisted.internet.task import Clock

from focus.conference import Conference, Direction, LegEvent
from focus.control import ConferenceControl, EventTap
from focus.sip import Application, Request, Response, Send, Target, UAConfig, UserAgent
from focus.sip.message import parse_message
from focus.sip.ua import IncomingRequest, make_response
from policies import Policy, normalize_uri, parse_policy

FOCUS = Target("UDP", "127.0.0.1", 5060)
PEER = Target("UDP", "127.0.0.2", 5062)
ROOM = "sip:lobby@conf.example.net"
NOW = 1_800_000_000.0

POLICY = f"""
[defaults]
allow = ["sip:*@example.net", "sip:carol@127.0.0.1"]
may_invite = ["sip:alice@example.net"]
moderators = ["sip:mod@example.net"]
watchers = ["sip:watcher@example.org"]

[[room]]
uri = "{ROOM}"
subject = "Lobby"
"""


def policy(text: str = POLICY) -> Policy:
    return parse_policy(text, "policy.toml")


class _App(Application):
    methods = frozenset({"SUBSCRIBE", "REFER", "NOTIFY"})

    def __init__(self) -> None:
        self.control: ConferenceControl | None = None

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        if self.control is None or not self.control.on_request(incoming, now):
            incoming.respond(501, now=now)


class FakeCore:
    host = "127.0.0.1"

    def __init__(self, pol: Policy) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.reactor = self.clock
        self.events = EventTap()
        self.conference = Conference(pol)
        self.calls: dict[str, Any] = {}
        self.app = _App()
        self.ua: UserAgent | None = UserAgent(
            UAConfig(host="127.0.0.1", listen=(FOCUS,), domains=("conf.example.net",)),
            self.app,
            os.urandom,
        )
        self.ended: list[tuple[str, str]] = []
        self.causes: list[int | None] = []
        self.sent: list[tuple[Request | Response, Target]] = []
        self._ids = itertools.count(1)
        self._cseq = itertools.count(1)

    # -- FocusCore ------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.seconds()

    def end_leg(self, leg_id: str, reason: str, cause: int | None = None) -> None:
        self.ended.append((leg_id, reason))
        self.causes.append(cause)
        departure = self.conference.leave(leg_id)
        self.events.emit("leave", leg_id=leg_id, room=departure.room_uri, reason=reason)
        self.pump()

    def reload_policy(self, pol: Policy) -> None:
        self.conference.reload(pol)

    def _caller(self, incoming: IncomingRequest) -> tuple[str, str | None]:
        return normalize_uri(str(incoming.request.from_.uri)), None

    # -- test helpers -----------------------------------------------------------------------
    def join(
        self, uri: str, direction: Direction = Direction.DIAL_IN, nickname: str | None = None
    ) -> str:
        leg_id = f"leg-{next(self._ids)}"
        self.conference.admit(
            request_uri=ROOM,
            caller=uri,
            leg_id=leg_id,
            call_id=f"c{leg_id}",
            direction=direction,
        )
        for event in (LegEvent.ANSWERED, LegEvent.LEG_UP, LegEvent.SESSION_BOUND):
            self.conference.advance(leg_id, event)
        self.events.emit("bound", leg_id=leg_id, room=ROOM, call_id=f"c{leg_id}")
        self.pump()
        return leg_id

    def pump(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        assert self.ua is not None
        self.ua.on_timer(self.now())
        for command in self.ua.drain():
            if isinstance(command, Send):
                self.sent.append((parse_message(command.data), command.target))

    def request(
        self,
        method: str,
        *,
        from_: str,
        headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
        uri: str = ROOM,
        call_id: str | None = None,
        to_tag: str | None = None,
        from_tag: str = "peer",
    ) -> str:
        call_id = call_id or f"{method.lower()}-{next(self._ids)}@peer"
        to = f"<{ROOM}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK{os.urandom(6).hex()};rport",
            "Max-Forwards: 70",
            f"From: <{from_}>;tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {next(self._cseq)} {method}",
            "Contact: <sip:peer@127.0.0.2:5062>",
            *[f"{n}: {v}" for n, v in headers],
            "Content-Length: 0",
            "",
            "",
        ]
        assert self.ua is not None
        self.ua.datagram_received("\r\n".join(lines).encode(), PEER, self.now())
        self.pump()
        return call_id

    def responses(self, method: str) -> list[Response]:
        return [m for m, _ in self.sent if isinstance(m, Response) and m.cseq.method == method]

    def requests(self, method: str) -> list[Request]:
        return [m for m, _ in self.sent if isinstance(m, Request) and m.method == method]

    def answer_all(self, method: str, status: int = 200) -> None:
        """The peer answers every ``method`` request sent so far."""
        assert self.ua is not None
        for request in self.requests(method):
            response = make_response(request, status)
            self.ua.datagram_received(response.encode(), PEER, self.now())
        self.pump()


def rig(text: str = POLICY) -> tuple[FakeCore, ConferenceControl]:
    core = FakeCore(policy(text))
    control = ConferenceControl(core, events=core.events, clock=core.clock)  # type: ignore[arg-type]
    core.app.control = control
    return core, control
