"""RFC 7701 switch decisions: fan-out, From/To checks, private messages, nicknames."""

from __future__ import annotations

import pytest

from focus.msrp import (
    ChatRoom,
    CpimAddress,
    CpimMessage,
    Delivery,
    FrameParser,
    MsrpError,
    MsrpForbidden,
    MsrpLimitExceeded,
    MsrpNicknameInUse,
    MsrpNicknameMalformed,
    MsrpParseError,
    MsrpPrivateMessagesUnsupported,
    MsrpRecipientNotFound,
    MsrpUnsupportedMediaType,
    Participant,
    Request,
    decide_nickname,
    nickname_key,
    parse_use_nickname,
    report_wrapper,
    route_message,
    same_uri,
)

from . import examples as ex

ROOM = ChatRoom(uri="sip:chatroom22@chat.example.com")
ANY = ("*",)
ALICE = Participant(
    "alice-leg", ("sip:alice@atlanta.example.com",), accept_wrapped_types=ANY, private_messages=True
)
BOB = Participant(
    "bob-leg", ("sip:bob@example.com",), accept_wrapped_types=ANY, private_messages=True
)
BOB2 = Participant(
    "bob-leg-2", ("sip:bob@example.com",), accept_wrapped_types=ANY, private_messages=True
)
CHARLIE = Participant("charlie-leg", ("sip:charlie@example.com",), accept_wrapped_types=ANY)
ROSTER = (ALICE, BOB, CHARLIE)


def body_of(frame: bytes) -> bytes:
    (request,) = FrameParser().feed(frame)
    assert isinstance(request, Request) and request.body is not None
    return request.body


def cpim(
    to: list[str], from_: str = "sip:alice@atlanta.example.com", inner: str = "text/plain"
) -> bytes:
    return CpimMessage.build(
        from_=CpimAddress(from_),
        to=[CpimAddress(uri) for uri in to],
        content_type=inner,
        content=b"Hello",
    ).encode()


def test_rfc7701_regular_message_fans_out_unchanged() -> None:
    """RFC 7701 §9.3: Alice's message goes to Bob and Charlie, CPIM bytes untouched."""
    body = body_of(ex.ROOM_F1)
    route = route_message(ROOM, ALICE, ROSTER, "message/cpim", body)
    assert not route.private
    assert route.deliveries == (
        Delivery("bob-leg", "message/cpim", body),
        Delivery("charlie-leg", "message/cpim", body),
    )
    # The copy Bob receives in F3 carries exactly the body Alice sent in F1.
    assert body_of(ex.ROOM_F3) == body


def test_everyone_but_the_sending_session() -> None:
    """A user's other session gets the message; the sending session does not (§6.1)."""
    alice2 = Participant("alice-leg-2", ALICE.uris, accept_wrapped_types=ANY)
    route = route_message(ROOM, ALICE, (*ROSTER, alice2), "message/cpim", cpim([ROOM.uri]))
    assert [d.key for d in route.deliveries] == ["bob-leg", "charlie-leg", "alice-leg-2"]


def test_accept_wrapped_types_respected() -> None:
    """Recipients whose accept-wrapped-types exclude the wrapped type are skipped (§6.1)."""
    picky = Participant("picky", ("sip:p@x",), accept_wrapped_types=("text/plain",))
    open_ = Participant(
        "open", ("sip:o@x",), accept_types=("message/cpim", "image/*"), accept_wrapped_types=()
    )
    route = route_message(
        ROOM, ALICE, (ALICE, picky, open_), "message/cpim", cpim([ROOM.uri], inner="image/png")
    )
    assert [d.key for d in route.deliveries] == ["open"] and route.skipped == ("picky",)


def test_legacy_participant_gets_unwrapped_content() -> None:
    """A participant without Message/CPIM gets the inner content if it accepts its type."""
    legacy = Participant("legacy", ("sip:l@x",), accept_types=("text/plain",))
    no_way = Participant("noway", ("sip:n@x",), accept_types=("image/png",))
    route = route_message(ROOM, ALICE, (ALICE, legacy, no_way), "message/cpim", cpim([ROOM.uri]))
    assert route.deliveries == (Delivery("legacy", "text/plain", b"Hello", unwrapped=True),)
    assert route.skipped == ("noway",)


def test_non_cpim_is_415() -> None:
    """A SEND that is not Message/CPIM is rejected with 415 (§6.3)."""
    with pytest.raises(MsrpUnsupportedMediaType) as info:
        route_message(ROOM, ALICE, ROSTER, "text/plain", b"hi")
    assert info.value.status == 415


