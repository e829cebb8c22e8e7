"""The chat side of the UE, without I/O: input lines, CPIM bodies, JSON output lines.

- :func:`parse_input_line` turns one stdin line into a :class:`Chat`, :class:`Private` or
  :class:`Nick` command (``/msg URI text``, ``/nick N``; anything else is chat text).
- :func:`build_cpim` wraps text in Message/CPIM (RFC 3862) as RFC 7701 §5 requires of
  every message to a chat room: ``From`` = our identity, ``To`` = the room URI for a
  regular message or a participant URI for a private message (RFC 7701 §6.2), inner
  ``Content-Type: text/plain;charset=utf-8``.
- :func:`describe_received` turns a received MSRP message into a :class:`Received`
  value, and :meth:`Received.to_json` gives the one JSON object per line the CLI prints:
  ``{"from", "to", "content_type", "body", "private"}``.
"""

from __future__ import annotations

import json

import attrs

from focus.msrp import CpimAddress, CpimMessage, MsrpError, is_cpim, same_uri

__all__ = [
    "CPIM",
    "TEXT_PLAIN",
    "Chat",
    "InputCommand",
    "InputError",
    "Nick",
    "Private",
    "Received",
    "bare_uri",
    "build_cpim",
    "describe_received",
    "parse_input_line",
]

CPIM = "message/cpim"
TEXT_PLAIN = "text/plain;charset=utf-8"


class InputError(ValueError):
    """A stdin line that looks like a command but cannot be one (e.g. ``/msg`` alone)."""


@attrs.frozen
class Chat:
    """Send ``text`` to everyone in the room."""

    text: str


@attrs.frozen
class Private:
    """Send ``text`` to one participant only (RFC 7701 §6.2: CPIM To = ``to``)."""

    to: str
    text: str


@attrs.frozen
class Nick:
    """Ask the focus for a nickname (RFC 7701 §7: NICKNAME with Use-Nickname)."""

    nickname: str


InputCommand = Chat | Private | Nick


def parse_input_line(line: str) -> InputCommand | None:
    """One line of stdin (without its line end) as a command; None for an empty line.

    ``/msg URI text`` is a private message, ``/nick N`` a nickname request; a line that
    starts with ``//`` sends the rest with one ``/`` removed, so any text can be chatted.
    Other lines starting with ``/`` are refused rather than sent by mistake.
    """
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.startswith("//"):
        return Chat(line[1:])
    if not line.startswith("/"):
        return Chat(line)
    word, _, rest = line.partition(" ")
    if word == "/msg":
        to, _, text = rest.strip().partition(" ")
        if not to or not text.strip():
            raise InputError("usage: /msg URI text")
        if ":" not in to:
            raise InputError(f"/msg: {to!r} is not a URI (sip:user@host)")
        return Private(bare_uri(to), text)
    if word == "/nick":
        nickname = rest.strip()
        if not nickname:
            raise InputError("usage: /nick NICKNAME")
        return Nick(nickname)
    raise InputError(f"unknown command {word} (use //text to send a line starting with /)")


def bare_uri(text: str) -> str:
    """A URI without angle brackets or display name (``Bob <sip:b@x>`` → ``sip:b@x``)."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        return text[text.rindex("<") + 1 : -1]
    return text


def build_cpim(*, sender: str, to: str, text: str) -> bytes:
    """The Message/CPIM body of one chat message (RFC 3862 §3, RFC 7701 §5)."""
    message = CpimMessage.build(
        from_=CpimAddress(sender),
        to=[CpimAddress(to)],
        content_type=TEXT_PLAIN,
        content=text.encode("utf-8"),
    )
    return message.encode()


@attrs.frozen
class Received:
    """One message as the CLI reports it (from/to bare URIs of the CPIM headers)."""

    from_: str | None
    to: str | None
    content_type: str | None
    body: str
    private: bool

    def to_json(self) -> str:
        """One line of JSON (no newline inside: strings are escaped)."""
        return json.dumps(
            {
                "from": self.from_,
                "to": self.to,
                "content_type": self.content_type,
                "body": self.body,
                "private": self.private,
            },
            ensure_ascii=False,
        )


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def describe_received(*, room: str, content_type: str | None, body: bytes) -> Received:
    """What a received MSRP message says, for printing.

    A ``message/cpim`` body gives From/To (bare URIs) and the inner content; ``private``
    is true when the CPIM To is not the room (RFC 7701 §6.2). A body of another type
    (a legacy focus) is reported as it is, with from/to unknown. Raises
    :class:`~focus.msrp.MsrpError` (400) for a malformed CPIM body.
    """
    if content_type is None or not is_cpim(content_type):
        return Received(None, None, content_type, _text(body), private=False)
    message = CpimMessage.parse(body)
    senders = message.from_
    recipients = message.to
    if len(senders) != 1:
        raise MsrpError("CPIM message without exactly one From")
    to = recipients[0].uri if recipients else None
    private = to is not None and not same_uri(to, room)
    return Received(
        senders[0].uri, to, message.content_type, _text(message.content), private=private
    )
