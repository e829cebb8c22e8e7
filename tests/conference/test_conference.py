"""The conference core: admission by policy, fan-out, private messages, nicknames,
rate limit, legacy unwrapping, leave and roster (focus.conference)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.conference import (
    AdmissionRefused,
    Capabilities,
    Conference,
    ConferenceError,
    LegEvent,
    LegState,
    RelayRefused,
    TokenBucket,
    UnknownLeg,
)
from focus.msrp import CpimAddress, CpimMessage
from policies import parse_policy

ROOM = "sip:lobby@conf.example.net"
ALICE, BOB, CAROL = (f"sip:{n}@example.net" for n in ("alice", "bob", "carol"))
POLICY = f"""
[defaults]
allow = ["sip:*@example.net"]
max_participants = 3
max_message_size = 2000
[defaults.rate_limit]
messages_per_second = 1.0
burst = 2

[[room]]
uri = "{ROOM}"
subject = "Lobby"

[[room]]
uri = "sip:closed@conf.example.net"
enabled = false

[[room]]
uri = "sip:legacy@conf.example.net"
require_cpim = false
"""
FULL = Capabilities(private_messages=True, nicknames=True)


def conference() -> Conference:
    return Conference(parse_policy(POLICY))


def join(
    conf: Conference,
    leg: str,
    who: str,
    room: str = ROOM,
    caps: Capabilities = FULL,
) -> None:
    conf.admit(request_uri=room, caller=who, leg_id=leg, call_id=f"call-{leg}")
    conf.set_capabilities(leg, caps)
    for event in (LegEvent.ANSWERED, LegEvent.LEG_UP, LegEvent.SESSION_BOUND):
        conf.advance(leg, event)


def cpim(sender: str, to: str = ROOM, text: bytes = b"hello") -> bytes:
    return CpimMessage.build(
        from_=CpimAddress(sender), to=(CpimAddress(to),), content_type="text/plain", content=text
    ).encode()


def three() -> Conference:
    conf = conference()
    join(conf, "a", ALICE)
    join(conf, "b", BOB)
    join(conf, "c", CAROL)
    return conf


def status(fn: object, *args: object) -> int:
    with pytest.raises(RelayRefused) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.msrp_status


# -- admission ---------------------------------------------------------------------------


def test_unknown_room_is_404() -> None:
    """A Request-URI that names no room or ad-hoc rule is refused with 404."""
    with pytest.raises(AdmissionRefused) as info:
        conference().admit(request_uri="sip:nope@conf.example.net", caller=ALICE, leg_id="x",
                           call_id="c")  # fmt: skip
    assert info.value.sip_status == 404


def test_policy_refusals_carry_status_and_reason() -> None:
    """Not allowed → 403, closed room → 480, full room → 486 (pending joins count)."""
    conf = conference()
    with pytest.raises(AdmissionRefused) as info:
        conf.admit(request_uri=ROOM, caller="sip:eve@evil.example", leg_id="e", call_id="c")
    assert info.value.sip_status == 403 and "allow" in info.value.reason
    with pytest.raises(AdmissionRefused) as info:
        conf.admit(request_uri="sip:closed@conf.example.net", caller=ALICE, leg_id="x",
                   call_id="c")  # fmt: skip
    assert info.value.sip_status == 480
    for i, who in enumerate((ALICE, BOB, CAROL)):
        conf.admit(request_uri=ROOM, caller=who, leg_id=f"p{i}", call_id=f"c{i}")
    with pytest.raises(AdmissionRefused) as info:
        conf.admit(request_uri=ROOM, caller="sip:dave@example.net", leg_id="d", call_id="c")
    assert info.value.sip_status == 486


def test_admitted_participant_starts_keying() -> None:
    """A new participant is in KEYING, not receiving, and in the roster."""
    conf = conference()
    p = conf.admit(request_uri=ROOM, caller=ALICE, leg_id="a", call_id="c")
    assert p.state is LegState.KEYING and not p.receives
    roster = conf.roster(ROOM)
    assert roster.subject == "Lobby" and [e.uri for e in roster.entries] == [ALICE]


def test_leg_state_table() -> None:
    """Events outside the table end the leg (GONE) and raise."""
    conf = conference()
    conf.admit(request_uri=ROOM, caller=ALICE, leg_id="a", call_id="c")
    with pytest.raises(ConferenceError):
        conf.advance("a", LegEvent.SESSION_BOUND)
    assert conf.participant("a").state is LegState.GONE


# -- relay -------------------------------------------------------------------------------


def test_fan_out_to_every_other_participant_unchanged() -> None:
    """A regular message goes to everyone but the sender, with the CPIM bytes unchanged."""
    conf = three()
    body = cpim(ALICE)
    relay = conf.relay("a", "message/cpim", body, 0.0)
    assert not relay.private
    assert sorted(d.key for d in relay.deliveries) == ["b", "c"]
    assert all(d.body == body and d.content_type == "message/cpim" for d in relay.deliveries)


def test_only_bound_participants_receive() -> None:
    """A participant whose session is not bound yet gets nothing."""
    conf = conference()
    join(conf, "a", ALICE)
    join(conf, "b", BOB)
    conf.admit(request_uri=ROOM, caller=CAROL, leg_id="c", call_id="cc")
    conf.advance("c", LegEvent.ANSWERED)
    conf.advance("c", LegEvent.LEG_UP)
    relay = conf.relay("a", "message/cpim", cpim(ALICE), 0.0)
    assert [d.key for d in relay.deliveries] == ["b"]


def test_cpim_from_must_be_the_sender() -> None:
    """A CPIM From other than the sender's URI is 403 (RFC 7701 §6.1)."""
    assert status(three().relay, "a", "message/cpim", cpim(BOB), 0.0) == 403