def test_from_must_be_the_sender() -> None:
    """A CPIM From that is not the sender's URI is rejected with 403 (§6.3)."""
    with pytest.raises(MsrpForbidden) as info:
        route_message(
            ROOM, ALICE, ROSTER, "message/cpim", cpim([ROOM.uri], from_="sip:bob@example.com")
        )
    assert info.value.status == 403
    missing = b"To: <sip:chatroom22@chat.example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nx"
    with pytest.raises(MsrpForbidden):
        route_message(ROOM, ALICE, ROSTER, "message/cpim", missing)


def test_uri_comparison_is_case_insensitive_on_scheme_and_host() -> None:
    """From and To match with other letter case in scheme/host and extra parameters."""
    body = cpim(
        ["SIP:chatroom22@CHAT.example.com;transport=tcp"], from_="sip:alice@Atlanta.Example.com"
    )
    assert len(route_message(ROOM, ALICE, ROSTER, "Message/CPIM", body).deliveries) == 2
    assert not same_uri("sip:Alice@x", "sip:alice@x")
    assert not same_uri("sip:a@x:5060", "sip:a@x")


def test_more_than_one_to_is_403() -> None:
    """More than one CPIM To (or none) is rejected with 403 (§6.1, §6.2)."""
    with pytest.raises(MsrpForbidden):
        route_message(ROOM, ALICE, ROSTER, "message/cpim", cpim([ROOM.uri, "sip:bob@example.com"]))
    with pytest.raises(MsrpForbidden):
        route_message(ROOM, ALICE, ROSTER, "message/cpim", cpim([]))


def test_size_limit_413() -> None:
    """A message above the room's size limit is rejected with 413."""
    room = ChatRoom(uri=ROOM.uri, max_message_size=10)
    with pytest.raises(MsrpLimitExceeded):
        route_message(room, ALICE, ROSTER, "message/cpim", cpim([ROOM.uri]))


def test_malformed_cpim_is_400() -> None:
    """A body labelled Message/CPIM that does not parse gets 400."""
    with pytest.raises(MsrpParseError):
        route_message(ROOM, ALICE, ROSTER, "message/cpim", b"garbage")


def test_rfc7701_private_message() -> None:
    """RFC 7701 §9.4: a CPIM To naming Bob reaches only Bob's sessions."""
    alice = Participant("alice-leg", ("sip:alice@example.com",), private_messages=True)
    strict = Participant("strict", ("sip:bob@example.com",), private_messages=True)
    body = body_of(ex.PRIVATE_F1)
    route = route_message(ROOM, alice, (alice, BOB, BOB2, strict, CHARLIE), "message/cpim", body)
    assert route.private
    assert [d.key for d in route.deliveries] == ["bob-leg", "bob-leg-2"]
    # A session that listed no wrapped types cannot take CPIM-wrapped text/plain.
    assert route.skipped == ("strict",)
    assert all(d.body == body for d in route.deliveries)


def test_private_to_unknown_is_404() -> None:
    """A private message to a URI that is no participant gets 404 (§6.2)."""
    with pytest.raises(MsrpRecipientNotFound) as info:
        route_message(ROOM, ALICE, ROSTER, "message/cpim", cpim(["sip:nobody@example.com"]))
    assert info.value.status == 404


def test_private_to_incapable_is_428() -> None:
    """A recipient without private-message support gets nothing; the sender gets 428."""
    with pytest.raises(MsrpPrivateMessagesUnsupported) as info:
        route_message(ROOM, ALICE, ROSTER, "message/cpim", cpim(["sip:charlie@example.com"]))
    assert info.value.status == 428


def test_private_partial_support_skips_incapable_sessions() -> None:
    """Only the recipient's sessions that support private messages get a copy."""
    bob_old = Participant("bob-old", BOB.uris, accept_wrapped_types=ANY)
    route = route_message(
        ROOM, ALICE, (ALICE, BOB, bob_old), "message/cpim", cpim(["sip:bob@example.com"])
    )
    assert [d.key for d in route.deliveries] == ["bob-leg"] and route.skipped == ("bob-old",)


def test_private_disabled_room_is_403() -> None:
    """A room without private messages refuses them with 403."""
    room = ChatRoom(uri=ROOM.uri, private_messages=False)
    with pytest.raises(MsrpForbidden):
        route_message(room, ALICE, ROSTER, "message/cpim", cpim(["sip:bob@example.com"]))


def test_private_wrapped_type_refused_is_415() -> None:
    """A private message no session of the recipient can take gets 415."""
    bob = Participant(
        "bob-leg", BOB.uris, private_messages=True, accept_wrapped_types=("text/plain",)
    )
    with pytest.raises(MsrpUnsupportedMediaType):
        route_message(
            ROOM,
            ALICE,
            (ALICE, bob),
            "message/cpim",
            cpim(["sip:bob@example.com"], inner="image/png"),
        )


