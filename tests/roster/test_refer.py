"""REFER decisions of :mod:`focus.refer` (RFC 3515, RFC 4579 §5.5/§5.11)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.refer import (
    SIPFRAG,
    InviteMember,
    ReferRefused,
    ReferTarget,
    RemoveMember,
    decide_refer,
    parse_refer_to,
    refer_notify,
    sipfrag,
)
from policies import Identity, Room, RoomSettings

ROOM = Room(
    uri=Identity.parse("sip:lobby@conf.example.net"),
    settings=RoomSettings(
        allow=["sip:*@example.net"],
        may_invite=["sip:alice@example.net"],
        moderators=["sip:mod@example.net"],
        deny=["sip:mallory@example.net"],
    ),
)
CAROL = ReferTarget("sip:carol@example.net")


def test_refer_to_plain_and_with_method_bye() -> None:
    """Refer-To gives the bare URI and the method parameter (INVITE by default)."""
    assert parse_refer_to(["<sip:carol@example.net>"]) == CAROL
    bye = parse_refer_to(['"Carol" <sip:carol@chicago.example.com;method=BYE>'])
    assert bye == ReferTarget("sip:carol@chicago.example.com", "BYE", "Carol")
    assert parse_refer_to(["sip:carol@example.net"]).method == "INVITE"


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ([], 400),
        (["<sip:a@example.net>", "<sip:b@example.net>"], 400),
        (["<not a uri"], 400),
        (["<https://example.net/x>"], 416),
        (["<sip:bob@example.net;method=REFER?Refer-To=sip:x%40y>"], 403),
        (["<sip:bob@example.net?Replaces=abc>"], 403),
        (["<sip:bob@example.net;method=SUBSCRIBE>"], 403),
        (["<sip:example.net>"], 400),
    ],
)
def test_refer_to_refusals(values: list[str], status: int) -> None:
    """Zero or several Refer-To are 400 (RFC 3515 §2.4.1), non-SIP 416, unsupported 403."""
    with pytest.raises(ReferRefused) as info:
        parse_refer_to(values)
    assert info.value.sip_status == status


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_refer_to_raises_only_refer_refused(text: str) -> None:
    """Any Refer-To text parses or raises ReferRefused, nothing else."""
    with contextlib.suppress(ReferRefused):
        parse_refer_to([text])


def test_allowed_participant_invites() -> None:
    """A participant the policy lets invite gets an InviteMember (RFC 4579 §5.5)."""
    action = decide_refer(ROOM, referrer="sip:alice@example.net", target=CAROL,
                          referrer_is_participant=True, target_is_participant=False)  # fmt: skip
    assert action == InviteMember(CAROL, "sip:alice@example.net")


def test_participant_not_allowed_to_invite_gets_403() -> None:
    """A participant outside may_invite and the moderators is refused with 403."""
    with pytest.raises(ReferRefused) as info:
        decide_refer(ROOM, referrer="sip:bob@example.net", target=CAROL,
                     referrer_is_participant=True, target_is_participant=False)  # fmt: skip
    assert info.value.sip_status == 403


def test_outsider_and_denied_target_get_403() -> None:
    """A non-participant may not invite; a denied target is never invited."""
    for referrer, target, participant in [
        ("sip:alice@example.net", CAROL, False),
        ("sip:alice@example.net", ReferTarget("sip:mallory@example.net"), True),
    ]:
        with pytest.raises(ReferRefused) as info:
            decide_refer(
                ROOM,
                referrer=referrer,
                target=target,
                referrer_is_participant=participant,
                target_is_participant=False,
            )
        assert info.value.sip_status == 403


def test_removal_only_by_moderators_and_only_of_participants() -> None:
    """method=BYE: moderators only (403), the target must be in the room (404)."""
    bye = ReferTarget("sip:carol@example.net", "BYE")
    action = decide_refer(ROOM, referrer="sip:mod@example.net", target=bye,
                          referrer_is_participant=False, target_is_participant=True)  # fmt: skip
    assert isinstance(action, RemoveMember)
    with pytest.raises(ReferRefused) as not_mod:
        decide_refer(ROOM, referrer="sip:alice@example.net", target=bye,
                     referrer_is_participant=True, target_is_participant=True)  # fmt: skip
    assert not_mod.value.sip_status == 403
    with pytest.raises(ReferRefused) as absent:
        decide_refer(ROOM, referrer="sip:mod@example.net", target=bye,
                     referrer_is_participant=True, target_is_participant=False)  # fmt: skip
    assert absent.value.sip_status == 404


def test_moderator_may_invite_without_being_in_the_room() -> None:
    """Moderators may invite (policies.may_invite) even from outside the room."""
    action = decide_refer(ROOM, referrer="sip:mod@example.net", target=CAROL,
                          referrer_is_participant=False, target_is_participant=False)  # fmt: skip
    assert isinstance(action, InviteMember)


def test_refer_notify_progress_and_final() -> None:
    """Pending NOTIFYs are active with 1xx sipfrag; the final one terminates with
    reason noresource (RFC 3515 §2.4.7); Event carries id=CSeq (§2.4.6)."""
    trying = refer_notify(100, "Trying", cseq=7, expires=60)
    assert (trying.event, trying.subscription_state) == ("refer;id=7", "active;expires=60")
    assert trying.body == b"SIP/2.0 100 Trying\r\n" and trying.content_type == SIPFRAG
    assert not trying.final
    done = refer_notify(486, "Busy Here", cseq=7)
    assert done.final and done.subscription_state == "terminated;reason=noresource"
    assert done.body == b"SIP/2.0 486 Busy Here\r\n"
    assert ("Event", "refer;id=7") in done.headers()


def test_sipfrag_is_one_clean_status_line() -> None:
    """Control characters never reach the sipfrag; statuses are 100..699."""
    assert sipfrag(200, "OK\r\nX-Evil: 1") == b"SIP/2.0 200 OK??X-Evil: 1\r\n"
    with pytest.raises(ValueError, match=r"100\.\.699"):
        sipfrag(99, "x")
