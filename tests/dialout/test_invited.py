"""Admission of members the focus invited (Conference.admit(invited=True))."""

from __future__ import annotations

import pytest

from focus.conference import AdmissionRefused, Conference, Direction
from policies import parse_policy

ROOM = "sip:lobby@conf.example.net"
POLICY = f"""
[defaults]
allow = ["sip:alice@example.net"]
deny = ["sip:mallory@example.net"]
max_participants = 2

[[room]]
uri = "{ROOM}"
"""


def admit(conference: Conference, who: str, leg: str, *, invited: bool) -> None:
    conference.admit(request_uri=ROOM, caller=who, leg_id=leg, call_id=leg,
                     direction=Direction.DIAL_OUT, invited=invited)  # fmt: skip


def test_an_invited_member_needs_no_allow_entry_but_deny_and_size_still_apply() -> None:
    """Invited: not on allow is fine; deny is 403 and a full room 486; uninvited: 403."""
    conference = Conference(parse_policy(POLICY))
    with pytest.raises(AdmissionRefused) as uninvited:
        admit(conference, "sip:carol@example.net", "l1", invited=False)
    assert uninvited.value.sip_status == 403
    admit(conference, "sip:carol@example.net", "l1", invited=True)
    with pytest.raises(AdmissionRefused) as denied:
        admit(conference, "sip:mallory@example.net", "l2", invited=True)
    assert denied.value.sip_status == 403
    admit(conference, "sip:dave@example.net", "l3", invited=True)
    with pytest.raises(AdmissionRefused) as full:
        admit(conference, "sip:erin@example.net", "l4", invited=True)
    assert full.value.sip_status == 486