# -- nicknames -----------------------------------------------------------------------------


def test_rfc7701_nickname_flow() -> None:
    """RFC 7701 §9.2: "Alice the great" is taken (425), "Alice in Wonderland" is granted."""
    in_use = {nickname_key("Alice the great"): "sip:other@example.com"}
    (f1,) = FrameParser().feed(ex.NICK_F1)
    assert isinstance(f1, Request)
    with pytest.raises(MsrpNicknameInUse) as info:
        decide_nickname(ROOM, "sip:alice@example.com", f1.header("Use-Nickname"), in_use)
    assert info.value.status == 425
    (f3,) = FrameParser().feed(ex.NICK_F3)
    assert isinstance(f3, Request)
    decision = decide_nickname(ROOM, "sip:alice@example.com", f3.header("Use-Nickname"), in_use)
    assert decision.nickname == "Alice in Wonderland"
    assert decision.key == "alice in wonderland"


def test_nickname_comparison() -> None:
    """Nicknames compare case-insensitively, after NFC and space trimming (RFC 7700, simplified)."""
    assert nickname_key("  Alice   The\tGreat ") == nickname_key("alice the great")
    assert nickname_key("Caf\u00e9") == nickname_key("CAFE\u0301")
    assert nickname_key("BOY") != nickname_key("B0Y")


def test_same_user_may_reuse_own_nickname() -> None:
    """The owner of a nickname may take it again from another session (§7.1)."""
    in_use = {nickname_key("Al"): "sip:alice@example.com"}
    decision = decide_nickname(ROOM, "SIP:alice@EXAMPLE.com", '"AL"', in_use)
    assert decision.nickname == "AL"


def test_reserved_nickname_is_425() -> None:
    """Reserved words are refused with 425 (§7.1)."""
    room = ChatRoom(uri=ROOM.uri, reserved_nicknames=frozenset({"Admin"}))
    with pytest.raises(MsrpNicknameInUse):
        decide_nickname(room, "sip:a@x", '"ADMIN"', {})


def test_empty_nickname_removes() -> None:
    """An empty quoted string removes the nickname (§7.3)."""
    assert decide_nickname(ROOM, "sip:a@x", '""', {}).nickname is None


def test_nicknames_disabled_is_403() -> None:
    """A room without nicknames refuses NICKNAME with 403 (§7.1)."""
    with pytest.raises(MsrpForbidden):
        decide_nickname(ChatRoom(uri=ROOM.uri, nicknames=False), "sip:a@x", '"x"', {})


@pytest.mark.parametrize(
    "value",
    [
        None,
        "Alice",
        '"unterminated',
        '"bad \\x escape"',
        '"' + "a" * 1024 + '"',
        '"   "',
        '"\u0085"',
        '"a"b"',
    ],
)
def test_malformed_nickname_is_424(value: str | None) -> None:
    """Missing, unquoted, badly escaped, too long or invisible nicknames get 424 (§7.1)."""
    with pytest.raises(MsrpNicknameMalformed) as info:
        decide_nickname(ROOM, "sip:a@x", value, {})
    assert info.value.status == 424


def test_use_nickname_unescapes() -> None:
    """qd-esc sequences are undone; 1023 octets is the maximum."""
    assert parse_use_nickname(r'"say \"hi\" \\o/"') == 'say "hi" \\o/'
    assert len(parse_use_nickname('"' + "a" * 1023 + '"')) == 1023


def test_errors_are_one_family() -> None:
    """Every decision error is an MsrpError carrying its status."""
    for cls, status in [
        (MsrpForbidden, 403),
        (MsrpRecipientNotFound, 404),
        (MsrpLimitExceeded, 413),
        (MsrpUnsupportedMediaType, 415),
        (MsrpNicknameMalformed, 424),
        (MsrpNicknameInUse, 425),
        (MsrpPrivateMessagesUnsupported, 428),
    ]:
        error = cls("x")
        assert isinstance(error, MsrpError) and error.status == status
        assert not error.close_connection


def test_report_wrapper_copies_from_and_to() -> None:
    """A REPORT about a private message carries the original CPIM From and To (§6.2)."""
    original = CpimMessage.parse(body_of(ex.PRIVATE_F1))
    content_type, body = report_wrapper(original)
    wrapper = CpimMessage.parse(body)
    assert content_type == "message/cpim"
    assert wrapper.values("From") == original.values("From")
    assert wrapper.values("To") == original.values("To")
    assert wrapper.values("DateTime") == []
