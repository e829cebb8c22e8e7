"""Offer/answer for the TLS-only MSRP focus (RFC 3264, RFC 4975 §8, RFC 6135, RFC 4567)."""

from __future__ import annotations

import base64

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sdp import (
    DISCARD_PORT,
    Chatroom,
    KeyMgmt,
    LineVerdict,
    LocalMedia,
    MsrpCapabilities,
    MsrpUri,
    Origin,
    SdpNegotiationError,
    SessionDescription,
    SetupRole,
    accept_types,
    build_answer,
    build_offer,
    chatroom,
    classify_offer,
    effective_key_mgmt,
    effective_setup,
    examine_offer,
    has_msrp_cema,
    interpret_answer,
    max_size,
    path,
)

INIT = bytes(range(1, 60))  # stands in for a MIKEY TRANSFER_INIT
RESP = bytes(range(100, 140))  # stands in for a MIKEY TRANSFER_RESP
INIT_B64 = base64.b64encode(INIT).decode()
FOCUS_ORIGIN = Origin("focus", 42, 1, "192.0.2.10")
FOCUS_PATH = (MsrpUri.parse("msrps://192.0.2.10:40001/f0cus5e55;tcp"),)


def msrp_line(
    *,
    proto: str = "TCP/TLS/MSRP",
    port: int = 7654,
    setup: str | None = "actpass",
    key: str | None = f"mikey {INIT_B64}",
    types: str = "message/cpim text/plain",
    scheme: str = "msrps",
    host: str = "192.0.2.1",
    extra: str = "",
) -> str:
    lines = [
        f"m=message {port} {proto} *",
        f"a=accept-types:{types}",
        f"a=path:{scheme}://{host}:{port}/jshA7weztas;tcp",
    ]
    if setup is not None:
        lines.append(f"a=setup:{setup}")
    if key is not None:
        lines.append(f"a=key-mgmt:{key}")
    text = "".join(f"{line}\r\n" for line in lines)
    return text + extra


def offer(*media: str, session: str = "", connection: str = "192.0.2.1") -> SessionDescription:
    head = (
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.1\r\ns=-\r\n"
        f"c=IN IP4 {connection}\r\nt=0 0\r\n{session}"
    )
    return SessionDescription.parse(head + "".join(media))


def local() -> LocalMedia:
    return LocalMedia(FOCUS_PATH, KeyMgmt("mikey", RESP))


# -- classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media", "verdict"),
    [
        (msrp_line(), LineVerdict.ACCEPTED),
        (msrp_line(proto="TCP/MSRP", scheme="msrp"), LineVerdict.NOT_TLS),
        ("m=audio 49170 RTP/AVP 0\r\n", LineVerdict.NOT_MESSAGE),
        ("m=video 51372 RTP/SAVP 99\r\n", LineVerdict.NOT_MESSAGE),
        (msrp_line(proto="UDP/MSRP"), LineVerdict.UNSUPPORTED_PROTOCOL),
        (msrp_line(port=0), LineVerdict.DISABLED),
        (msrp_line(key=None), LineVerdict.NO_KEY_MGMT),
        (msrp_line(key="keyp1 AAAA"), LineVerdict.OTHER_KEY_MGMT),
        (msrp_line(key="mikey AQA"), LineVerdict.BAD_KEY_MGMT),
        (msrp_line(key="mikey"), LineVerdict.BAD_KEY_MGMT),
        (msrp_line(types="text/plain"), LineVerdict.NO_CPIM),
        (msrp_line(scheme="msrp"), LineVerdict.BAD_ATTRIBUTE),
        (msrp_line(setup="sideways"), LineVerdict.BAD_ATTRIBUTE),
        (msrp_line(types="text//plain"), LineVerdict.BAD_ATTRIBUTE),
        (msrp_line(host="192.0.2.99"), LineVerdict.ADDRESS_MISMATCH),
    ],
)
def test_each_offered_line_gets_a_verdict(media: str, verdict: LineVerdict) -> None:
    """Every offered m-line is classified with the reason it is (un)usable."""
    (line,) = classify_offer(offer(media)).lines
    assert line.verdict is verdict
    assert line.reason
    assert INIT_B64[:8] not in line.reason


def test_accept_types_star_satisfies_the_cpim_requirement() -> None:
    """RFC 4975 §8.6: "*" signals every type, message/cpim included."""
    (line,) = classify_offer(offer(msrp_line(types="*"))).lines
    assert line.verdict is LineVerdict.ACCEPTED


