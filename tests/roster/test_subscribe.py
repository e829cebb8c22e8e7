"""SUBSCRIBE/NOTIFY for the conference event package through focus.control (in memory)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from focus.roster import NAMESPACE

from ._core import ROOM, rig

NS = {"ci": NAMESPACE}
SUB = [("Event", "conference"), ("Accept", "application/conference-info+xml"),
       ("Expires", "600")]  # fmt: skip


def users(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)  # our own output
    return {u.get("entity") or "": u.get("state") or "" for u in root.iterfind(".//ci:user", NS)}


def test_a_subscription_sees_the_roster_change_on_join_and_leave() -> None:
    """A participant's SUBSCRIBE gets 200 and a full NOTIFY, then partial NOTIFYs when
    someone joins and leaves (RFC 4575 §4.4, RFC 6665 §4.2.1)."""
    core, _control = rig()
    core.join("sip:alice@example.net")
    core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=SUB)
    (ok,) = core.responses("SUBSCRIBE")
    assert ok.status == 200 and ok.headers.get("Expires") == "600"
    assert (ok.headers.get("Contact") or "").endswith(";isfocus")
    (first,) = core.requests("NOTIFY")
    assert first.headers.get("Event") == "conference"
    assert first.headers.get("Subscription-State") == "active;expires=600"
    assert first.headers.get("Content-Type") == "application/conference-info+xml"
    assert ET.fromstring(first.body).get("state") == "full"
    assert users(first.body) == {"sip:alice@example.net": "full"}
    bob = core.join("sip:bob@example.net")
    second = core.requests("NOTIFY")[1]
    assert ET.fromstring(second.body).get("state") == "partial"
    assert ET.fromstring(second.body).get("version") == "2"
    assert users(second.body) == {"sip:bob@example.net": "full"}
    assert second.call_id == first.call_id
    core.end_leg(bob, "bye")
    third = core.requests("NOTIFY")[2]
    assert users(third.body) == {"sip:bob@example.net": "deleted"}


def test_only_participants_and_watchers_may_subscribe() -> None:
    """A stranger gets 403; a policy watcher may subscribe without being in the room."""
    core, _control = rig()
    core.request("SUBSCRIBE", from_="sip:stranger@example.org", headers=SUB)
    core.request("SUBSCRIBE", from_="sip:watcher@example.org", headers=SUB)
    statuses = [r.status for r in core.responses("SUBSCRIBE")]
    assert statuses == [403, 200]


def test_bad_event_and_short_expiry_are_refused() -> None:
    """Another event package gets 489 with Allow-Events; Expires below the minimum 423."""
    core, _control = rig()
    core.join("sip:alice@example.net")
    core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=[("Event", "presence")])
    core.request("SUBSCRIBE", from_="sip:alice@example.net",
                 headers=[("Event", "conference"), ("Expires", "5")])  # fmt: skip
    bad, brief = core.responses("SUBSCRIBE")
    assert (bad.status, bad.headers.get("Allow-Events")) == (489, "conference")
    assert (brief.status, brief.headers.get("Min-Expires")) == (423, "60")
    assert core.requests("NOTIFY") == []


def test_expiry_ends_the_subscription_and_refresh_extends_it() -> None:
    """A refresh in the dialog moves the deadline; at expiry the NOTIFY says
    terminated;reason=timeout and a later refresh in that dialog gets 481."""
    core, _control = rig()
    core.join("sip:alice@example.net")
    call_id = core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=SUB)
    to_tag = core.responses("SUBSCRIBE")[0].to.tag
    core.answer_all("NOTIFY")
    core.pump(500.0)
    core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=SUB, call_id=call_id,
                 to_tag=to_tag)  # fmt: skip
    assert [r.status for r in core.responses("SUBSCRIBE")] == [200, 200]
    core.answer_all("NOTIFY")
    core.pump(599.0)
    assert all(n.headers.get("Subscription-State", "").startswith("active")
               for n in core.requests("NOTIFY"))  # fmt: skip
    core.pump(2.0)
    last = core.requests("NOTIFY")[-1]
    assert last.headers.get("Subscription-State") == "terminated;reason=timeout"
    core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=SUB, call_id=call_id,
                 to_tag=to_tag)  # fmt: skip
    assert core.responses("SUBSCRIBE")[-1].status == 481


def test_nickname_change_is_a_partial_notify() -> None:
    """A nickname change (RFC 7701 §7) is shown as the endpoint's display-text."""
    core, _control = rig()
    leg = core.join("sip:alice@example.net")
    core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=SUB)
    core.conference.participant(leg).nickname = "Ally"
    core.events.emit("nickname", leg_id=leg, room=ROOM, nickname="Ally")
    core.pump()
    note = core.requests("NOTIFY")[-1]
    assert b"<display-text>Ally</display-text>" in note.body.replace(b"ns0:", b"")
    assert users(note.body) == {"sip:alice@example.net": "partial"}


def test_a_notify_answered_481_ends_the_subscription() -> None:
    """RFC 6665 §4.2.2: a 481 to a NOTIFY removes the subscription."""
    core, control = rig()
    core.join("sip:alice@example.net")
    core.request("SUBSCRIBE", from_="sip:alice@example.net", headers=SUB)
    assert len(control.table) == 1
    core.answer_all("NOTIFY", 481)
    assert len(control.table) == 0
