"""Chat lines in, CPIM on the wire, JSON lines out (RFC 3862, RFC 7701 §5-§7)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import CpimMessage, MsrpError
from ue.chat import (
    Chat,
    InputError,
    Nick,
    Private,
    Received,
    bare_uri,
    build_cpim,
    describe_received,
    parse_input_line,
)

ROOM = "sip:lobby@conf.example.net"
ALICE = "sip:alice@example.net"
BOB = "sip:bob@example.net"


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello\n", Chat("hello")),
        ("  spaced out  \r\n", Chat("  spaced out  ")),
        ("/msg sip:bob@example.net hi there\n", Private(BOB, "hi there")),
        ("/msg <sip:bob@example.net> hi\n", Private(BOB, "hi")),
        ("/nick Al Bundy\n", Nick("Al Bundy")),
        ("//nick is not a command\n", Chat("/nick is not a command")),
    ],
)
def test_input_lines_become_commands(line: str, command: object) -> None:
    """Plain lines are chat, /msg is private, /nick asks for a nickname, // escapes."""
    assert parse_input_line(line) == command


@pytest.mark.parametrize("line", ["", "\n", "   \r\n"])
def test_blank_lines_send_nothing(line: str) -> None:
    """An empty or blank line is not sent."""
    assert parse_input_line(line) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/msg\n", "usage: /msg URI text"),
        ("/msg sip:bob@example.net\n", "usage: /msg URI text"),
        ("/msg bob hello\n", "is not a URI"),
        ("/nick\n", "usage: /nick"),
        ("/quit\n", "unknown command /quit"),
    ],
)
def test_malformed_commands_are_refused_not_sent(line: str, message: str) -> None:
    """A line that looks like a command but is not a valid one raises InputError."""
    with pytest.raises(InputError, match=message):
        parse_input_line(line)


def test_bare_uri_strips_display_name_and_brackets() -> None:
    """Bare URIs have no display name and no angle brackets (PROFILE §1)."""
    assert bare_uri('"Bob" <sip:bob@example.net>') == BOB
    assert bare_uri(" sip:bob@example.net ") == BOB


def test_cpim_body_is_exactly_rfc3862() -> None:
    """From, To, blank line, the inner Content-Type, blank line, the UTF-8 text."""
    body = build_cpim(sender=ALICE, to=ROOM, text="grüß dich")
    assert body == (
        b"From: <sip:alice@example.net>\r\n"
        b"To: <sip:lobby@conf.example.net>\r\n"
        b"\r\n"
        b"Content-Type: text/plain;charset=utf-8\r\n"
        b"\r\n" + "grüß dich".encode()
    )
    parsed = CpimMessage.parse(body)
    assert [a.uri for a in parsed.from_] == [ALICE]
    assert [a.uri for a in parsed.to] == [ROOM]
    assert parsed.content_type == "text/plain;charset=utf-8"


def test_received_room_message_is_not_private() -> None:
    """A CPIM message to the room is reported with private = false."""
    body = build_cpim(sender=BOB, to=ROOM, text="hi all")
    received = describe_received(room=ROOM, content_type="message/cpim", body=body)
    assert received == Received(BOB, ROOM, "text/plain;charset=utf-8", "hi all", private=False)


def test_received_private_message_is_private() -> None:
    """A CPIM message whose To is not the room is private (RFC 7701 §6.2)."""
    body = build_cpim(sender=BOB, to=ALICE, text="just you")
    received = describe_received(room=ROOM, content_type="Message/CPIM", body=body)
    assert received.private is True
    assert received.to == ALICE


def test_room_comparison_follows_sip_uri_rules() -> None:
    """The room URI compares with RFC 3261 §19.1.4 rules (host case-insensitive)."""
    body = build_cpim(sender=BOB, to="sip:lobby@CONF.example.net", text="x")
    assert describe_received(room=ROOM, content_type="message/cpim", body=body).private is False


def test_unwrapped_message_is_reported_as_is() -> None:
    """A non-CPIM body (legacy focus) is shown with unknown from/to."""
    received = describe_received(room=ROOM, content_type="text/plain", body=b"raw")
    assert received == Received(None, None, "text/plain", "raw", private=False)


def test_malformed_cpim_raises_the_msrp_error() -> None:
    """A CPIM body without headers terminator raises MsrpError (answered 400)."""
    with pytest.raises(MsrpError) as caught:
        describe_received(room=ROOM, content_type="message/cpim", body=b"From: <sip:x@y>")
    assert caught.value.status == 400


def test_json_line_has_the_documented_keys_on_one_line() -> None:
    """One JSON object per line with from, to, content_type, body and private."""
    line = Received(BOB, ROOM, "text/plain", "two\nlines", private=False).to_json()
    assert "\n" not in line
    assert json.loads(line) == {
        "from": BOB,
        "to": ROOM,
        "content_type": "text/plain",
        "body": "two\nlines",
        "private": False,
    }


@settings(max_examples=100)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_round_trips_through_cpim(text: str) -> None:
    """Whatever text is sent comes back unchanged from the CPIM body."""
    body = build_cpim(sender=ALICE, to=ROOM, text=text)
    received = describe_received(room=ROOM, content_type="message/cpim", body=body)
    assert received.body == text
    assert received.from_ == ALICE
