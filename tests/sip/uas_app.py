"""A small test UAS built on the stack: answers INVITEs to any user at once with SDP, and
to ``delay`` with 180 and a final answer only after ``delay_s`` seconds."""

from __future__ import annotations

from typing import Any

from focus.sip.dialog import Dialog
from focus.sip.message import Request
from focus.sip.ua import Application, IncomingRequest

ANSWER_SDP = (
    b"v=0\r\no=focus 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=message 9 TCP/TLS/MSRP *\r\na=accept-types:message/cpim\r\n"
)


class TestUAS(Application):
    __test__ = False  # not a pytest class

    def __init__(self, reactor: Any, delay_s: float = 10.0) -> None:
        self.reactor = reactor
        self.delay_s = delay_s
        self.calls: list[Any] = []
        self.acks: list[Request] = []
        self.ended: list[str] = []
        self.cancelled = 0

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        req = incoming.request
        if req.method != "INVITE":
            incoming.respond(200, now=now)
            return
        if getattr(req.uri, "user", None) == "delay" and incoming.dialog is None:
            incoming.respond(180, now=now)

            def late() -> None:
                if not incoming.answered:
                    incoming.respond(
                        200, now=self.reactor.seconds(), body=ANSWER_SDP,
                        content_type="application/sdp",
                    )  # fmt: skip

            self.calls.append(self.reactor.callLater(self.delay_s, late))
            return
        incoming.respond(200, now=now, body=ANSWER_SDP, content_type="application/sdp")

    def on_ack(self, dialog: Dialog, ack: Request, now: float) -> None:
        self.acks.append(ack)

    def on_cancel(self, incoming: IncomingRequest, now: float) -> None:
        self.cancelled += 1

    def on_dialog_terminated(self, dialog: Dialog, reason: str, now: float) -> None:
        self.ended.append(reason)

    def stop(self) -> None:
        for c in self.calls:
            if c.active():
                c.cancel()
