"""MSRP media lines and attributes: RFC 4975 §8, RFC 4145/6135, RFC 4567, RFC 7701, RFC 6714."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sdp import (
    Chatroom,
    Connection,
    KeyMgmt,
    MsrpUri,
    SdpError,
    SdpNegotiationError,
    SessionDescription,
    SetupRole,
    accept_types,
    accept_wrapped_types,
    accepts_media_type,
    address_matches,
    chatroom,
    effective_key_mgmt,
    effective_setup,
    has_msrp_cema,
    is_msrp,
    key_mgmt_protocol_list,
    max_size,
    parse_path,
    path,
)

# RFC 4975 §8.7, Figures 9 and 10.
RFC4975_FIGURE_9 = (
    "v=0\r\n"
    "o=usera 2890844526 2890844527 IN IP4 alice.example.com\r\n"
    "s= -\r\n"
    "c=IN IP4 alice.example.com\r\n"
    "t=0 0\r\n"
    "m=message 7394 TCP/MSRP *\r\n"
    "a=accept-types:message/cpim text/plain text/html\r\n"
    "a=path:msrp://alice.example.com:7394/2s93i93idj;tcp\r\n"
)
RFC4975_FIGURE_10 = (
    "v=0\r\n"
    "o=userb 2890844530 2890844532 IN IP4 bob.example.com\r\n"
    "s= -\r\n"
    "c=IN IP4 bob.example.com\r\n"
    "t=0 0\r\n"
    "m=message 8493 TCP/MSRP *\r\n"
    "a=accept-types:message/cpim text/plain\r\n"
    "a=path:msrp://bob.example.com:8493/si438dsaodes;tcp\r\n"
)
# RFC 7701 §9.1, F2 (the focus's answer; no t= line in the RFC).
RFC7701_F2 = (
    "v=0\r\n"
    "o=chat 2890844527 2890844527 IN IP4 chat.example.com\r\n"
    "s=-\r\n"
    "c=IN IP4 chat.example.com\r\n"
    "m=message 12763 TCP/MSRP *\r\n"
    "a=accept-types:message/cpim\r\n"
    "a=accept-wrapped-types:text/plain text/html *\r\n"
    "a=path:msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
    "a=chatroom:nickname private-messages\r\n"
)
# RFC 4567 §5.1 (base64 joined from the RFC's wrapped lines; c= after t= as printed).
I_MESSAGE = (
    "AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAGEEoo2pee4hp2UaDX8ZE22YwKAAAPZG9uYWxkQGR1Y2suY29t"
    "AQAAAAAAAQAk0JKpgaVkDaawi9whVBtBt0KZ14ymNuu62+Nv3ozPLygwK/GbAV9iemnGUIZ19fWQUOSrzKTAv9zV"
)
R_MESSAGE = (
    "AQEFgM0XflABAAAAAAAAAAAAAAYAyONQ6gAAAAAJAAAQbWlja2"
    "V5QG1vdXNlLmNvbQABn8HdGE5BMDXFIuGEga+62AgY5cc="
)
RFC4567_OFFER = (
    "v=0\r\n"
    "o=alice 2891092738 2891092738 IN IP4 w-land.example.com\r\n"
    "s=Cool stuff\r\n"
    "e=alice@w-land.example.com\r\n"
    "t=0 0\r\n"
    "c=IN IP4 w-land.example.com\r\n"
    f"a=key-mgmt:mikey {I_MESSAGE}\r\n"
    "m=audio 49000 RTP/SAVP 98\r\n"
    "a=rtpmap:98 AMR/8000\r\n"
    "m=video 52230 RTP/SAVP 31\r\n"
    "a=rtpmap:31 H261/90000\r\n"
)
RFC4567_MEDIA_LEVEL = (
    "v=0\r\n"
    "o=alice 2891092738 2891092738 IN IP4 w-land.example.com\r\n"
    "s=Cool stuff\r\n"
    "e=alice@w-land.example.com\r\n"
    "t=0 0\r\n"
    "c=IN IP4 w-land.example.com\r\n"
    "m=audio 49000 RTP/SAVP 98\r\n"
    "a=rtpmap:98 AMR/8000\r\n"
    f"a=key-mgmt:mikey {R_MESSAGE}\r\n"
    "m=video 52230 RTP/AVP 31\r\n"
    "a=rtpmap:31 H261/90000\r\n"
)


def test_rfc4975_example_offer_and_answer_attributes() -> None:
    """The RFC 4975 §8.7 SDPs give their path, accept-types and MSRP m-lines."""
    offer = SessionDescription.parse(RFC4975_FIGURE_9)
    answer = SessionDescription.parse(RFC4975_FIGURE_10)
    assert str(offer) == RFC4975_FIGURE_9
    assert str(answer) == RFC4975_FIGURE_10
    m = offer.media[0]
    assert is_msrp(m)
    assert accept_types(m) == ("message/cpim", "text/plain", "text/html")
    assert accept_wrapped_types(m) == ()
    (uri,) = path(m)
    assert uri == MsrpUri("msrp", "alice.example.com", 7394, "2s93i93idj", "tcp")
    assert not uri.secure
    assert str(uri) == "msrp://alice.example.com:7394/2s93i93idj;tcp"
    assert path(answer.media[0])[0].session_id == "si438dsaodes"


def test_rfc7701_focus_answer_attributes() -> None:
    """The RFC 7701 §9.1 focus answer: CPIM only, wrapped types, chatroom tokens."""
    d = SessionDescription.parse(RFC7701_F2)
    m = d.media[0]
    assert accept_types(m) == ("message/cpim",)
    assert accept_wrapped_types(m) == ("text/plain", "text/html", "*")
    room = chatroom(m)
    assert room is not None
    assert room.nicknames
    assert room.private_messages
    assert str(d) == RFC7701_F2


def test_chatroom_tokens_read_both_spellings_and_keep_extensions() -> None:
    """RFC 7701 §8: "nickname" (ABNF) and "nicknames" (prose) both mean nicknames; the
    focus emits "nickname"; extension tokens and the bare attribute are kept."""
    assert Chatroom.parse("nicknames").nicknames
    ext = Chatroom.parse("nickname private-messages com.example.chat.foo")
    assert ext.tokens[-1] == "com.example.chat.foo"
    bare = Chatroom.parse(None)
    assert not bare.nicknames
    assert not bare.private_messages
    assert str(bare) == "chatroom"
    declared = Chatroom.declare(nicknames=True, private_messages=False)
    assert str(declared) == "chatroom:nickname"
    with pytest.raises(SdpNegotiationError):
        Chatroom.parse("nickname  bad")


def test_rfc4567_session_level_key_mgmt_decodes() -> None:
    """The RFC 4567 §5.1 offer: session-level mikey data decodes to the MIKEY message."""
    d = SessionDescription.parse(RFC4567_OFFER)
    keys, level = effective_key_mgmt(d.media[0], d)
    assert level == "session"
    assert [k.protocol_id for k in keys] == ["mikey"]
    assert keys[0].data == base64.b64decode(I_MESSAGE)
    assert keys[0].data[:2] == b"\x01\x00"  # MIKEY version 1, data type 0 (PSK init)
    assert b"donald@duck.com" in keys[0].data


def test_media_level_key_mgmt_overrides_session_level() -> None:
    """RFC 4567 §3.1: a media-level a=key-mgmt replaces the session-level one for it."""
    d = SessionDescription.parse(RFC4567_MEDIA_LEVEL)
    keys, level = effective_key_mgmt(d.media[0], d)
    assert level == "media"
    assert b"mickey@mouse.com" in keys[0].data
    assert effective_key_mgmt(d.media[1], d) == ((), None)
    both = d.__class__.parse(
        RFC4567_OFFER.replace(
            "a=rtpmap:98 AMR/8000\r\n", f"a=rtpmap:98 AMR/8000\r\na=key-mgmt:mikey {R_MESSAGE}\r\n"
        )
    )
    assert b"mickey@mouse.com" in effective_key_mgmt(both.media[0], both)[0][0].data
    assert b"donald@duck.com" in effective_key_mgmt(both.media[1], both)[0][0].data


def test_key_mgmt_protocol_list_is_in_sdp_order() -> None:
    """RFC 4567 §4.3: the KMPID list for bidding-down protection is ';'-joined in SDP order."""
    keys = (KeyMgmt("mikey", b"\x01"), KeyMgmt("keyp1", b"\x02"), KeyMgmt("keyp2", b"\x03"))
    assert key_mgmt_protocol_list(keys) == "mikey;keyp1;keyp2"


@pytest.mark.parametrize(
    "value",
    [
        "mikey",  # no data
        "mikey ",  # empty data
        "mikey AQA",  # not a multiple of four
        "mikey AQ==AQAA",  # padding in the middle
        "mikey AQA=\tX",  # whitespace inside
        "mikey AQ A=",
        "mi-key AQAA",  # KMPID is ALPHA / DIGIT
        "  mikey AQAA",  # at most one leading space
        "mikey AQ*A",
    ],
)
def test_key_mgmt_base64_follows_the_sdp_grammar(value: str) -> None:
    """Key-mgmt data must match RFC 8866 §9 base64 exactly; errors never echo the data."""
    with pytest.raises(SdpNegotiationError) as info:
        KeyMgmt.parse(value)
    assert "AQ" not in info.value.reason
    assert "AQ" not in info.value.warning_text


def test_key_mgmt_round_trip_and_quiet_repr() -> None:
    """A key-mgmt value with the optional leading space parses; str() re-encodes it; the
    repr hides the data."""
    k = KeyMgmt.parse(" mikey AQAFgA==")
    assert k == KeyMgmt("mikey", b"\x01\x00\x05\x80")
    assert str(k) == "mikey AQAFgA=="
    assert "AQAF" not in repr(k)
    assert "\\x01" not in repr(k)


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_key_mgmt_parse_raises_only_sdp_errors(value: str) -> None:
    """Arbitrary key-mgmt values parse or raise SdpError, and what parses round-trips."""
    try:
        k = KeyMgmt.parse(value)
    except SdpError:
        return
    assert KeyMgmt.parse(str(k)) == k


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=200))
def test_key_mgmt_data_round_trips(data: bytes) -> None:
    """Any key management message survives encoding into the attribute and back."""
    assert KeyMgmt.parse(str(KeyMgmt("mikey", data))).data == data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "msrps://focus.example.net:9000/a1b2;tcp",
            MsrpUri("msrps", "focus.example.net", 9000, "a1b2", "tcp"),
        ),
        (
            "msrps://[2001:db8::1]:2855/x+y=z/w;tcp",
            MsrpUri("msrps", "[2001:db8::1]", 2855, "x+y=z/w"),
        ),
        (
            "msrp://bob@192.0.2.1:1234;tcp;foo=bar",
            MsrpUri("msrp", "192.0.2.1", 1234, None, "tcp", "bob", ("foo=bar",)),
        ),
    ],
)
def test_msrp_uri_parse_and_str_are_inverses(text: str, expected: MsrpUri) -> None:
    """MSRP URIs (RFC 4975 §9) parse into parts and print back unchanged."""
    assert MsrpUri.parse(text) == expected
    assert str(expected) == text


def test_path_needs_ports_and_well_formed_uris() -> None:
    """RFC 4975 §8.2: path URIs in SDP carry explicit ports; the list is single-spaced."""
    relay = parse_path("msrps://relay.example:2855/r;tcp msrps://ue.example:7000/s;tcp")
    assert [u.host for u in relay] == ["relay.example", "ue.example"]
    for bad in [
        "",
        "msrps://h/s;tcp",
        "msrps://h:1/s",
        "sip:alice@example.net",
        "msrps://h:1/s;tcp  msrps://h:2/s;tcp",
        "msrps://h:99999/s;tcp",
    ]:
        with pytest.raises(SdpNegotiationError):
            parse_path(bad)


def test_setup_role_media_level_wins_and_holdconn_counts_as_absent() -> None:
    """a=setup is read at media then session level; holdconn is ignored (RFC 6135 §4.2.1)."""
    base = (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n{session}m=message 9 TCP/TLS/MSRP *\r\n{media}"
    )

    def role(session: str, media: str) -> SetupRole | None:
        d = SessionDescription.parse(base.format(session=session, media=media))
        return effective_setup(d.media[0], d)

    assert role("", "") is None
    assert role("a=setup:passive\r\n", "") is SetupRole.PASSIVE
    assert role("a=setup:passive\r\n", "a=setup:actpass\r\n") is SetupRole.ACTPASS
    assert role("", "a=setup:holdconn\r\n") is None
    assert role("", "a=setup:ACTIVE\r\n") is SetupRole.ACTIVE
    with pytest.raises(SdpNegotiationError):
        role("", "a=setup:sideways\r\n")
    with pytest.raises(SdpNegotiationError):
        role("", "a=setup:active\r\na=setup:passive\r\n")


def test_accept_types_matching_follows_rfc4975_section_8_6() -> None:
    """Explicit types, type/* and * admit a type; parameters and case do not matter."""
    assert accepts_media_type(["message/cpim"], "Message/CPIM")
    assert accepts_media_type(["message/*"], "message/cpim")
    assert accepts_media_type(["*"], "message/cpim")
    assert accepts_media_type(["message/cpim;charset=utf-8"], "message/cpim")
    assert not accepts_media_type(["text/plain", "text/*"], "message/cpim")


def test_max_size_and_cema_are_read() -> None:
    """a=max-size is a decimal octet count (RFC 4975 §8.6); a=msrp-cema a flag (RFC 6714)."""
    d = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=message 9 TCP/TLS/MSRP *\r\n"
        "a=max-size:4096\r\na=msrp-cema\r\n"
    )
    assert max_size(d.media[0]) == 4096
    assert has_msrp_cema(d.media[0])
    bad = SessionDescription.parse(str(d).replace("4096", "4k"))
    with pytest.raises(SdpNegotiationError):
        max_size(bad.media[0])


def test_address_matching_without_dns() -> None:
    """RFC 6714 §4.4 in pure code: IPs compare as IPs, names as names, mixed is unknown."""
    uri = MsrpUri.parse("msrps://[2001:db8::1]:7000/s;tcp")
    assert address_matches(Connection("2001:DB8:0::1", "IN", "IP6"), 7000, uri) is True
    assert address_matches(Connection("2001:db8::2", "IN", "IP6"), 7000, uri) is False
    assert address_matches(Connection("2001:db8::1", "IN", "IP6"), 7001, uri) is False
    named = MsrpUri.parse("msrps://UE.example:7000/s;tcp")
    assert address_matches(Connection("ue.example"), 7000, named) is True
    assert address_matches(Connection("192.0.2.1"), 7000, named) is None
    assert address_matches(None, 7000, named) is None


@settings(max_examples=200)
@given(
    st.sampled_from([parse_path, MsrpUri.parse, Chatroom.parse, SetupRole.parse]),
    st.text(max_size=80),
)
def test_attribute_parsers_raise_only_sdp_errors(parse: object, value: str) -> None:
    """Every attribute value parser either returns a value or raises SdpError."""
    assert callable(parse)
    try:
        result = parse(value)
    except SdpError:
        return
    if isinstance(result, MsrpUri):
        assert MsrpUri.parse(str(result)) == result


@settings(max_examples=200)
@given(st.text(alphabet="msrp:/[]0123456789abcdef.;=-+_~@tcp ", max_size=60))
def test_uri_like_text_round_trips_or_fails_cleanly(value: str) -> None:
    """URI-shaped text parses to a value that prints back exactly, or raises SdpError."""
    try:
        uri = MsrpUri.parse(value)
    except SdpError:
        return
    assert str(uri) == value
