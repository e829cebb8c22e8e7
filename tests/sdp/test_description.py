"""SDP parsing and serialization (RFC 8866)."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Media,
    Origin,
    SdpError,
    SdpSyntaxError,
    SessionDescription,
    TimeDescription,
)


def crlf(text: str) -> str:
    return "".join(f"{line.strip()}\r\n" for line in text.strip().splitlines())


RFC8866_EXAMPLE = crlf("""
    v=0
    o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1
    s=Call to John Smith
    i=SDP Offer #1
    u=http://www.jdoe.example.com/home.html
    e=Jane Doe <jane@jdoe.example.com>
    p=+1 617 555-6011
    c=IN IP4 198.51.100.1
    t=0 0
    m=audio 49170 RTP/AVP 0
    m=audio 49180 RTP/AVP 0
    m=video 51372 RTP/AVP 99
    c=IN IP6 2001:db8::2
    a=rtpmap:99 h263-1998/90000
""")

RFC4975_FIGURE_7 = crlf("""
    v=0
    o=alice 2890844526 2890844527 IN IP4 alice.example.com
    s= -
    c=IN IP4 alice.example.com
    t=0 0
    m=message 7394 TCP/MSRP *
    a=accept-types:text/plain
    a=path:msrp://alice.example.com:7394/2s93i9ek2a;tcp