def test_cpim_is_not_required_for_a_legacy_room() -> None:
    """With require_cpim=False a text/plain-only line is usable."""
    (line,) = classify_offer(offer(msrp_line(types="text/plain")), require_cpim=False).lines
    assert line.verdict is LineVerdict.ACCEPTED


def test_cema_offer_accepts_a_rewritten_c_line_and_connects_there() -> None:
    """RFC 6714 §4.3: with a=msrp-cema a c/m mismatch is fine; an active focus uses c/m."""
    media = msrp_line(setup="passive", host="10.0.0.5", extra="a=msrp-cema\r\n")
    (line,) = classify_offer(offer(media, connection="198.51.100.7")).lines
    assert line.verdict is LineVerdict.ACCEPTED
    assert line.cema
    assert line.focus_role is SetupRole.ACTIVE
    assert line.connect_to == ("198.51.100.7", 7654)


def test_active_offer_with_discard_port_is_not_an_address_mismatch() -> None:
    """An active offerer puts port 9 on its m-line (RFC 4145 §4.1); that is no mismatch."""
    media = msrp_line(setup="active").replace("m=message 7654", f"m=message {DISCARD_PORT}")
    (line,) = classify_offer(offer(media)).lines
    assert line.verdict is LineVerdict.ACCEPTED
    assert line.focus_role is SetupRole.PASSIVE
    assert line.connect_to is None


@pytest.mark.parametrize(
    ("offered", "focus"),
    [
        ("actpass", SetupRole.PASSIVE),
        ("active", SetupRole.PASSIVE),
        ("passive", SetupRole.ACTIVE),
        (None, SetupRole.PASSIVE),
        ("holdconn", SetupRole.PASSIVE),
    ],
)
def test_setup_role_of_the_focus_as_answerer(offered: str | None, focus: SetupRole) -> None:
    """PROFILE §8: passive to actpass/active (and to none or holdconn: RFC 4145 default,
    RFC 6135 §4.2.1), active to passive; an active focus connects to the path's first hop."""
    (line,) = classify_offer(offer(msrp_line(setup=offered))).lines
    assert line.focus_role is focus
    answer = build_answer(
        classify_offer(offer(msrp_line(setup=offered))), {0: local()}, origin=FOCUS_ORIGIN
    )
    m = answer.media[0]
    assert effective_setup(m, answer) is focus
    if focus is SetupRole.ACTIVE:
        assert line.connect_to == ("192.0.2.1", 7654)
        assert m.port == DISCARD_PORT
    else:
        assert line.connect_to is None
        assert m.port == 40001


def test_session_level_key_mgmt_applies_and_media_level_overrides() -> None:
    """RFC 4567 §3.1: session-level key-mgmt keys lines without their own; media wins."""
    session = f"a=key-mgmt:mikey {base64.b64encode(b'session-level').decode()}\r\n"
    media_key = f"mikey {base64.b64encode(b'media-level').decode()}"
    o = offer(msrp_line(key=None), msrp_line(key=media_key), session=session)
    first, second = classify_offer(o, max_accepted=2).lines
    assert (first.key_mgmt_level, second.key_mgmt_level) == ("session", "media")
    assert first.key_mgmt is not None and first.key_mgmt.data == b"session-level"
    assert second.key_mgmt is not None and second.key_mgmt.data == b"media-level"


def test_key_mgmt_ids_list_every_offered_protocol_in_order() -> None:
    """The MIKEY "SDP IDs" input lists all KMPIDs of the line in SDP order (RFC 4567 §4.3)."""
    media = msrp_line(extra="a=key-mgmt:keyp1 AAAA\r\n")
    (line,) = classify_offer(offer(media)).lines
    assert line.key_mgmt_ids == "mikey;keyp1"


def test_broken_session_key_mgmt_aborts_even_with_a_good_line() -> None:
    """RFC 4567 §4.1.1: any key-mgmt error aborts the session (488, no key data echoed)."""
    o = offer(msrp_line(key=None), msrp_line(), session="a=key-mgmt:mikey AQ=A\r\n")
    with pytest.raises(SdpNegotiationError) as info:
        examine_offer(o, max_accepted=2)
    assert info.value.sip_status == 488
    assert "not base64" in info.value.reason


