"""Policy evaluation: rooms for Request-URIs, joins, invites, moderators, watchers, limits."""

from __future__ import annotations

import tomllib

import attrs
import pytest

from policies import (
    AdhocRule,
    Allowed,
    Identity,
    Limits,
    Policy,
    PolicyError,
    RateLimit,
    Refused,
    RetryPolicy,
    Room,
    RoomSettings,
    UriPattern,
    dial_out_members,
    example_path,
    find_room,
    is_moderator,
    limits,
    load_policy,
    may_invite,
    may_join,
    may_watch,
    parse_policy,
)

POLICY = parse_policy(
    """\
[defaults]
max_participants = 3
allow = ["sip:*@example.net"]

[[room]]
uri = "sip:lobby@conf.example.net"
deny = ["sip:mallory@example.net"]
moderators = ["sip:mod@example.org"]
may_invite = ["sip:alice@example.net"]
watchers = ["sip:watch@example.com"]

[[room.dial_out]]
uri = "sip:dave@elsewhere.example"

[[room]]
uri = "sip:closed@conf.example.net"
enabled = false

[[room]]
uri = "sip:open@conf.example.net"
allow = ["*"]

[[adhoc]]
pattern = "sip:*@adhoc.example.net"
creators = ["sip:boss@example.net"]
subject = "ad hoc"

[[adhoc]]
pattern = "sip:*@adhoc.example.net"
creators = ["*"]
""",
    "eval.toml",
)


def room(uri: str) -> Room:
    found = find_room(POLICY, uri)
    assert found is not None
    return found


def test_static_rooms_are_found_by_normalized_uri() -> None:
    """Scheme and host case and URI parameters do not matter when finding a room."""
    found = find_room(POLICY, "SIP:lobby@CONF.example.net;transport=tcp")
    assert found is not None
    assert str(found.uri) == "sip:lobby@conf.example.net"
    assert found.adhoc is None


def test_unknown_request_uri_finds_no_room() -> None:
    """A Request-URI matching no room and no ad-hoc rule gives None (answer 404)."""
    assert find_room(POLICY, "sip:nothing@conf.example.net") is None
    assert find_room(POLICY, "sip:Lobby@conf.example.net") is None  # user part is exact
    assert find_room(POLICY, "not a uri") is None


def test_adhoc_rooms_come_from_the_first_matching_rule() -> None:
    """Static rooms are looked up first, then ad-hoc rules in file order."""
    found = room("sip:team42@adhoc.example.net;x=y")
    assert str(found.uri) == "sip:team42@adhoc.example.net"
    assert found.adhoc is POLICY.adhoc[0]
    assert found.subject == "ad hoc"


@pytest.mark.parametrize(
    ("caller", "count", "decision"),
    [
        ("sip:alice@example.net", 0, Allowed()),
        ("<sip:alice@EXAMPLE.net;tag=x>", 2, Allowed()),
        ("sip:alice@example.net", 3, Refused(486, "room is full")),
        ("sip:mallory@example.net", 0, Refused(403, "denied by room policy")),
        ("sip:eve@example.org", 0, Refused(403, "not on the room's allow list")),
        ("sip:mod@example.org", 0, Allowed()),
        ("sip:dave@elsewhere.example", 0, Allowed()),
        ("garbage", 0, Refused(403, "caller identity is not a URI")),
    ],
)
def test_may_join_static_room(caller: str, count: int, decision: object) -> None:
    """Deny wins; allow, moderators and dial-out members may join; a full room is 486."""
    assert may_join(room("sip:lobby@conf.example.net"), caller, count) == decision


def test_closed_room_refuses_with_480() -> None:
    """enabled = false keeps the room but refuses joins with 480 Temporarily Unavailable."""
    assert may_join(room("sip:closed@conf.example.net"), "sip:alice@example.net", 0) == Refused(
        480, "room is closed"
    )


def test_star_allows_anyone_including_other_schemes() -> None:
    """allow = ["*"] admits any identity, tel: URIs too."""
    open_room = room("sip:open@conf.example.net")
    assert may_join(open_room, "tel:+15551234", 0) == Allowed()


def test_adhoc_creation_needs_a_creator_then_allow_applies() -> None:
    """The first caller of an ad-hoc room must match creators; later callers the allow list."""
    adhoc = room("sip:x@adhoc.example.net")
    assert may_join(adhoc, "sip:alice@example.net", 0) == Refused(
        403, "not allowed to create this ad-hoc room"
    )
    assert may_join(adhoc, "sip:boss@example.net", 0) == Allowed()
    assert may_join(adhoc, "sip:alice@example.net", 1) == Allowed()
    assert may_join(adhoc, "sip:eve@example.org", 1) == Refused(403, "not on the room's allow list")


def test_invite_moderate_and_watch() -> None:
    """Moderators may invite and remove; may_invite patterns may invite; watchers,
    participants and moderators may watch; denied identities never watch."""
    lobby = room("sip:lobby@conf.example.net")
    assert is_moderator(lobby, "sip:mod@example.org")
    assert not is_moderator(lobby, "sip:alice@example.net")
    assert not is_moderator(lobby, "garbage")
    assert may_invite(lobby, "sip:mod@example.org")
    assert may_invite(lobby, "sip:alice@example.net")
    assert not may_invite(lobby, "sip:bob@example.net")
    assert not may_invite(lobby, "garbage")
    assert may_watch(lobby, "sip:watch@example.com")
    assert may_watch(lobby, "sip:bob@example.net", is_participant=True)
    assert may_watch(lobby, "sip:mod@example.org")
    assert not may_watch(lobby, "sip:bob@example.net")
    assert not may_watch(lobby, "sip:mallory@example.net", is_participant=True)