def test_non_cpim_is_415_and_too_large_is_413() -> None:
    """Plain text in a CPIM room is 415; a message above max_message_size is 413."""
    conf = three()
    assert status(conf.relay, "a", "text/plain", b"hi", 0.0) == 415
    assert status(conf.relay, "a", "message/cpim", cpim(ALICE, text=b"x" * 3000), 1.0) == 413


def test_private_message_goes_to_the_one_recipient() -> None:
    """CPIM To a participant is a private message for that participant only."""
    relay = three().relay("a", "message/cpim", cpim(ALICE, to=BOB), 0.0)
    assert relay.private and [d.key for d in relay.deliveries] == ["b"]


def test_private_message_refusals() -> None:
    """Unknown recipient → 404; recipient without private-message support → 428."""
    conf = conference()
    join(conf, "a", ALICE)
    join(conf, "b", BOB, caps=Capabilities(private_messages=False))
    assert status(conf.relay, "a", "message/cpim", cpim(ALICE, to=CAROL), 0.0) == 404
    assert status(conf.relay, "a", "message/cpim", cpim(ALICE, to=BOB), 1.0) == 428


def test_rate_limit_per_sender() -> None:
    """Over the burst, a sender gets 403 until the bucket refills; others are unaffected."""
    conf = three()
    conf.relay("a", "message/cpim", cpim(ALICE), 0.0)
    conf.relay("a", "message/cpim", cpim(ALICE), 0.0)
    assert status(conf.relay, "a", "message/cpim", cpim(ALICE), 0.0) == 403
    conf.relay("b", "message/cpim", cpim(BOB), 0.0)
    conf.relay("a", "message/cpim", cpim(ALICE), 1.0)


def test_token_bucket() -> None:
    """Tokens refill at the rate up to the burst; a clock going back adds nothing."""
    bucket = TokenBucket(2.0, 2)
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)
    assert bucket.take(10.5) and not bucket.take(9.0)
    assert bucket.take(100.0) and bucket.take(100.0) and not bucket.take(100.0)


def test_legacy_participants_get_the_content_unwrapped() -> None:
    """In a require_cpim=false room a participant without CPIM gets the inner content,
    and its own plain messages are wrapped (From it, To the room) for the others."""
    room = "sip:legacy@conf.example.net"
    conf = conference()
    join(conf, "a", ALICE, room)
    join(conf, "l", BOB, room, Capabilities(accept_types=("text/plain",)))
    relay = conf.relay("a", "message/cpim", cpim(ALICE, to=room, text=b"hi bob"), 0.0)
    [delivery] = relay.deliveries
    assert delivery.unwrapped and delivery.content_type == "text/plain"
    assert delivery.body == b"hi bob"
    back = conf.relay("l", "text/plain", b"hi alice", 0.0)
    [to_alice] = back.deliveries
    assert back.wrapped and to_alice.content_type == "message/cpim"
    wrapped = CpimMessage.parse(to_alice.body)
    assert wrapped.from_[0].uri == BOB and wrapped.to[0].uri == room
    assert wrapped.content == b"hi alice"


# -- nicknames ---------------------------------------------------------------------------