@pytest.mark.parametrize(
    ("media", "words", "warn"),
    [
        (msrp_line(proto="TCP/MSRP", scheme="msrp"), "without TLS", 302),
        ("m=audio 49170 RTP/AVP 0\r\n", "media audio", 304),
        (msrp_line(key=None), "no a=key-mgmt", 399),
        (msrp_line(key="keyp1 AAAA"), "no mikey", 399),
        (msrp_line(types="text/plain"), "message/cpim", 305),
    ],
)
def test_unacceptable_offers_raise_488_with_a_warning(media: str, words: str, warn: int) -> None:
    """An offer with no usable line raises SdpNegotiationError carrying the Warning text."""
    with pytest.raises(SdpNegotiationError) as info:
        examine_offer(offer(media))
    assert info.value.sip_status == 488
    assert info.value.warn_code == warn
    assert words in info.value.reason
    assert info.value.warning_text.startswith("SDP: m-line 1: ")
    assert '"' not in info.value.warning_text


def test_the_most_specific_reason_is_reported() -> None:
    """With audio plus a key-less MSRP line, the warning names the missing key-mgmt."""
    with pytest.raises(SdpNegotiationError, match="m-line 2: no a=key-mgmt"):
        examine_offer(offer("m=audio 49170 RTP/AVP 0\r\n", msrp_line(key=None)))


def test_offer_without_media_is_refused() -> None:
    """An offer with no m-line at all cannot be answered."""
    with pytest.raises(SdpNegotiationError, match="no media"):
        examine_offer(offer())


# -- building the answer ---------------------------------------------------------------


def test_answer_accepts_the_tls_line_and_rejects_the_rest_with_port_zero() -> None:
    """RFC 3264 §6: same m-line count; rejected lines echo media/proto/formats with port 0;
    the accepted line carries path, types, setup, chatroom and media-level key-mgmt."""
    o = offer(
        "m=audio 49170 RTP/AVP 0 8\r\n",
        msrp_line(proto="TCP/MSRP", scheme="msrp"),
        msrp_line(),
        msrp_line(),
    )
    exam = examine_offer(o)
    assert [line.verdict for line in exam.lines] == [
        LineVerdict.NOT_MESSAGE,
        LineVerdict.NOT_TLS,
        LineVerdict.ACCEPTED,
        LineVerdict.SURPLUS,
    ]
    answer = build_answer(exam, {2: local()}, origin=FOCUS_ORIGIN)
    assert [(m.media, m.port, m.proto, m.formats) for m in answer.media] == [
        ("audio", 0, "RTP/AVP", ("0", "8")),
        ("message", 0, "TCP/MSRP", ("*",)),
        ("message", 40001, "TCP/TLS/MSRP", ("*",)),
        ("message", 0, "TCP/TLS/MSRP", ("*",)),
    ]
    m = answer.media[2]
    assert path(m) == FOCUS_PATH
    assert accept_types(m) == ("message/cpim",)
    assert m.get_attribute("accept-wrapped-types") is not None
    room = chatroom(m)
    assert room is not None and room.nicknames and room.private_messages
    keys, level = effective_key_mgmt(m, answer)
    assert level == "media"
    assert keys == (KeyMgmt("mikey", RESP),)
    assert answer.connection is not None and answer.connection.address == "192.0.2.10"
    assert answer.times == o.times
    assert answer.origin == FOCUS_ORIGIN
    # The answer is itself valid SDP that parses back to the same value.
    assert SessionDescription.parse(answer.encode()) == answer


def test_answer_uses_room_capabilities() -> None:
    """Accept types, wrapped types, max-size and chatroom tokens come from the caller."""
    caps = MsrpCapabilities(
        accept_types=("message/cpim", "text/plain"),
        accept_wrapped_types=("text/plain",),
        max_size=65536,
        chatroom=Chatroom.declare(nicknames=False, private_messages=True),
    )
    exam = examine_offer(offer(msrp_line()))
    m = build_answer(exam, {0: local()}, origin=FOCUS_ORIGIN, capabilities=caps).media[0]
    assert accept_types(m) == ("message/cpim", "text/plain")
    assert max_size(m) == 65536
    assert str(m.get_attribute("chatroom")) == "chatroom:private-messages"


def test_answer_echoes_cema_only_when_negotiated() -> None:
    """RFC 6714 §4.3: a=msrp-cema in the answer when offered, unless the offerer's relay
    would make it active (fallback rule 2)."""
    cema = msrp_line(extra="a=msrp-cema\r\n")
    answer = build_answer(examine_offer(offer(cema)), {0: local()}, origin=FOCUS_ORIGIN)
    assert has_msrp_cema(answer.media[0])
    relayed = cema.replace("a=path:msrps://", "a=path:msrps://relay.example:2855/r;tcp msrps://")
    (line,) = classify_offer(offer(relayed)).lines
    assert line.verdict is LineVerdict.ACCEPTED
    assert not line.cema


