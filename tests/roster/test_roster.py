"""RFC 4575 documents and RFC 6665 subscription state of :mod:`focus.roster`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.roster import (
    CONTENT_TYPE,
    NAMESPACE,
    EndpointStatus,
    JoiningMethod,
    RoomSnapshot,
    RosterMember,
    SubscribeRefused,
    SubscriptionSettings,
    SubscriptionTable,
    check_subscribe,
    deleted_document,
    full_document,
    partial_document,
)

ROOM = "sip:lobby@conf.example.net"
NS = {"ci": NAMESPACE}
ALICE = RosterMember("leg-a", "sip:alice@example.net", "sip:alice@192.0.2.1", "Alice")
BOB = RosterMember(
    "leg-b", "sip:bob@example.net", "sip:bob@192.0.2.2", None, joining=JoiningMethod.DIALED_OUT
)


def snap(*members: RosterMember, subject: str | None = "Lobby") -> RoomSnapshot:
    return RoomSnapshot(ROOM, subject, members)


def parse(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # our own output


def users(root: ET.Element) -> dict[str, ET.Element]:
    return {u.get("entity"): u for u in root.iterfind("ci:users/ci:user", NS)}


def test_full_document_lists_every_user_with_version_and_entity() -> None:
    """A full document carries entity, state=full, the version, the description and
    one user per identity with its endpoint status and joining method (RFC 4575 §5)."""
    root = parse(full_document(snap(ALICE, BOB), 7))
    assert root.tag == f"{{{NAMESPACE}}}conference-info"
    assert (root.get("entity"), root.get("state"), root.get("version")) == (ROOM, "full", "7")
    assert root.findtext("ci:conference-description/ci:subject", namespaces=NS) == "Lobby"
    assert root.findtext("ci:conference-state/ci:user-count", namespaces=NS) == "2"
    found = users(root)
    assert set(found) == {ALICE.user, BOB.user}
    bob_ep = found[BOB.user].find("ci:endpoint", NS)
    assert bob_ep is not None
    assert bob_ep.findtext("ci:joining-method", namespaces=NS) == "dialed-out"
    assert bob_ep.findtext("ci:status", namespaces=NS) == "connected"
    assert found[ALICE.user].findtext("ci:display-text", namespaces=NS) == "Alice"


def test_two_legs_of_one_user_are_two_endpoints_and_one_user_count() -> None:
    """A user joined from two agents is one <user> with two <endpoint>s (RFC 4575 §5.6.6)."""
    second = RosterMember("leg-a2", ALICE.user, "sip:alice@192.0.2.9")
    root = parse(full_document(snap(ALICE, second), 1))
    assert root.findtext("ci:conference-state/ci:user-count", namespaces=NS) == "1"
    assert len(users(root)[ALICE.user].findall("ci:endpoint", NS)) == 2


def test_partial_on_join_holds_only_the_new_user() -> None:
    """A join is a partial document with the new user in state full (RFC 4575 §4.4)."""
    root = parse(partial_document(snap(ALICE), snap(ALICE, BOB), 2) or b"")
    assert root.get("state") == "partial"
    assert root.find("ci:users", NS).get("state") == "partial"  # type: ignore[union-attr]
    found = users(root)
    assert list(found) == [BOB.user]
    assert found[BOB.user].get("state") == "full"


def test_partial_on_leave_marks_the_user_deleted_without_children() -> None:
    """A leave is a user with state=deleted and no children (RFC 4575 §4.4)."""
    root = parse(partial_document(snap(ALICE, BOB), snap(ALICE), 3) or b"")
    found = users(root)
    assert list(found) == [BOB.user]
    assert found[BOB.user].get("state") == "deleted"
    assert len(found[BOB.user]) == 0
    assert root.findtext("ci:conference-state/ci:user-count", namespaces=NS) == "1"


def test_partial_on_nickname_change_is_a_partial_user_with_the_endpoint() -> None:
    """A nickname change updates the endpoint's display-text in a partial user."""
    renamed = RosterMember(ALICE.leg_id, ALICE.user, ALICE.endpoint, "Ally")
    root = parse(partial_document(snap(ALICE, BOB), snap(renamed, BOB), 4) or b"")
    found = users(root)
    assert list(found) == [ALICE.user]
    assert found[ALICE.user].get("state") == "partial"
    endpoint = found[ALICE.user].find("ci:endpoint", NS)
    assert endpoint is not None
    assert endpoint.findtext("ci:display-text", namespaces=NS) == "Ally"
    assert root.find("ci:conference-state", NS) is None  # unchanged, not repeated