def test_nicknames() -> None:
    """A nickname is taken once per user: another user gets 425, malformed is 424, the
    same user's second session may reuse it, leaving frees it."""
    conf = three()
    assert conf.nickname("a", '"Ali"') == "Ali"
    assert status(conf.nickname, "b", '"ali"') == 425
    assert status(conf.nickname, "b", "Ali") == 424
    conf.leave("c")
    join(conf, "a2", ALICE)
    assert conf.nickname("a2", '"ALI"') == "ALI"
    conf.leave("a")
    conf.leave("a2")
    assert conf.nickname("b", '"Ali"') == "Ali"
    assert conf.roster(ROOM).entries[0].nickname == "Ali"


# -- leave and roster --------------------------------------------------------------------


def test_leave_removes_everywhere() -> None:
    """Leaving removes the participant from the room, the roster and the relay; the
    last one out closes the room."""
    conf = three()
    before = conf.roster(ROOM).version
    departure = conf.leave("b")
    assert departure.remaining == 2 and departure.participant.state is LegState.GONE
    assert conf.roster(ROOM).version > before
    relay = conf.relay("a", "message/cpim", cpim(ALICE), 0.0)
    assert [d.key for d in relay.deliveries] == ["c"]
    with pytest.raises(UnknownLeg):
        conf.leave("b")
    conf.leave("a")
    conf.leave("c")
    assert conf.rooms == ()


def test_reload_keeps_calls() -> None:
    """A policy reload changes limits for the live room without dropping anyone."""
    conf = three()
    conf.reload(parse_policy(POLICY.replace("max_message_size = 2000", "max_message_size = 10")))
    assert len(conf.roster(ROOM).entries) == 3
    assert status(conf.relay, "a", "message/cpim", cpim(ALICE), 0.0) == 413


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(min_value=2, max_value=6),
    sender=st.integers(min_value=0, max_value=5),
    unbound=st.sets(st.integers(min_value=0, max_value=5), max_size=3),
)
def test_fan_out_reaches_exactly_the_other_bound_participants(
    count: int, sender: int, unbound: set[int]
) -> None:
    """Whatever the room looks like, a regular message goes to every other participant
    whose session is bound, once, and never back to the sender."""
    policy = POLICY.replace("max_participants = 3", "max_participants = 10")
    conf = Conference(parse_policy(policy))
    sender %= count
    for i in range(count):
        who = f"sip:user{i}@example.net"
        if i in unbound and i != sender:
            conf.admit(request_uri=ROOM, caller=who, leg_id=f"l{i}", call_id=f"c{i}")
        else:
            join(conf, f"l{i}", who)
    relay = conf.relay(f"l{sender}", "message/cpim", cpim(f"sip:user{sender}@example.net"), 0.0)
    expected = {f"l{i}" for i in range(count) if i != sender and i not in unbound}
    got = [d.key for d in relay.deliveries]
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))


#: A clock that moves 10 s per relay so these tests stay under the rate limit.
_CLOCK = itertools.count(1000, 10)


def _targets(conf: Conference, leg: str, sender: str, to: str = ROOM) -> list[str]:
    relay = conf.relay(leg, "message/cpim", cpim(sender, to), float(next(_CLOCK)))
    return sorted(d.key for d in relay.deliveries)


def test_cached_switch_view_follows_join_leave_and_state() -> None:
    """The room's cached recipients change after a join, a state change and a leave."""
    conf = conference()
    join(conf, "a", ALICE)
    join(conf, "b", BOB)
    assert _targets(conf, "a", ALICE) == ["b"]
    conf.admit(request_uri=ROOM, caller=CAROL, leg_id="c", call_id="call-c")
    assert _targets(conf, "a", ALICE) == ["b"]  # c not bound yet
    for event in (LegEvent.ANSWERED, LegEvent.LEG_UP, LegEvent.SESSION_BOUND):
        conf.advance("c", event)
    assert _targets(conf, "a", ALICE) == ["b", "c"]
    conf.leave("b")
    assert _targets(conf, "a", ALICE) == ["c"]


def test_cached_switch_view_follows_capabilities_and_nicknames() -> None:
    """A capability or nickname change is seen by the next relay decision."""
    conf = conference()
    join(conf, "a", ALICE)
    join(conf, "b", BOB, caps=Capabilities(private_messages=False))
    with pytest.raises(RelayRefused):
        conf.relay("a", "message/cpim", cpim(ALICE, BOB), 1.0)
    conf.set_capabilities("b", FULL)
    assert _targets(conf, "a", ALICE, BOB) == ["b"]
    assert conf.nickname("b", '"Bobby"') == "Bobby"
    conf.leave("a")
    join(conf, "a2", ALICE)
    with pytest.raises(RelayRefused):
        conf.nickname("a2", '"Bobby"')