def test_local_media_must_match_the_accepted_lines() -> None:
    """build_answer refuses local media for lines it did not accept (a caller bug)."""
    exam = examine_offer(offer(msrp_line()))
    with pytest.raises(ValueError):
        build_answer(exam, {1: local()}, origin=FOCUS_ORIGIN)
    with pytest.raises(ValueError):
        LocalMedia((MsrpUri.parse("msrp://h:1/s;tcp"),), KeyMgmt("mikey", RESP))


def test_reanswer_keeps_the_origin_when_unchanged_and_bumps_it_otherwise() -> None:
    """RFC 3264 §8 / RFC 4975 §8.4: same o= line for an unchanged answer, version + 1 when
    something changed (here the re-keyed key-mgmt), whatever origin the caller passes."""
    exam = examine_offer(offer(msrp_line()))
    first = build_answer(exam, {0: local()}, origin=FOCUS_ORIGIN)
    again = build_answer(exam, {0: local()}, origin=Origin("x", 1, 1, "h"), previous=first)
    assert again == first
    rekeyed = build_answer(
        exam,
        {0: LocalMedia(FOCUS_PATH, KeyMgmt("mikey", b"new"))},
        origin=FOCUS_ORIGIN,
        previous=first,
    )
    assert rekeyed.origin == FOCUS_ORIGIN.next_version()


def test_ipv6_focus_path_gives_an_ip6_connection_line() -> None:
    """RFC 4975 §8.1: c= carries the path's host, with the matching address type."""
    v6 = LocalMedia((MsrpUri.parse("msrps://[2001:db8::10]:40002/s;tcp"),), KeyMgmt("mikey", RESP))
    answer = build_answer(examine_offer(offer(msrp_line())), {0: v6}, origin=FOCUS_ORIGIN)
    assert answer.connection is not None
    assert (answer.connection.addrtype, answer.connection.address) == ("IP6", "2001:db8::10")


# -- the focus as offerer (dial-out) ---------------------------------------------------


def dial_out_offer(lines: int = 1) -> SessionDescription:
    items = [
        LocalMedia(
            (MsrpUri.parse(f"msrps://192.0.2.10:4000{i}/d{i}abc;tcp"),), KeyMgmt("mikey", INIT)
        )
        for i in range(lines)
    ]
    return build_offer(items, origin=FOCUS_ORIGIN)


def answer_to(o: SessionDescription, *medias: str) -> SessionDescription:
    head = "v=0\r\no=bob 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
    return SessionDescription.parse(head + "".join(medias))


def test_dial_out_offer_has_actpass_key_mgmt_and_tls_lines() -> None:
    """The focus offers only m=message … TCP/TLS/MSRP * with a=setup:actpass and key-mgmt."""
    o = dial_out_offer(2)
    assert len(o.media) == 2
    for i, m in enumerate(o.media):
        assert (m.media, m.port, m.proto, m.formats) == (
            "message",
            40000 + i,
            "TCP/TLS/MSRP",
            ("*",),
        )
        assert effective_setup(m, o) is SetupRole.ACTPASS
        assert effective_key_mgmt(m, o) == ((KeyMgmt("mikey", INIT),), "media")
    assert SessionDescription.parse(str(o)) == o
    with pytest.raises(ValueError):
        build_offer([], origin=FOCUS_ORIGIN)


@pytest.mark.parametrize(
    ("answered", "focus"),
    [("active", SetupRole.PASSIVE), ("passive", SetupRole.ACTIVE), (None, SetupRole.ACTIVE)],
)
def test_interpret_answer_roles_path_and_key(answered: str | None, focus: SetupRole) -> None:
    """The answer's a=setup decides the focus's role (RFC 4145 §4.1; absent = passive)."""
    o = dial_out_offer()
    a = answer_to(
        o,
        msrp_line(setup=answered, host="192.0.2.2", key=f"mikey {base64.b64encode(RESP).decode()}"),
    )
    (line,) = interpret_answer(o, a).lines
    assert line.accepted
    assert line.focus_role is focus
    assert line.key_mgmt == KeyMgmt("mikey", RESP)
    assert line.peer_path[-1].session_id == "jshA7weztas"
    assert line.connect_to == (("192.0.2.2", 7654) if focus is SetupRole.ACTIVE else None)