""").replace("s=-", "s= -")


def test_rfc8866_section5_example_round_trips_exactly() -> None:
    """The RFC 8866 §5 example parses into its parts and serializes back byte for byte."""
    d = SessionDescription.parse(RFC8866_EXAMPLE)
    assert d.origin == Origin("jdoe", 3724394400, 3724394405, "198.51.100.1")
    assert d.session_name == "Call to John Smith"
    assert d.information == "SDP Offer #1"
    assert d.uri == "http://www.jdoe.example.com/home.html"
    assert d.emails == ("Jane Doe <jane@jdoe.example.com>",)
    assert d.phones == ("+1 617 555-6011",)
    assert d.connection == Connection("198.51.100.1")
    assert [m.port for m in d.media] == [49170, 49180, 51372]
    assert d.media[2].connections == (Connection("2001:db8::2", "IN", "IP6"),)
    assert d.media[2].get_attribute("rtpmap") == Attribute("rtpmap", "99 h263-1998/90000")
    assert str(d) == RFC8866_EXAMPLE
    assert d.encode() == RFC8866_EXAMPLE.encode()


def test_leading_space_in_session_name_is_kept() -> None:
    """RFC 4975 Figure 7 uses "s= -": the value keeps its leading space (RFC 8866 §5)."""
    d = SessionDescription.parse(RFC4975_FIGURE_7)
    assert d.session_name == " -"
    assert str(d) == RFC4975_FIGURE_7


def test_lf_line_ends_are_accepted_and_serialize_as_crlf() -> None:
    """Lines ending in LF alone parse (RFC 8866 §5 SHOULD be tolerant); output uses CRLF."""
    d = SessionDescription.parse(RFC8866_EXAMPLE.replace("\r\n", "\n"))
    assert str(d) == RFC8866_EXAMPLE


def test_missing_final_line_end_and_trailing_blank_lines_are_tolerated() -> None:
    """A last line without CRLF, or followed by blank lines, still parses."""
    base = SessionDescription.parse(RFC8866_EXAMPLE)
    assert SessionDescription.parse(RFC8866_EXAMPLE.rstrip("\r\n")) == base
    assert SessionDescription.parse(RFC8866_EXAMPLE + "\r\n\r\n") == base


def test_unknown_attributes_survive_verbatim_at_their_level() -> None:
    """Attributes the parser does not understand are kept in order at their level."""
    text = crlf("""
        v=0
        o=- 1 1 IN IP4 192.0.2.1
        s=-
        t=0 0
        a=x-vendor:some value: with colons
        a=flag
        a=empty:
        m=message 9 TCP/TLS/MSRP *
        a=z-last
        a=x-vendor:media level
    """)
    d = SessionDescription.parse(text)
    assert d.attributes == (
        Attribute("x-vendor", "some value: with colons"),
        Attribute("flag"),
        Attribute("empty", ""),
    )
    assert d.media[0].attributes == (Attribute("z-last"), Attribute("x-vendor", "media level"))
    assert str(d) == text


def test_times_repeats_zones_bandwidth_and_keys_round_trip() -> None:
    """t=/r=/z= groups, b= and the obsolete k= line parse and serialize in order."""
    text = crlf("""
        v=0
        o=- 1 1 IN IP4 192.0.2.1
        s=-
        b=AS:128
        t=3034423619 3042462419
        r=604800 3600 0 90000
        r=7d 1h 0 25h
        z=2882844526 -1h 2898848070 0
        t=0 0
        k=prompt
        m=audio 49170/2 RTP/AVP 0 8
        i=media title
        c=IN IP4 233.252.0.1/127/2
        b=CT:64
        k=clear:secret words
        a=recvonly
    """)
    d = SessionDescription.parse(text)
    assert d.bandwidths == (Bandwidth("AS", 128),)
    assert d.times[0] == TimeDescription(
        3034423619,
        3042462419,
        ("604800 3600 0 90000", "7d 1h 0 25h"),
        "2882844526 -1h 2898848070 0",
    )
    assert d.times[1] == TimeDescription()
    assert d.key == "prompt"
    m = d.media[0]
    assert (m.port, m.port_count, m.formats) == (49170, 2, ("0", "8"))
    assert m.information == "media title"
    assert m.key == "clear:secret words"
    assert str(d) == text


def test_rfc4566_zone_after_t_is_accepted() -> None:
    """RFC 4566 placed z= after t= without r=; it belongs to that time description."""
    d = SessionDescription.parse("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nz=2882844526 -1h\n")
    assert d.times == (TimeDescription(zone="2882844526 -1h"),)


def test_missing_time_line_is_tolerated() -> None:
    """The RFC 7701 §9.1 examples omit t=; such a description parses with no times."""
    d = SessionDescription.parse(
        "v=0\no=chat 1 1 IN IP4 chat.example.com\ns=-\nc=IN IP4 chat.example.com\n"
        "m=message 12763 TCP/MSRP *\n"
    )
    assert d.times == ()
    assert "t=" not in str(d)


def test_session_connection_after_time_is_tolerated_and_reordered() -> None:
    """The RFC 4567 §5 examples put c= after t=; it is read and written back before t=."""
    d = SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 h\ns=x\nt=0 0\nc=IN IP4 w-land.example.com\na=k\n"
    )
    assert d.connection == Connection("w-land.example.com")
    assert (
        str(d)
        == "v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nc=IN IP4 w-land.example.com\r\nt=0 0\r\na=k\r\n"
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        ("v=1\n", "v=0"),
        ("o=- 1 1 IN IP4 h\n", "v=0"),
        ("v=0\ns=-\no=- 1 1 IN IP4 h\n", "o= and s="),
        ("v=0\no=- 1 1 IN IP4\ns=-\n", "malformed o="),
        ("v=0\no=- 1 1 IN IP4 h\n", "missing"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nx=unknown\n", "unknown"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nV=0\n", "not <type>=<value>"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\na = x\n", "not <type>=<value>"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nrubbish\n", "not <type>=<value>"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n\na=x\n", "not <type>=<value>"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\na=x\nt=0 0\n", "out of order"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\ni=a\ni=b\n", "repeated"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 a\nc=IN IP4 b\n", "repeated"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nr=7d 1h 0\n", "without its t="),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=now 0\n", "malformed t="),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 70000 RTP/AVP 0\n", "out of range"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 5 RTP/AVP\n", "malformed m="),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 5 RTP/AVP 0\na=x\nc=IN IP4 h\n", "order"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 5 RTP/AVP 0\nt=0 0\n", "misplaced"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nb=AS\n", "malformed b="),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\na=bad name\n", "malformed a="),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\rt=0 0\n", "CR"),
        ("v=0\no=- 1 1 IN IP4 h\ns=a\x00b\n", "NUL"),
        ("v=0\no=- 1 1 IN IP4 h\ns=-\nk=unknown-method\n", "malformed k="),
    ],
)
def test_garbage_is_rejected_with_a_syntax_error(text: str, complaint: str) -> None:
    """Descriptions that break the RFC 8866 §5/§9 rules raise SdpSyntaxError (SIP 400)."""
    with pytest.raises(SdpSyntaxError) as info:
        SessionDescription.parse(text)
    assert complaint in info.value.reason
    assert info.value.sip_status == 400


def test_size_and_line_limits_are_enforced() -> None:
    """Descriptions above max_size bytes or max_lines lines are refused before parsing."""
    many = "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n" + "a=x\n" * 20
    SessionDescription.parse(many, max_lines=30)
    with pytest.raises(SdpSyntaxError, match="lines"):
        SessionDescription.parse(many, max_lines=10)
    with pytest.raises(SdpSyntaxError, match="larger"):
        SessionDescription.parse(many, max_size=50)


def test_non_utf8_octets_survive_a_round_trip() -> None:
    """Text fields are octet strings (RFC 8866 §5): bytes that are not UTF-8 come back."""
    raw = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=caf\xe9\r\nt=0 0\r\n"
    assert SessionDescription.parse(raw).encode() == raw


def test_evolve_changes_a_copy_and_origin_versions_increase() -> None:
    """Values are frozen; attrs.evolve and Origin.next_version make changed copies."""
    d = SessionDescription.parse(RFC8866_EXAMPLE)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.session_name = "x"  # type: ignore[misc]
    e = attrs.evolve(d, origin=d.origin.next_version())
    assert e.origin.session_version == d.origin.session_version + 1
    assert d.origin.session_version == 3724394405


def test_constructors_refuse_values_that_would_serialize_to_garbage() -> None:
    """Validators stop CR/LF injection and bad tokens when building descriptions in code."""
    with pytest.raises(ValueError):
        Attribute("path", "a\r\nm=audio 1 RTP/AVP 0")
    with pytest.raises(ValueError):
        Attribute("bad name")
    with pytest.raises(ValueError):
        Media("message", 70000, "TCP/MSRP", ("*",))
    with pytest.raises(ValueError):
        Media("message", 1, "TCP/MSRP", ())
    with pytest.raises(ValueError):
        SessionDescription(origin=Origin("-", 1, 1, "h"), session_name="a\nb")


# -- properties ----------------------------------------------------------------------------

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=8)
text = st.text(
    alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
attributes = st.lists(st.builds(Attribute, token, st.none() | text | st.just("")), max_size=4).map(
    tuple
)
medias = st.builds(
    Media,
    media=token,
    port=st.integers(0, 65535),
    proto=st.sampled_from(["TCP/MSRP", "TCP/TLS/MSRP", "RTP/AVP", "udp"]),
    formats=st.lists(token | st.just("*"), min_size=1, max_size=3).map(tuple),
    port_count=st.none() | st.integers(1, 4),
    information=st.none() | text,
    connections=st.lists(st.builds(Connection, token), max_size=2).map(tuple),
    bandwidths=st.lists(st.builds(Bandwidth, token, st.integers(0, 10**6)), max_size=2).map(tuple),
    attributes=attributes,
)
descriptions = st.builds(
    SessionDescription,
    origin=st.builds(Origin, token, st.integers(0, 2**63), st.integers(0, 2**63), token),
    session_name=text | st.just(""),
    information=st.none() | text,
    emails=st.lists(text, max_size=2).map(tuple),
    connection=st.none() | st.builds(Connection, token),
    times=st.lists(st.builds(TimeDescription), max_size=2).map(tuple),
    attributes=attributes,
    media=st.lists(medias, max_size=3).map(tuple),
)


@settings(max_examples=200)
@given(descriptions)
def test_serialize_then_parse_is_identity(d: SessionDescription) -> None:
    """parse(encode(d)) == d for every description the model can hold."""
    assert SessionDescription.parse(d.encode()) == d
    assert SessionDescription.parse(str(d)) == d


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_sdp_errors(data: bytes) -> None:
    """Any byte string either parses or raises SdpError, and what parses is stable."""
    try:
        d = SessionDescription.parse(data)
    except SdpError:
        return
    assert SessionDescription.parse(d.encode()) == d


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_sdp_errors(data: str) -> None:
    """Any text either parses or raises SdpError; parse→str→parse is stable."""
    try:
        d = SessionDescription.parse(data)
    except SdpError:
        return
    assert SessionDescription.parse(str(d)) == d


lines = st.sampled_from(
    [
        "v=0",
        "o=- 1 1 IN IP4 h",
        "s=-",
        "t=0 0",
        "c=IN IP4 h",
        "a=path:msrps://h:1/x;tcp",
        "a=setup:actpass",
        "m=message 1 TCP/TLS/MSRP *",
        "b=AS:1",
        "i=x",
        "r=1 1 1",
        "z=2882844526 -1h",
        "k=prompt",
    ]
)


@settings(max_examples=200)
@given(st.lists(lines, max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_shuffled_valid_lines_raise_only_sdp_errors(chosen: list[str], eol: str) -> None:
    """Valid lines in any order either parse (and round-trip) or raise SdpError."""
    data = eol.join(["v=0", "o=- 1 1 IN IP4 h", "s=-", *chosen]) + eol
    try:
        d = SessionDescription.parse(data)
    except SdpError:
        return
    assert SessionDescription.parse(str(d)) == d
