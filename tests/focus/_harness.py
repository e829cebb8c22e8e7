"""An in-memory focus: the real SIP core, the FocusApplication, a MemoryReactorClock, a
fake KMS, and helpers that build INVITEs from SDP and mikey-built TRANSFER_INITs."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

import mikey
from focus.config import FocusConfig, KmsSettings, MsrpSettings, SipSettings
from focus.keying import start_initiator
from focus.service import FocusApplication
from focus.sip.message import Response, parse_message
from focus.sip.transaction import Target
from focus.sip.ua import Send, UAConfig, UserAgent
from kms_client import KmsRejected, KmsUnavailable, TicketResolution
from policies import parse_policy
from tests.keying._tickets import ALICE, NOW, ROOM, make_grant

FOCUS = Target("UDP", "127.0.0.1", 5060)
PHONE = Target("UDP", "127.0.0.2", 5062)
POLICY = f"""
[defaults]
allow = ["sip:*@example.net"]
leg_bind_timeout = 5.0
[defaults.rate_limit]
messages_per_second = 100.0
burst = 100

[[room]]
uri = "{ROOM}"

[[room]]
uri = "sip:legacy@conf.example.net"
require_cpim = false
"""


def counter_random() -> Callable[[int], bytes]:
    """Deterministic, distinct byte strings."""
    c = itertools.count(1)
    return lambda n: hashlib.sha256(next(c).to_bytes(8, "big")).digest()[:n].ljust(n, b"\0")


def config(**msrp: Any) -> FocusConfig:
    return FocusConfig(
        kms=KmsSettings(
            base_url="https://kms.example.net/mikey-ticket/v1",
            identity="sip:kms@example.net",
            account="sip:focus@conf.example.net",
            key=bytes(16),
            retry_after=17,
        ),
        policy_file=Path("policy.toml"),
        sip=SipSettings(trusted_peers=("127.0.0.9",)),
        msrp=MsrpSettings(port_min=21000, port_max=21003, leg_timeout=8.0, **msrp),
    )


@attrs.define
class FakeKms:
    """Answers resolve_ticket with the grant's keys, a failure, or a pending Deferred."""

    grant: mikey.TicketGrant | None = None
    error: Exception | None = None
    hold: bool = False
    calls: list[tuple[str, bytes]] = attrs.Factory(list)
    pending: list[defer.Deferred[Any]] = attrs.Factory(list)

    def resolution(self) -> TicketResolution:
        assert self.grant is not None
        return TicketResolution(
            mpki=self.grant.mpki,
            tgk=self.grant.tgk,
            spi=self.grant.spi,
            responder=ROOM,
            rand_r=bytes(range(100, 116)),
        )

    def resolve_ticket(
        self, *, responder: str, ticket: bytes, rand_r: bytes | None = None
    ) -> defer.Deferred[Any]:
        self.calls.append((responder, ticket))
        if self.hold:
            d: defer.Deferred[Any] = defer.Deferred()
            self.pending.append(d)
            return d
        if self.error is not None:
            return defer.fail(self.error)
        return defer.succeed(self.resolution())


def offer_sdp(
    key_mgmt: str | None,
    *,
    proto: str = "TCP/TLS/MSRP",
    media: str = "message",
    setup: str = "actpass",
    extra_lines: str = "",
    accept_types: str = "message/cpim",
) -> bytes:
    scheme = "msrps" if "TLS" in proto else "msrp"
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.2",
        "s=-",
        "c=IN IP4 127.0.0.2",
        "t=0 0",
        extra_lines,
        f"m={media} 7654 {proto} *",
        f"a=path:{scheme}://127.0.0.2:7654/s3ss10n;tcp",
        f"a=accept-types:{accept_types}",
        "a=accept-wrapped-types:*",
        f"a=setup:{setup}",
        "a=chatroom:nickname private-messages",
    ]
    if key_mgmt is not None:
        lines.append(f"a=key-mgmt:{key_mgmt}")
    return ("\r\n".join(line for line in lines if line) + "\r\n").encode()


def mikey_attr(data: bytes) -> str:
    return "mikey " + base64.b64encode(data).decode()


def invite(
    body: bytes,
    *,
    uri: str = ROOM,
    from_uri: str = ALICE,
    call_id: str = "call-1@phone",
    branch: str = "z9hG4bKinv1",
    extra: str = "",
) -> bytes:
    head = (
        f"INVITE {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.2:5062;branch={branch};rport\r\n"
        f"From: <{from_uri}>;tag=ph1\r\nTo: <{uri}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:alice@127.0.0.2:5062>\r\n"
        f"{extra}Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def in_dialog(
    method: str, response: Response, *, cseq: int, branch: str, call_id: str = "call-1@phone"
) -> bytes:
    to = response.headers.get("To")
    return (
        f"{method} sip:lobby@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.2:5062;branch={branch};rport\r\n"
        f"From: <{ALICE}>;tag=ph1\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Focus:
    """The focus application behind a real UA core, driven in memory."""

    def __init__(self, kms: FakeKms | None = None, **msrp: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(NOW)
        self.kms = kms or FakeKms(grant=make_grant())
        self.app = FocusApplication(
            config=config(**msrp),
            policy=parse_policy(POLICY),
            kms=self.kms,
            reactor=self.reactor,
            random=counter_random(),
        )
        self.ua = UserAgent(
            UAConfig(host="127.0.0.1", listen=(FOCUS,), domains=("conf.example.net",)),
            self.app,
            counter_random(),
        )
        self.app.ua = self.ua
        self.wire: list[bytes] = []

    @property
    def now(self) -> float:
        return self.reactor.seconds()

    def receive(self, data: bytes, source: Target = PHONE) -> list[bytes]:
        self.ua.datagram_received(data, source, self.now)
        return self.collect()

    def collect(self) -> list[bytes]:
        out = [c.data for c in self.ua.drain() if isinstance(c, Send)]
        self.wire.extend(out)
        return out

    def advance(self, seconds: float) -> list[bytes]:
        self.reactor.advance(seconds)
        deadline = self.ua.next_deadline()
        while deadline is not None and deadline <= self.now:
            self.ua.on_timer(self.now)
            deadline = self.ua.next_deadline()
        return self.collect()

    def final(self, data: bytes, source: Target = PHONE) -> Response:
        """Send ``data`` and return the last final response."""
        return last_final(self.receive(data, source))


def last_final(sent: list[bytes]) -> Response:
    finals = [
        m
        for m in (parse_message(d) for d in sent if d.startswith(b"SIP/2.0"))
        if isinstance(m, Response) and m.status >= 200
    ]
    assert finals, sent
    return finals[-1]


def good_offer(grant: mikey.TicketGrant | None = None, **kw: Any) -> tuple[bytes, Any]:
    """An SDP offer with a TRANSFER_INIT built by the initiator side of focus.keying."""
    grant = grant or make_grant()
    offer = start_initiator(
        grant, initiator=ALICE, responder=ROOM, now=NOW, csb_id=99, rand=bytes(range(16))
    )
    return offer_sdp(mikey_attr(offer.transfer_init), **kw), offer


__all__ = [
    "ALICE",
    "NOW",
    "ROOM",
    "FakeKms",
    "Focus",
    "KmsRejected",
    "KmsUnavailable",
    "good_offer",
    "in_dialog",
    "invite",
    "last_final",
    "make_grant",
    "mikey_attr",
    "offer_sdp",
]