def test_interpret_answer_reports_rejected_lines() -> None:
    """A port-0 line in the answer is rejected; the others stay usable."""
    o = dial_out_offer(2)
    a = answer_to(o, "m=message 0 TCP/TLS/MSRP *\r\n", msrp_line(setup="active", host="192.0.2.2"))
    result = interpret_answer(o, a)
    assert [line.accepted for line in result.lines] == [False, True]
    assert [line.index for line in result.accepted] == [1]


@pytest.mark.parametrize(
    ("medias", "words"),
    [
        (["m=message 0 TCP/TLS/MSRP *\r\n"], "rejected every"),
        ([msrp_line(host="192.0.2.2"), msrp_line(host="192.0.2.2")], "number of m-lines"),
        ([msrp_line(proto="TCP/MSRP", scheme="msrp")], "changed media or proto"),
        ([msrp_line(setup="actpass", host="192.0.2.2")], "actpass"),
        ([msrp_line(key=None, setup="passive", host="192.0.2.2")], "no mikey"),
        ([msrp_line(scheme="msrp", setup="passive", host="192.0.2.2")], "msrps"),
        ([msrp_line(types="text/plain", setup="passive", host="192.0.2.2")], "message/cpim"),
        ([msrp_line(key="mikey %%%%", setup="passive", host="192.0.2.2")], "not base64"),
    ],
)
def test_interpret_answer_refuses_broken_answers(medias: list[str], words: str) -> None:
    """Answers that break RFC 3264 §6, RFC 4145, RFC 4975 or PROFILE §8 raise 488 errors."""
    o = dial_out_offer()
    with pytest.raises(SdpNegotiationError, match=words):
        interpret_answer(o, answer_to(o, *medias))


def test_reoffer_is_versioned() -> None:
    """A re-offer keeps the o= identity and bumps the version only if it changed."""
    first = dial_out_offer()
    item = LocalMedia(
        (MsrpUri.parse("msrps://192.0.2.10:40000/d0abc;tcp"),), KeyMgmt("mikey", INIT)
    )
    same = build_offer([item], origin=Origin("other", 9, 9, "h"), previous=first)
    assert same == first
    changed = build_offer(
        [attrs.evolve(item, key_mgmt=KeyMgmt("mikey", b"x"))], origin=FOCUS_ORIGIN, previous=first
    )
    assert changed.origin.session_version == first.origin.session_version + 1


def test_broken_session_key_mgmt_aborts_even_if_only_audio_uses_it() -> None:
    """RFC 4567 §4.1.1: a session-level key-mgmt error aborts, whatever the lines are."""
    o = offer(msrp_line(), "m=audio 49170 RTP/SAVP 0\r\n", session="a=key-mgmt:mikey ***\r\n")
    with pytest.raises(SdpNegotiationError, match="session level"):
        examine_offer(o)


LINE_KINDS = [
    msrp_line(),
    msrp_line(setup="active"),
    msrp_line(setup="passive"),
    msrp_line(setup=None),
    msrp_line(proto="TCP/MSRP", scheme="msrp"),
    msrp_line(key=None),
    msrp_line(key="mikey AQ"),
    msrp_line(types="text/plain"),
    msrp_line(extra="a=msrp-cema\r\n"),
    msrp_line(port=0),
    "m=audio 49170 RTP/AVP 0\r\n",
    "m=message 5 TCP/MSRP *\r\n",
]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(LINE_KINDS), max_size=5), st.integers(1, 3))
def test_any_offer_is_refused_or_answered_line_for_line(lines: list[str], most: int) -> None:
    """Any mix of offered lines is either refused with SdpNegotiationError or answered with
    the same number of m-lines, exactly the accepted ones open, the rest at port 0."""
    o = offer(*lines)
    try:
        exam = examine_offer(o, max_accepted=most)
    except SdpNegotiationError as error:
        assert error.sip_status == 488
        return
    accepted = {line.index for line in exam.accepted}
    assert 1 <= len(accepted) <= most
    answer = build_answer(exam, dict.fromkeys(accepted, local()), origin=FOCUS_ORIGIN)
    assert len(answer.media) == len(o.media)
    for index, (offered, answered) in enumerate(zip(o.media, answer.media, strict=True)):
        assert (answered.media, answered.proto) == (offered.media, offered.proto)
        assert (answered.port != 0) == (index in accepted)
    assert SessionDescription.parse(answer.encode()) == answer
