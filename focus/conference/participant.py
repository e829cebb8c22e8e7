"""One participant per leg: its identity, what its SDP declared, and its leg's state.

The leg's life is a state table (one row per allowed transition); an event the table
does not list for the current state is a protocol fault that ends the leg (GONE), the
way h11 and h2 treat undefined (state, event) pairs.

    KEYING ──answered──▶ LISTENING ──leg_up──▶ UP ──session_bound──▶ BOUND
      │                     │                   │                      │
      └──────────────────── left ───────────────┴──────────────────────┴──▶ GONE

KEYING: admitted, MIKEY-TICKET and KMS in progress (the participant already counts
against ``max_participants``, so concurrent callers cannot overfill a room).
LISTENING: 200 OK sent, the passive TLS-PSK leg listens on its own port.
UP: the TLS-PSK handshake completed (the PSK is proven).  BOUND: the participant's
first MSRP request bound the session (RFC 4975 §5.4); only BOUND participants receive.
The SIP ACK is tracked separately (``confirmed``): the TLS connection may come first.
"""

from __future__ import annotations

import enum

import attrs

from .errors import ConferenceError
from .ratelimit import TokenBucket

__all__ = [
    "Capabilities",
    "Direction",
    "LegEvent",
    "LegState",
    "Participant",
    "next_state",
]


class LegState(enum.Enum):
    KEYING = "keying"
    LISTENING = "listening"
    UP = "up"
    BOUND = "bound"
    GONE = "gone"


class LegEvent(enum.Enum):
    ANSWERED = "answered"
    LEG_UP = "leg-up"
    SESSION_BOUND = "session-bound"
    LEFT = "left"


class Direction(enum.Enum):
    """Who called: the participant (dial-in) or the focus (dial-out, a later issue)."""

    DIAL_IN = "dial-in"
    DIAL_OUT = "dial-out"


_TABLE: dict[tuple[LegState, LegEvent], LegState] = {
    (LegState.KEYING, LegEvent.ANSWERED): LegState.LISTENING,
    (LegState.LISTENING, LegEvent.LEG_UP): LegState.UP,
    (LegState.UP, LegEvent.SESSION_BOUND): LegState.BOUND,
    # A re-bind report on a bound leg changes nothing.
    (LegState.BOUND, LegEvent.SESSION_BOUND): LegState.BOUND,
    **{(state, LegEvent.LEFT): LegState.GONE for state in LegState},
}


def next_state(state: LegState, event: LegEvent) -> LegState:
    """The table lookup; raises :class:`ConferenceError` for an undefined pair."""
    try:
        return _TABLE[(state, event)]
    except KeyError:
        raise ConferenceError(f"leg event {event.value} in state {state.value}") from None


@attrs.frozen
class Capabilities:
    """What a participant's SDP declared (RFC 4975 §8.6, RFC 7701 §8)."""

    accept_types: tuple[str, ...] = ("message/cpim",)
    accept_wrapped_types: tuple[str, ...] = ("*",)
    private_messages: bool = False
    nicknames: bool = False
    max_size: int | None = None


@attrs.define
class Participant:
    """One participant session (a user joined from two UAs is two participants).

    ``leg_id`` names the leg everywhere (logs, legs, deliveries); ``dialog_id`` is the
    SIP dialog's Call-ID (and tags, once known).  Mutated only by the Conference.
    """

    leg_id: str
    uri: str
    room_uri: str
    call_id: str
    bucket: TokenBucket
    direction: Direction = Direction.DIAL_IN
    display_name: str | None = None
    dialog_id: object | None = None
    capabilities: Capabilities = attrs.field(factory=Capabilities)
    state: LegState = LegState.KEYING
    confirmed: bool = False
    nickname: str | None = None
    nickname_key: str | None = None

    @property
    def receives(self) -> bool:
        """Whether messages may be sent to it now (its session is bound)."""
        return self.state is LegState.BOUND
