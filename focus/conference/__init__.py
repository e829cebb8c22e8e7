"""The conference core: rooms, participants, admission, relay decisions, roster.

Pure (no Twisted, no clock, no randomness: ``now`` and leg ids are parameters).

``Conference(policy)``
    ``admit(request_uri=, caller=, leg_id=, call_id=, display_name=None) -> Participant``
    (raises :class:`AdmissionRefused` 404/403/480/486), ``set_capabilities(leg_id,
    Capabilities)``, ``advance(leg_id, LegEvent) -> LegState`` (the leg's state table),
    ``confirm(leg_id, dialog_id)`` (ACK), ``relay(leg_id, content_type, body, now) ->
    Relay`` (raises :class:`RelayRefused` with the MSRP status), ``nickname(leg_id,
    use_nickname) -> str | None``, ``leave(leg_id) -> Departure``, ``roster(room_uri) ->
    Roster``, ``reload(policy)``, ``participant(leg_id)``, ``room_of(leg_id)``.
"""

from .core import Conference, Delivery, Departure, LiveRoom, Relay, Roster, RosterEntry
from .errors import AdmissionRefused, ConferenceError, RelayRefused, UnknownLeg
from .participant import Capabilities, Direction, LegEvent, LegState, Participant, next_state
from .ratelimit import TokenBucket

__all__ = [
    "AdmissionRefused",
    "Capabilities",
    "Conference",
    "ConferenceError",
    "Delivery",
    "Departure",
    "Direction",
    "LegEvent",
    "LegState",
    "LiveRoom",
    "Participant",
    "Relay",
    "RelayRefused",
    "Roster",
    "RosterEntry",
    "TokenBucket",
    "UnknownLeg",
    "next_state",
]
