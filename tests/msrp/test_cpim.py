"""Message/CPIM parse and build, exact header bytes (RFC 3862)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import (
    CpimAddress,
    CpimHeader,
    CpimMessage,
    FrameParser,
    MsrpError,
    MsrpParseError,
    Request,
    unescape,
)

from . import examples as ex
from .examples import wire

# RFC 3862 §5.1 (the h:/e: parts; the m: part is MSRP's own Content-Type header).
RFC3862_EXAMPLE = wire("""
From: MR SANDERS <im:piglet@100akerwood.com>
To: Depressed Donkey <im:eeyore@100akerwood.com>
DateTime: 2000-12-13T13:40:00-08:00
Subject: the weather will be fine today
Subject:;lang=fr beau temps prevu pour aujourd'hui
NS: MyFeatures <mid:MessageFeatures@id.foo.com>
Require: MyFeatures.VitalMessageOption
MyFeatures.VitalMessageOption: Confirmation-requested
MyFeatures.WackyMessageOption: Use-silly-font

Content-type: text/xml; charset=utf-8
Content-ID: <1234567890@foo.com>

<body>
Here is the text of my message.
</body>""")


def test_rfc3862_example() -> None:
    """The RFC 3862 §5.1 message parses into its headers and round-trips byte for byte."""
    message = CpimMessage.parse(RFC3862_EXAMPLE)
    assert message.encode() == RFC3862_EXAMPLE
    assert message.from_ == [CpimAddress("im:piglet@100akerwood.com", "MR SANDERS")]
    assert message.to == [CpimAddress("im:eeyore@100akerwood.com", "Depressed Donkey")]
    assert message.datetime == "2000-12-13T13:40:00-08:00"
    assert message.subjects == [
        (None, "the weather will be fine today"),
        ("fr", "beau temps prevu pour aujourd'hui"),
    ]
    assert message.namespaces == [("MyFeatures", "mid:MessageFeatures@id.foo.com")]
    assert message.required == ["MyFeatures.VitalMessageOption"]
    assert message.values("MyFeatures.WackyMessageOption") == ["Use-silly-font"]
    assert message.content_type == "text/xml; charset=utf-8"
    assert message.content.startswith(b"<body>")
    assert [h.name for h in message.headers][:3] == ["From", "To", "DateTime"]


def test_rfc7701_message_inside_msrp() -> None:
    """The CPIM body of RFC 7701 §9.3 F1 names the room and Alice, wrapping text/plain."""
    (send,) = FrameParser().feed(ex.ROOM_F1)
    assert isinstance(send, Request) and send.body is not None
    message = CpimMessage.parse(send.body)
    assert message.to[0].uri == "sip:chatroom22@chat.example.com;transport=tcp"
    assert message.from_[0].uri == "sip:alice@atlanta.example.com"
    assert message.content == b"Hello guys, how are you today?"
    assert message.encode() == send.body


def test_unusual_spacing_preserved() -> None:
    """Header bytes are kept exactly, including odd but legal values (RFC 3862 §2.2)."""
    body = (
        b"From: <sip:a@x>\r\nTo: <sip:b@x>\r\nX.Y: a  b\r\n\r\nContent-Type: text/plain\r\n\r\nhi"
    )
    assert CpimMessage.parse(body).encode() == body


def test_header_names_are_case_sensitive() -> None:
    """'from:' is not 'From:' (RFC 3862 §2.2)."""
    message = CpimMessage.parse(b"from: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\n")
    assert message.from_ == [] and message.values("from") == ["<sip:a@x>"]


@pytest.mark.parametrize(
    "body",
    [
        b"From: <sip:a@x>\r\nContent-Type: text/plain\r\n",  # no blank line
        b"From:<sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nx",  # no SP after colon
        b" From: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nx",  # leading space
        b"From: <sip:a@x> \r\n\r\nContent-Type: text/plain\r\n\r\nx",  # trailing space
        b"From: <sip:a\x01@x>\r\n\r\nContent-Type: text/plain\r\n\r\nx",  # control char
        b"From: <sip:a@x>\r\n\r\nContent-ID: <1>\r\n\r\nx",  # no Content-Type
        b"From: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\nx",  # entity not terminated
        b"From: <sip:a@x>\n\r\n\r\nContent-Type: text/plain\r\n\r\nx",  # bare LF
        b"From: \xff\r\n\r\nContent-Type: text/plain\r\n\r\nx",  # not UTF-8
    ],
)
def test_malformed_cpim_is_400(body: bytes) -> None:
    """Structural errors raise MsrpParseError (400)."""
    with pytest.raises(MsrpParseError):
        CpimMessage.parse(body)


def test_bad_address_raises_on_view() -> None:
    """A From that is not '[name] <URI>' raises 400 when looked at."""
    message = CpimMessage.parse(b"From: nobody\r\n\r\nContent-Type: text/plain\r\n\r\n")
    with pytest.raises(MsrpParseError):
        _ = message.from_


def test_build() -> None:
    """build() writes NS first, then From, To, cc, DateTime, Subject, Require, extras."""
    message = CpimMessage.build(
        from_=CpimAddress("sip:alice@example.com", "Alice"),
        to=[CpimAddress("sip:room@example.com")],
        cc=[CpimAddress("sip:carol@example.com")],
        datetime="2009-03-02T15:02:31-03:00",
        subject="hi",
        ns=["MyFeatures <mid:x@y>"],
        require=["MyFeatures.A", "MyFeatures.B"],
        extra_headers=[CpimHeader("MyFeatures.A", "1")],
        content_type="text/plain",
        content=b"Hello",
        entity_headers=[("Content-ID", "<1@x>")],
    )
    assert message.encode() == (
        b"NS: MyFeatures <mid:x@y>\r\nFrom: Alice <sip:alice@example.com>\r\n"
        b"To: <sip:room@example.com>\r\ncc: <sip:carol@example.com>\r\n"
        b"DateTime: 2009-03-02T15:02:31-03:00\r\nSubject: hi\r\n"
        b"Require: MyFeatures.A,MyFeatures.B\r\nMyFeatures.A: 1\r\n\r\n"
        b"Content-Type: text/plain\r\nContent-ID: <1@x>\r\n\r\nHello"
    )
    assert CpimMessage.parse(message.encode()) == message
    with pytest.raises(MsrpParseError):
        CpimMessage.build(
            from_=CpimAddress("sip:a@x"),
            to=[],
            content_type="text/plain",
            content=b"",
            subject="line\nbreak",
        )


def test_unescape() -> None:
    """RFC 3862 §2.3 escapes are decoded; unknown ones give the next character."""
    assert unescape(r"a\tb\nc\\d\"e\u0041\q") == 'a\tb\nc\\d"eAq'
    assert unescape("end\\") == "end"


_subject = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)
# Any name at all, control characters, quotes and '<' included: named() escapes them.
_name = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=200)
@given(
    name=st.none() | _name,
    subject=st.none() | _subject,
    content=st.binary(max_size=100),
)
def test_build_parse_round_trip(name: str | None, subject: str | None, content: bytes) -> None:
    """Built messages parse back to themselves, whatever the name and content bytes."""
    message = CpimMessage.build(
        from_=CpimAddress.named("sip:alice@example.com", name),
        to=[CpimAddress("sip:room@example.com")],
        subject=subject,
        content_type="application/octet-stream",
        content=content,
    )
    again = CpimMessage.parse(message.encode())
    assert again == message and again.content == content
    assert again.from_[0].display_name == name


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_msrp_error(data: bytes) -> None:
    """Arbitrary bytes parse or raise MsrpError, nothing else."""
    with contextlib.suppress(MsrpError):
        message = CpimMessage.parse(data)
        assert message.encode() == data
        _ = (message.from_, message.to, message.cc, message.namespaces, message.subjects)


def test_quoted_formal_name() -> None:
    """A Formal-name may be a quoted String containing '<' and escapes (RFC 3862 §3.6)."""
    address = CpimAddress.parse('"Alice <the \\"great\\">" <sip:alice@example.com>')
    assert address.uri == "sip:alice@example.com"
    assert unescape(address.formal_name or "") == '"Alice <the "great">"'
