"""REFER to the room through focus.control, with the real Dialer, in memory
(RFC 3515 §2.4, RFC 4579 §5.5/§5.11)."""

from __future__ import annotations

from focus.adapters.msrp_leg import PortAllocator
from focus.conference import Direction
from focus.dialout import Dialer, DialerSettings, DialOutAnswer
from focus.sip import Target
from focus.sip.ua import make_response
from tests.roster._core import PEER, ROOM, FakeCore, rig

from ._harness import FakeKms, member_answer

CAROL = "sip:carol@127.0.0.1:5070"
MEMBER_AT = Target("UDP", "127.0.0.1", 5070)


def with_dialer(core: FakeCore, control) -> FakeKms:  # type: ignore[no-untyped-def]
    kms = FakeKms()
    kms.clock = core.clock

    def adopt(answer: DialOutAnswer, _reason: str) -> str:
        return core.join(answer.identity, Direction.DIAL_OUT)

    control._adopt = adopt
    control.attach(
        Dialer(
            settings=DialerSettings(sip_host="127.0.0.1", path_host="127.0.0.1"),
            ua=lambda: core.ua,
            kms=kms,
            host=control,
            clock=core.clock,
            allocator=PortAllocator(31000, 31003),
            events=core.events,
        )
    )
    return kms


def sipfrags(core: FakeCore) -> list[tuple[bytes, str]]:
    return [
        (n.body, n.headers.get("Subscription-State") or "")
        for n in core.requests("NOTIFY")
        if (n.headers.get("Event") or "").startswith("refer")
    ]


def test_refer_from_an_allowed_participant_brings_the_member_in() -> None:
    """202, NOTIFY 100 Trying, INVITE to the target, and when the member is in the
    room the final NOTIFY says 200 OK with terminated;reason=noresource."""
    core, control = rig()
    kms = with_dialer(core, control)
    core.join("sip:alice@example.net")
    core.request("REFER", from_="sip:alice@example.net",
                 headers=[("Refer-To", f"<{CAROL}>")])  # fmt: skip
    (accepted,) = core.responses("REFER")
    assert accepted.status == 202
    assert sipfrags(core) == [(b"SIP/2.0 100 Trying\r\n", "active;expires=120")]
    core.pump()
    (invite,) = core.requests("INVITE")
    assert str(invite.uri) == CAROL and kms.requests == [(ROOM, ("sip:carol@127.0.0.1",))]
    ringing = make_response(invite, 180, to_tag="m")
    assert core.ua is not None
    core.ua.datagram_received(ringing.encode(), MEMBER_AT, core.now())
    ok = make_response(
        invite, 200, to_tag="m", headers=[("Contact", f"<{CAROL}>")],
        body=member_answer(invite, kms.grants[0], now=core.now()),
        content_type="application/sdp",
    )  # fmt: skip
    core.ua.datagram_received(ok.encode(), MEMBER_AT, core.now())
    core.pump()
    frags = sipfrags(core)
    assert frags[1][0] == b"SIP/2.0 180 Ringing\r\n"
    assert frags[-1] == (b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource")
    assert any(p.uri == "sip:carol@127.0.0.1" for p in core.conference.participants)


def test_refer_from_a_participant_not_allowed_to_invite_is_403() -> None:
    """Bob is a participant but not on may_invite: 403, no NOTIFY, no INVITE."""
    core, control = rig()
    with_dialer(core, control)
    core.join("sip:bob@example.net")
    core.request("REFER", from_="sip:bob@example.net",
                 headers=[("Refer-To", f"<{CAROL}>")])  # fmt: skip
    (refused,) = core.responses("REFER")
    assert refused.status == 403
    core.pump()
    assert core.requests("NOTIFY") == [] and core.requests("INVITE") == []


def test_refer_with_method_bye_removes_only_for_moderators() -> None:
    """method=BYE from a moderator ends the target's leg; from anyone else 403."""
    core, control = rig()
    with_dialer(core, control)
    bob = core.join("sip:bob@example.net")
    core.join("sip:alice@example.net")
    core.request("REFER", from_="sip:alice@example.net",
                 headers=[("Refer-To", "<sip:bob@example.net;method=BYE>")])  # fmt: skip
    core.request("REFER", from_="sip:mod@example.net",
                 headers=[("Refer-To", "<sip:bob@example.net;method=BYE>")])  # fmt: skip
    assert [r.status for r in core.responses("REFER")] == [403, 202]
    assert [leg for leg, _ in core.ended] == [bob]
    assert sipfrags(core)[-1] == (b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource")


def test_refer_without_refer_to_is_400() -> None:
    """RFC 3515 §2.4.1: no Refer-To is a 400."""
    core, control = rig()
    with_dialer(core, control)
    core.join("sip:alice@example.net")
    core.request("REFER", from_="sip:alice@example.net")
    assert core.responses("REFER")[0].status == 400
    assert PEER.port == 5062


def test_start_up_and_reload_dial_the_dial_out_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Members of a room's dial_out list are dialled at start-up; a reload that adds one
    dials it, a reload that removes one stops dialing it."""
    text = open_policy = (
        __import__("tests.roster._core", fromlist=["POLICY"]).POLICY
        + '\n[[room.dial_out]]\nuri = "sip:dave@127.0.0.1:5071"\n'
    )
    core, control = rig(text)
    with_dialer(core, control)
    assert control.dialer is not None
    jobs = control.start()
    assert [j.uri for j in jobs] == ["sip:dave@127.0.0.1:5071"]
    added = tmp_path / "policy.toml"
    added.write_text(open_policy + '\n[[room.dial_out]]\nuri = "sip:erin@127.0.0.1:5072"\n')
    control.policy_file = added
    result = control.reload_file()
    assert result.dialing == ("sip:erin@127.0.0.1:5072",)
    assert {j.uri for j in control.dialer.jobs} == {
        "sip:dave@127.0.0.1:5071", "sip:erin@127.0.0.1:5072",
    }  # fmt: skip
    removed = tmp_path / "removed.toml"
    removed.write_text(open_policy.split("\n[[room.dial_out]]")[0])
    control.policy_file = removed
    control.reload_file()
    core.pump(1.0)
    assert control.dialer.jobs == ()