def test_partial_with_one_leg_leaving_deletes_only_that_endpoint() -> None:
    """When one of a user's two legs leaves, the endpoint is deleted, the user stays."""
    second = RosterMember("leg-a2", ALICE.user, "sip:alice@192.0.2.9")
    root = parse(partial_document(snap(ALICE, second), snap(ALICE), 5) or b"")
    user = users(root)[ALICE.user]
    assert user.get("state") == "partial"
    (endpoint,) = user.findall("ci:endpoint", NS)
    assert (endpoint.get("entity"), endpoint.get("state")) == (second.endpoint, "deleted")


def test_no_change_gives_no_partial_document() -> None:
    """Nothing shown changed: no document (and no NOTIFY)."""
    assert partial_document(snap(ALICE), snap(ALICE), 2) is None


def test_deleted_document_and_version_range() -> None:
    """The conference ending is state=deleted; versions are 32-bit (RFC 4575 §5.2)."""
    root = parse(deleted_document(ROOM, 9))
    assert (root.get("state"), root.get("version")) == ("deleted", "9")
    with pytest.raises(Exception, match="32-bit"):
        full_document(snap(), 2**32)


@settings(max_examples=100)
@given(st.text(max_size=40))
def test_any_display_name_gives_well_formed_xml(name: str) -> None:
    """A hostile display name (controls, markup) never makes the document unparsable."""
    member = RosterMember("leg", "sip:x@example.net", "sip:x@h", name)
    root = parse(full_document(snap(member), 1))
    assert users(root)["sip:x@example.net"].get("state") == "full"


# -- RFC 6665 ------------------------------------------------------------------------


def test_check_subscribe_answers_per_rfc6665() -> None:
    """Other packages get 489 with Allow-Events, a wrong Accept 406, a short Expires 423
    with Min-Expires; a long one is shortened; no Expires gives the default."""
    s = SubscriptionSettings(min_expires=60, max_expires=3600, default_expires=600)
    with pytest.raises(SubscribeRefused) as bad_event:
        check_subscribe(event="presence", accept=None, expires=None, settings=s)
    assert bad_event.value.sip_status == 489
    assert ("Allow-Events", "conference") in bad_event.value.headers
    with pytest.raises(SubscribeRefused) as bad_accept:
        check_subscribe(event="conference", accept="text/plain", expires=None, settings=s)
    assert bad_accept.value.sip_status == 406
    with pytest.raises(SubscribeRefused) as brief:
        check_subscribe(event="conference", accept=CONTENT_TYPE, expires="10", settings=s)
    assert (brief.value.sip_status, brief.value.headers) == (423, (("Min-Expires", "60"),))
    with pytest.raises(SubscribeRefused) as malformed:
        check_subscribe(event="conference", accept=None, expires="soon", settings=s)
    assert malformed.value.sip_status == 400
    assert check_subscribe(event="conference;id=1", accept=None, expires="99999", settings=s) == (
        3600
    )
    assert check_subscribe(event="Conference", accept=None, expires=None, settings=s) == 600
    assert check_subscribe(event="conference", accept=None, expires="0", settings=s) == 0


def test_subscribe_gets_full_state_then_partials_with_increasing_versions() -> None:
    """The first NOTIFY is full (version 1), each change a partial with version + 1."""
    table = SubscriptionTable()
    first = table.subscribe("d1", room=ROOM, subscriber=ALICE.user, expires=600,
                            snapshot=snap(ALICE), now=100.0)  # fmt: skip
    assert first.subscription_state == "active;expires=600"
    assert parse(first.body).get("state") == "full"
    (joined,) = table.changed(snap(ALICE, BOB), now=160.0)
    root = parse(joined.body)
    assert (root.get("state"), root.get("version")) == ("partial", "2")
    assert joined.subscription_state == "active;expires=540"
    (left,) = table.changed(snap(ALICE), now=170.0)
    assert parse(left.body).get("version") == "3"
    assert users(parse(left.body))[BOB.user].get("state") == "deleted"
    assert table.changed(snap(ALICE), now=171.0) == []


def test_changes_reach_only_subscribers_of_that_room() -> None:
    """A change in one room notifies that room's subscriptions only."""
    table = SubscriptionTable()
    table.subscribe("d1", room=ROOM, subscriber="a", expires=600, snapshot=snap(), now=0.0)
    other = RoomSnapshot("sip:other@conf.example.net")
    table.subscribe("d2", room=other.entity, subscriber="b", expires=600, snapshot=other, now=0.0)
    notes = table.changed(snap(ALICE), now=1.0)
    assert [n.key for n in notes] == ["d1"]


def test_expiry_is_a_deadline_that_terminates_with_timeout() -> None:
    """Subscriptions end at their deadline with terminated;reason=timeout (RFC 6665)."""
    table = SubscriptionTable()
    table.subscribe("d1", room=ROOM, subscriber="a", expires=600, snapshot=snap(), now=0.0)
    table.subscribe("d2", room=ROOM, subscriber="b", expires=900, snapshot=snap(), now=0.0)
    assert table.next_deadline() == 600.0
    assert table.expire(599.0) == []
    (ended,) = table.expire(600.0)
    assert (ended.key, ended.subscription_state) == ("d1", "terminated;reason=timeout")
    assert table.next_deadline() == 900.0
    # A refresh moves the deadline.
    table.subscribe("d2", room=ROOM, subscriber="b", expires=600, snapshot=snap(), now=800.0)
    assert table.next_deadline() == 1400.0


