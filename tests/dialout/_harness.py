"""An in-memory dial-out rig: a real SIP core with no sockets, a fake KMS issuing test
tickets, a fake host, a Clock; plus the member's side of the keying (responder)."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from focus.adapters.msrp_leg import PortAllocator
from focus.dialout import Dialer, DialerSettings, DialOutAnswer
from focus.keying import check_transfer_init, complete_responder
from focus.sdp import (
    KeyMgmt,
    LocalMedia,
    MsrpUri,
    Origin,
    SessionDescription,
    build_answer,
    examine_offer,
)
from focus.sip import Application, Request, Response, Send, Target, UAConfig, UserAgent
from focus.sip.message import parse_message
from focus.sip.ua import make_response
from mikey import TicketGrant
from tests.keying._tickets import make_grant, resolution_of

ROOM = "sip:lobby@conf.example.net"
CAROL = "sip:carol@127.0.0.1:5070"
CAROL_ID = "sip:carol@127.0.0.1"  # the MIKEY identity: no port
NOW = 1_800_000_000.0


class FakeKms:
    def __init__(self) -> None:
        self.requests: list[tuple[str, tuple[str, ...]]] = []
        self.grants: list[TicketGrant] = []
        self.clock: Clock | None = None
        self.fail: Exception | None = None

    def request_ticket(
        self, *, initiator: str, responders: list[str], validity: float = 3600.0
    ) -> Deferred[TicketGrant]:
        self.requests.append((initiator, tuple(responders)))
        if self.fail is not None:
            d: Deferred[TicketGrant] = Deferred()
            d.errback(self.fail)
            return d
        assert self.clock is not None
        grant = make_grant(
            initiator=initiator, responders=tuple(responders), now=self.clock.seconds()
        )
        self.grants.append(grant)
        return succeed(grant)


class FakeHost:
    def __init__(self) -> None:
        self.answers: list[DialOutAnswer] = []
        self.pending: list[Deferred[None]] = []
        self.auto = True

    def dial_out_answered(self, answer: DialOutAnswer) -> Deferred[None]:
        self.answers.append(answer)
        if self.auto:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self.pending.append(d)
        return d


class Events:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        fields.pop("level", None)
        self.records.append((event, fields))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [f for e, f in self.records if e == event]


class Rig:
    def __init__(self, *, outbound_proxy: str | None = None, ua_proxy: Any = None) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.ua = UserAgent(
            UAConfig(
                host="127.0.0.1",
                listen=(Target("UDP", "127.0.0.1", 5060),),
                outbound_proxy=ua_proxy,
            ),
            Application(),
            random=os.urandom,
        )
        self.kms = FakeKms()
        self.kms.clock = self.clock
        self.host = FakeHost()
        self.events = Events()
        self.allocator = PortAllocator(30000, 30009)
        self.dialer = Dialer(
            settings=DialerSettings(
                sip_host="127.0.0.1", path_host="127.0.0.1", outbound_proxy=outbound_proxy
            ),
            ua=lambda: self.ua,
            kms=self.kms,
            host=self.host,
            clock=self.clock,
            allocator=self.allocator,
            events=self.events,  # type: ignore[arg-type]
        )
        self.sent: list[tuple[Request | Response, Target]] = []

    def now(self) -> float:
        return self.clock.seconds()

    def pump(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        self.ua.on_timer(self.now())
        for command in self.ua.drain():
            if isinstance(command, Send):
                self.sent.append((parse_message(command.data), command.target))

    def requests(self, method: str) -> list[tuple[Request, Target]]:
        return [(m, t) for m, t in self.sent if isinstance(m, Request) and m.method == method]

    def respond(
        self,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        headers: list[tuple[str, object]] | None = None,
    ) -> None:
        extra = list(headers or [])
        if 200 <= status < 300:
            extra.append(("Contact", "<sip:carol@127.0.0.1:5070>"))
        response = make_response(
            request,
            status,
            to_tag="member-tag",
            headers=extra,
            body=body,
            content_type="application/sdp" if body else None,
        )
        self.ua.datagram_received(response.encode(), Target("UDP", "127.0.0.1", 5070), self.now())
        self.pump()


def member_answer(
    invite: Request,
    grant: TicketGrant,
    *,
    member: str = CAROL_ID,
    setup: str = "passive",
    now: float = NOW,
    tamper: bool = False,
) -> bytes:
    """The member's answer (what ``focus-ue answer`` does): keying as responder."""
    offer = SessionDescription.parse(invite.body)
    examination = examine_offer(offer)
    (line,) = examination.accepted
    assert line.key_mgmt is not None
    to_resolve = check_transfer_init(
        line.key_mgmt.data,
        room_uri=member,
        offered_ids=line.key_mgmt_ids,
        now=now,
        replay_cache=None,
    )
    result = complete_responder(
        to_resolve, resolution_of(grant), caller=ROOM, now=now, replay_cache=None
    )
    resp = result.transfer_resp
    if tamper:
        resp = resp[:-1] + bytes([resp[-1] ^ 1])
    answer = build_answer(
        examination,
        {
            line.index: LocalMedia(
                (MsrpUri.parse("msrps://127.0.0.1:3000/member;tcp"),), KeyMgmt("mikey", resp)
            )
        },
        origin=Origin("-", 1, 1, "127.0.0.1"),
    )
    text = answer.encode()
    if setup != "passive":
        text = text.replace(b"a=setup:passive", f"a=setup:{setup}".encode())
    return text
