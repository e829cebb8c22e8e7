"""The conference event package through the real dial-in service (FocusApplication with
its control plane), in memory: a SUBSCRIBE sees a dial-in participant join and leave."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from focus.control import ConferenceControl, EventTap
from focus.roster import NAMESPACE
from focus.sip.message import Request, Response, parse_message
from policies import parse_policy
from tests.focus._harness import ALICE, POLICY, ROOM, Focus, good_offer, in_dialog, invite

NS = {"ci": NAMESPACE}
WATCHER = "sip:bob@example.net"


def wire(focus: Focus) -> ConferenceControl:
    tap = EventTap()
    focus.app.events = tap
    control = ConferenceControl(focus.app, events=tap, clock=focus.reactor)  # type: ignore[arg-type]
    focus.app.control = control
    return control


def subscribe(from_uri: str) -> bytes:
    return (
        f"SUBSCRIBE {ROOM} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bKsub1;rport\r\n"
        f"From: <{from_uri}>;tag=w1\r\nTo: <{ROOM}>\r\n"
        "Call-ID: sub-1@watcher\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:bob@127.0.0.2:5062>\r\nEvent: conference\r\nExpires: 600\r\n"
        "Accept: application/conference-info+xml\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def notifies(wire_bytes: list[bytes]) -> list[Request]:
    out = []
    for data in wire_bytes:
        message = parse_message(data)
        if isinstance(message, Request) and message.method == "NOTIFY":
            out.append(message)
    return out


def users(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)  # our own output
    return {u.get("entity") or "": u.get("state") or "" for u in root.iterfind(".//ci:user", NS)}


def test_a_subscriber_sees_a_dial_in_participant_join_and_leave() -> None:
    """Full NOTIFY on SUBSCRIBE (empty room), partial when alice's session is bound, and
    a partial deleting her when she hangs up."""
    focus = Focus()
    focus.app.reload_policy(
        parse_policy(POLICY.replace("[defaults]\n", f'[defaults]\nwatchers = ["{WATCHER}"]\n'))
    )
    control = wire(focus)
    sent = focus.receive(subscribe(WATCHER))
    (ok,) = [m for m in map(parse_message, sent) if isinstance(m, Response)]
    assert ok.status == 200
    (first,) = notifies(focus.wire)
    assert users(first.body) == {}
    body, _offer = good_offer()
    answer = focus.final(invite(body))
    assert answer.status == 200
    focus.collect()
    (call,) = focus.app.calls.values()
    focus.app.leg_up(call.leg)  # the TLS-PSK handshake completed
    focus.app._bound(call)  # the participant's first SEND bound the session
    focus.collect()
    joined = notifies(focus.wire)[-1]
    assert users(joined.body) == {ALICE: "full"}
    focus.receive(in_dialog("ACK", answer, cseq=1, branch="z9hG4bKack"))
    focus.receive(in_dialog("BYE", answer, cseq=2, branch="z9hG4bKbye"))
    left = notifies(focus.wire)[-1]
    assert users(left.body) == {ALICE: "deleted"}
    assert len(control.table) == 1
