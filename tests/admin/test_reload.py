"""Live policy reload through focus.control: no leg is dropped that the new policy still
admits; a broken file is refused with its file:line error and the old policy stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.admin import AdminError
from focus.metrics import FocusMetrics
from tests.roster._core import POLICY, ROOM, rig

SUB = [("Event", "conference"), ("Expires", "600")]


def test_reload_with_a_broken_file_keeps_the_old_policy(tmp_path: Path) -> None:
    """A file with an error is refused (422, file:line) and nothing changes."""
    core, control = rig()
    control.metrics = FocusMetrics()
    core.join("sip:alice@example.net")
    before = control.policy
    broken = tmp_path / "policy.toml"
    broken.write_text(POLICY + '\n[[room]]\nuri = "not a uri"\n')
    control.policy_file = broken
    with pytest.raises(AdminError) as info:
        control.reload_file()
    assert info.value.http_status == 422
    bad_line = broken.read_text().splitlines().index('uri = "not a uri"') + 1
    assert info.value.reason.startswith(f"{broken}:{bad_line}")
    assert control.policy is before
    assert core.ended == [] and len(core.conference.participants) == 1
    assert b'focus_policy_reloads_total{result="refused"} 1.0' in control.metrics.exposition()


def test_reload_removing_a_member_ends_only_that_members_leg(tmp_path: Path) -> None:
    """Bob is no longer allowed: his leg alone ends (BYE with a reason); Alice stays."""
    core, control = rig()
    core.join("sip:alice@example.net")
    bob = core.join("sip:bob@example.net")
    new = tmp_path / "policy.toml"
    new.write_text(
        POLICY.replace(
            'allow = ["sip:*@example.net", "sip:carol@127.0.0.1"]',
            'allow = ["sip:alice@example.net"]',
        )
    )
    control.policy_file = new
    result = control.reload_file()
    assert result.removed == (bob,)
    assert core.ended == [(bob, "no longer allowed by the room policy")]
    assert core.causes == [403]  # BYE with Reason: SIP;cause=403
    assert [p.uri for p in core.conference.participants] == ["sip:alice@example.net"]
    assert control.policy.source == str(new)


def test_reload_takes_watching_away_with_reason_rejected(tmp_path: Path) -> None:
    """A watcher the new policy drops gets terminated;reason=rejected (RFC 6665)."""
    core, control = rig()
    core.request("SUBSCRIBE", from_="sip:watcher@example.org", headers=SUB)
    assert core.responses("SUBSCRIBE")[0].status == 200
    new = tmp_path / "policy.toml"
    new.write_text(POLICY.replace('watchers = ["sip:watcher@example.org"]', ""))
    control.policy_file = new
    control.reload_file()
    core.pump()
    last = core.requests("NOTIFY")[-1]
    assert last.headers.get("Subscription-State") == "terminated;reason=rejected"
    assert len(control.table) == 0


def test_admin_backend_lists_removes_and_refuses_unknown_rooms() -> None:
    """rooms() shows participants; remove() by URI; dial_out() to an unknown room 404."""
    core, control = rig()
    leg = core.join("sip:alice@example.net")
    (room,) = control.rooms()
    assert room.uri == ROOM and room.participants[0].leg_id == leg
    assert control.remove(ROOM, "sip:alice@example.net", "operator") == 1
    assert core.ended == [(leg, "operator")]
    with pytest.raises(AdminError) as info:
        control.dial_out("sip:nowhere@conf.example.net", "sip:carol@example.net")
    assert info.value.http_status == 404
    control.drain()
    with pytest.raises(AdminError) as draining:
        control.dial_out(ROOM, "sip:carol@example.net")
    assert draining.value.http_status == 503