def test_dial_out_members_and_limits() -> None:
    """dial_out_members lists the configured members; limits gathers the room's limits."""
    lobby = room("sip:lobby@conf.example.net")
    assert [str(m.uri) for m in dial_out_members(lobby)] == ["sip:dave@elsewhere.example"]
    assert limits(lobby) == Limits(3, 65536, RateLimit(5.0, 20), 10.0)


# -- the shipped examples ---------------------------------------------------------------


def test_demo_example() -> None:
    """examples/demo.toml: the lobby admits alice, bob and carol; the ad-hoc rule lets any
    example.net user create rooms under adhoc.conf.example.net."""
    policy = load_policy(example_path("demo.toml"))
    lobby = find_room(policy, "sip:lobby@conf.example.net")
    assert lobby is not None
    for who in ("alice", "bob", "carol"):
        assert may_join(lobby, f"sip:{who}@example.net", 0) == Allowed()
    assert isinstance(may_join(lobby, "sip:mallory@example.org", 0), Refused)
    assert is_moderator(lobby, "sip:alice@example.net")
    assert lobby.subject == "Welcome to the example.net lobby"
    adhoc = find_room(policy, "sip:standup@adhoc.conf.example.net")
    assert adhoc is not None
    assert may_join(adhoc, "sip:dave@example.net", 0) == Allowed()
    assert adhoc.settings.max_participants == 10


def test_invite_only_example() -> None:
    """examples/invite-only.toml: no dial-in except the chair; three dial-out members with
    per-member retry overrides; the secretary may invite; mallory stays out."""
    policy = load_policy(example_path("invite-only.toml"))
    board = find_room(policy, "sip:board@conf.example.net")
    assert board is not None
    assert isinstance(may_join(board, "sip:guest@example.net", 0), Refused)
    assert may_join(board, "sip:chair@example.net", 0) == Allowed()
    assert may_join(board, "sip:alice@example.net", 1) == Allowed()
    members = dial_out_members(board)
    assert [str(m.uri) for m in members] == [
        "sip:alice@example.net",
        "sip:bob@example.net",
        "sip:carol@partner.example.org",
    ]
    assert members[0].retry.delay_before(3) == 40.0
    assert members[1].retry.answer_timeout == 90.0
    assert members[2].retry.attempts == 1
    assert may_invite(board, "sip:secretary@example.net")
    assert not is_moderator(board, "sip:secretary@example.net")
    assert may_watch(board, "sip:auditor@example.net")
    assert may_join(board, "sip:mallory@example.net", 0) == Refused(403, "denied by room policy")
    assert board.settings.private_messages is False


def test_legacy_example() -> None:
    """examples/legacy.toml: no CPIM requirement, no RFC 7701 extras, small slow messages."""
    policy = load_policy(example_path("legacy.toml"))
    legacy = find_room(policy, "sip:legacy@conf.example.net")
    assert legacy is not None
    s = legacy.settings
    assert (s.require_cpim, s.nicknames, s.private_messages) == (False, False, False)
    assert limits(legacy) == Limits(50, 4096, RateLimit(1.0, 5), 20.0)
    assert may_join(legacy, "sip:anyone@example.org", 0) == Allowed()
    assert isinstance(may_join(legacy, "sip:spammer@example.org", 0), Refused)


def test_adhoc_creator_may_rejoin_without_being_on_the_allow_list() -> None:
    """A creator of an ad-hoc room counts as allowed after the room exists, too."""
    policy = parse_policy(
        "[[adhoc]]\npattern = 'sip:*@adhoc.example.net'\ncreators = ['sip:boss@example.org']\n"
    )
    adhoc = find_room(policy, "sip:x@adhoc.example.net")
    assert adhoc is not None
    assert may_join(adhoc, "sip:boss@example.org", 2) == Allowed()
    assert isinstance(may_join(adhoc, "sip:other@example.org", 2), Refused)


def test_policies_built_in_code_are_validated() -> None:
    """The model refuses duplicate rooms, non-wildcard ad-hoc patterns and bad patterns."""
    lobby = Room(Identity.parse("sip:lobby@x"))
    with pytest.raises(ValueError, match="twice"):
        Policy(rooms=(lobby, lobby))
    with pytest.raises(ValueError, match=r"sip:\*@host"):
        AdhocRule(UriPattern.parse("sip:room@x"))
    with pytest.raises(PolicyError):
        RoomSettings(allow=("sip:bad*@x",))
    assert RoomSettings(allow=("*",)).allow == (UriPattern.parse("*"),)


def test_demo_example_documents_every_setting() -> None:
    """examples/demo.toml spells out every room setting, so operators see them all."""
    document = tomllib.loads(example_path("demo.toml").read_text())
    defaults = document["defaults"]
    assert set(defaults) == {f.name for f in attrs.fields(RoomSettings)}
    assert set(defaults["retry"]) == {f.name for f in attrs.fields(RetryPolicy)}
    assert set(defaults["rate_limit"]) == {f.name for f in attrs.fields(RateLimit)}
    # and the values written there are the built-in defaults
    assert load_policy(example_path("demo.toml")).defaults == RoomSettings()
