"""Live reload through the real dial-in service (FocusApplication + control), in memory:
the member the new policy drops gets BYE with a Reason; the other stays connected."""

from __future__ import annotations

from pathlib import Path

from focus.control import ConferenceControl, EventTap
from focus.keying import start_initiator
from focus.sip.message import Request, parse_message
from tests.focus._harness import (
    ALICE,
    NOW,
    POLICY,
    ROOM,
    Focus,
    invite,
    make_grant,
    mikey_attr,
    offer_sdp,
)

BOB = "sip:bob@example.net"


def dial_in(focus: Focus, who: str, call_id: str) -> None:
    grant = make_grant(initiator=who)
    offer = start_initiator(grant, initiator=who, responder=ROOM, now=NOW, csb_id=7,
                            rand=bytes(range(16)))  # fmt: skip
    body = offer_sdp(mikey_attr(offer.transfer_init))
    response = focus.final(invite(body, from_uri=who, call_id=call_id, branch=f"z9hG4bK{call_id}"))
    assert response.status == 200, response


def test_reload_ends_only_the_leg_of_the_member_no_longer_allowed(tmp_path: Path) -> None:
    """After a reload that drops bob from allow, bob's call gets BYE with
    Reason: SIP;cause=403 and alice's call is untouched."""
    focus = Focus()
    tap = EventTap()
    focus.app.events = tap
    policy_file = tmp_path / "policy.toml"
    control = ConferenceControl(focus.app, events=tap, clock=focus.reactor,  # type: ignore[arg-type]
                                policy_file=policy_file)  # fmt: skip
    focus.app.control = control
    dial_in(focus, ALICE, "a1")
    dial_in(focus, BOB, "b1")
    assert len(focus.app.calls) == 2
    policy_file.write_text(POLICY.replace('allow = ["sip:*@example.net"]', f'allow = ["{ALICE}"]'))
    result = control.reload_file()
    focus.collect()
    assert len(result.removed) == 1
    byes = [
        m for m in map(parse_message, focus.wire) if isinstance(m, Request) and m.method == "BYE"
    ]
    (bye,) = byes
    assert bye.call_id == "b1"
    assert (bye.headers.get("Reason") or "").startswith("SIP;cause=403;")
    assert [p.uri for p in focus.app.conference.participants] == [ALICE]


def test_draining_refuses_new_dial_ins_with_503_and_keeps_calls() -> None:
    """After drain, a new INVITE gets 503 with Retry-After; the call in progress stays."""
    focus = Focus()
    tap = EventTap()
    focus.app.events = tap
    control = ConferenceControl(focus.app, events=tap, clock=focus.reactor)  # type: ignore[arg-type]
    focus.app.control = control
    dial_in(focus, ALICE, "a1")
    control.drain()
    grant = make_grant(initiator=BOB)
    offer = start_initiator(grant, initiator=BOB, responder=ROOM, now=NOW, csb_id=8,
                            rand=bytes(range(16)))  # fmt: skip
    refused = focus.final(
        invite(offer_sdp(mikey_attr(offer.transfer_init)), from_uri=BOB, call_id="b2",
               branch="z9hG4bKb2")
    )  # fmt: skip
    assert refused.status == 503 and refused.headers.get("Retry-After") is not None
    assert [p.uri for p in focus.app.conference.participants] == [ALICE]