def test_expires_zero_is_a_fetch_or_unsubscribe() -> None:
    """Expires: 0 gets one NOTIFY with full state and terminated, and nothing is kept."""
    table = SubscriptionTable()
    note = table.subscribe("d1", room=ROOM, subscriber="a", expires=0, snapshot=snap(ALICE),
                           now=0.0)  # fmt: skip
    assert note.terminated and parse(note.body).get("state") == "full"
    assert len(table) == 0
    table.subscribe("d2", room=ROOM, subscriber="a", expires=60, snapshot=snap(), now=0.0)
    bye = table.subscribe("d2", room=ROOM, subscriber="a", expires=0, snapshot=snap(), now=5.0)
    assert bye.subscription_state == "terminated;reason=timeout" and len(table) == 0


def test_table_is_bounded_and_room_end_deletes() -> None:
    """Beyond max_subscriptions a SUBSCRIBE gets 503; a room ending sends deleted."""
    table = SubscriptionTable(SubscriptionSettings(max_subscriptions=1))
    table.subscribe("d1", room=ROOM, subscriber="a", expires=60, snapshot=snap(), now=0.0)
    with pytest.raises(SubscribeRefused) as full:
        table.subscribe("d2", room=ROOM, subscriber="b", expires=60, snapshot=snap(), now=0.0)
    assert full.value.sip_status == 503
    (note,) = table.terminate_room(ROOM)
    assert note.subscription_state == "terminated;reason=noresource"
    assert parse(note.body).get("state") == "deleted"
    assert table.terminate("d1") is None


def test_endpoint_status_values_are_rfc4575() -> None:
    """The statuses are RFC 4575 §5.7.3 tokens."""
    assert {s.value for s in EndpointStatus} <= {
        "connected", "disconnected", "on-hold", "muted-via-focus", "pending", "alerting",
        "dialing-in", "dialing-out", "disconnecting",
    }  # fmt: skip


# -- RFC 4575 §4.6: a subscriber rebuilding the state from full + partial documents ----


def _endpoint_view(endpoint: ET.Element) -> tuple[str | None, str | None, str | None]:
    return (
        endpoint.findtext("ci:display-text", namespaces=NS),
        endpoint.findtext("ci:status", namespaces=NS),
        endpoint.findtext("ci:joining-method", namespaces=NS),
    )


def _apply(state: dict[str, dict[str, Any]], body: bytes) -> None:
    """RFC 4575 §4.6 for the elements the focus sends (users, endpoints, user-count)."""
    root = parse(body)
    if root.get("state") == "full":
        state.clear()
    count = root.findtext("ci:conference-state/ci:user-count", namespaces=NS)
    if count is not None:
        state["#count"] = {"n": count}
    for user in root.iterfind("ci:users/ci:user", NS):
        entity = user.get("entity") or ""
        if user.get("state") == "deleted":
            state.pop(entity, None)
            continue
        if user.get("state", "full") == "full":
            state[entity] = {}
        target = state.setdefault(entity, {})
        for endpoint in user.iterfind("ci:endpoint", NS):
            key = endpoint.get("entity") or ""
            if endpoint.get("state") == "deleted":
                target.pop(key, None)
            else:
                target[key] = _endpoint_view(endpoint)


_POOL = [
    RosterMember(f"leg-{u}{e}", f"sip:{u}@example.net", f"sip:{u}@10.0.0.{e}", name)
    for u in ("a", "b", "c")
    for e in (1, 2)
    for name in (None, "N")
]


@settings(max_examples=150)
@given(st.lists(st.lists(st.sampled_from(_POOL), max_size=4, unique_by=lambda m: m.endpoint),
                min_size=1, max_size=6))  # fmt: skip
def test_partial_documents_rebuild_the_full_state(snapshots: list[list[RosterMember]]) -> None:
    """Applying the first full document and then every partial one (RFC 4575 §4.6)
    gives the same state as a full document of the last snapshot."""
    state: dict[str, dict[str, Any]] = {}
    table = SubscriptionTable()
    first = snap(*snapshots[0])
    _apply(state, table.subscribe("d", room=ROOM, subscriber="x", expires=600,
                                  snapshot=first, now=0.0).body)  # fmt: skip
    for members in snapshots[1:]:
        for note in table.changed(snap(*members), now=1.0):
            _apply(state, note.body)
    expected: dict[str, dict[str, Any]] = {}
    _apply(expected, full_document(snap(*snapshots[-1]), 1))
    assert state == expected
