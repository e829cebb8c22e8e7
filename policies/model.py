"""The operator policy as frozen values.

A :class:`Policy` has static :class:`Room` entries (one conference URI each), ad-hoc
:class:`AdhocRule` entries (a URI pattern under which rooms come into being when a
permitted creator dials in), and the :class:`RoomSettings` every room inherits from the
``[defaults]`` section.  Built-in defaults (below, and in ``examples/*.toml``):

================================  =============================================
``max_participants``              50
``require_cpim``                  true (RFC 7701 §5: the focus only relays CPIM)
``accept_wrapped_types``          ``["*"]`` (anything inside the CPIM wrapper)
``max_message_size``              65536 bytes (whole message, sent as a=max-size)
``rate_limit``                    5 messages per second, burst 20
``leg_bind_timeout``              10 s from ACK until the MSRP leg is bound
``cipher_suites``                 the PROFILE §9 list
``nicknames`` / ``private_messages``  true / true (RFC 7701 §7, §6.2)
``allow`` / ``deny``              nobody / nobody
``may_invite``                    nobody besides moderators
``moderators`` / ``watchers``     nobody / nobody besides participants
``retry`` (dial-out)              3 attempts, 30 s apart (factor 1), ring 60 s
``enabled``                       true (false: joins refused with 480)
================================  =============================================

Values are validated on construction (attrs validators raise ValueError); the loader
turns every mistake in a file into a :class:`~policies.PolicyLoadError` first.
"""

from __future__ import annotations

import math
import re

import attrs

from policies.uri import Identity, UriPattern

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "AdhocRule",
    "DialOutMember",
    "Policy",
    "RateLimit",
    "RetryPolicy",
    "Room",
    "RoomSettings",
]

DEFAULT_CIPHER_SUITES: tuple[str, ...] = (
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-PSK-AES128-CBC-SHA256",
    "DHE-PSK-AES128-GCM-SHA256",
    "PSK-AES128-GCM-SHA256",
)
"""PROFILE §9, forward-secret first."""

MAX_MESSAGE_SIZE_LIMIT = 16 * 1024 * 1024
_CIPHER_RE = re.compile(r"[A-Z0-9][A-Z0-9\-]*")
_MEDIA_TYPE_RE = re.compile(r"\*|[A-Za-z0-9!#$&^_.+\-]+/(?:\*|[A-Za-z0-9!#$&^_.+\-]+)")


def _positive_number(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{attribute.name} must be a number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive number")


def _positive_int(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer")


def _cipher_suites(_inst: object, _attribute: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("cipher_suites must name at least one suite")
    for suite in value:
        if not _CIPHER_RE.fullmatch(suite) or "PSK" not in suite:
            raise ValueError(f"{suite!r} is not an OpenSSL TLS-PSK suite name")
        # PROFILE §9: never NULL ciphers, never RSA-PSK (it needs a certificate).
        if "NULL" in suite or suite.startswith("RSA-PSK"):
            raise ValueError(f"{suite} is forbidden (PROFILE §9: no NULL, no RSA-PSK)")


def _media_types(_inst: object, _attribute: object, value: tuple[str, ...]) -> None:
    for item in value:
        if not _MEDIA_TYPE_RE.fullmatch(item):
            raise ValueError(f"{item!r} is not a media type, type/* or *")


def _patterns(value: object) -> tuple[UriPattern, ...]:
    """Accept patterns or their text (for building policies in code and tests)."""
    if not isinstance(value, list | tuple):
        raise TypeError("a pattern list must be a list")
    return tuple(p if isinstance(p, UriPattern) else UriPattern.parse(p) for p in value)


@attrs.frozen
class RateLimit:
    """Token bucket per participant for the messages it sends: ``messages_per_second`` is
    the refill rate, ``burst`` the bucket size.  What happens to a message over the limit
    is the MSRP switch's decision."""

    messages_per_second: float = attrs.field(default=5.0, validator=_positive_number)
    burst: int = attrs.field(default=20, validator=_positive_int)


@attrs.frozen
class RetryPolicy:
    """How the focus dials out to a member: ``attempts`` INVITEs in all, waiting
    ``backoff`` seconds before the second, multiplied by ``backoff_factor`` before each
    later one, each INVITE ringing at most ``answer_timeout`` seconds."""

    attempts: int = attrs.field(default=3, validator=_positive_int)
    backoff: float = attrs.field(default=30.0, validator=_positive_number)
    backoff_factor: float = attrs.field(default=1.0, validator=_positive_number)
    answer_timeout: float = attrs.field(default=60.0, validator=_positive_number)

    def delay_before(self, attempt: int) -> float | None:
        """Seconds to wait before attempt number ``attempt`` (1-based); 0 for the first,
        None when no such attempt is allowed."""
        if attempt < 1 or attempt > self.attempts:
            return None
        if attempt == 1:
            return 0.0
        return float(self.backoff * self.backoff_factor ** (attempt - 2))


@attrs.frozen
class DialOutMember:
    """A member the focus invites when the room starts (dial-out)."""

    uri: Identity
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    display_name: str | None = None


@attrs.frozen
class RoomSettings:
    """Everything a room can inherit from ``[defaults]``."""

    max_participants: int = attrs.field(default=50, validator=_positive_int)
    require_cpim: bool = True
    accept_wrapped_types: tuple[str, ...] = attrs.field(default=("*",), validator=_media_types)
    max_message_size: int = attrs.field(default=65536, validator=_positive_int)
    rate_limit: RateLimit = attrs.field(factory=RateLimit)
    leg_bind_timeout: float = attrs.field(default=10.0, validator=_positive_number)
    cipher_suites: tuple[str, ...] = attrs.field(
        default=DEFAULT_CIPHER_SUITES, validator=_cipher_suites
    )
    nicknames: bool = True
    private_messages: bool = True
    allow: tuple[UriPattern, ...] = attrs.field(default=(), converter=_patterns)
    deny: tuple[UriPattern, ...] = attrs.field(default=(), converter=_patterns)
    may_invite: tuple[UriPattern, ...] = attrs.field(default=(), converter=_patterns)
    moderators: tuple[UriPattern, ...] = attrs.field(default=(), converter=_patterns)
    watchers: tuple[UriPattern, ...] = attrs.field(default=(), converter=_patterns)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    enabled: bool = True

    @max_message_size.validator
    def _check_size(self, _attribute: object, value: int) -> None:
        if value > MAX_MESSAGE_SIZE_LIMIT:
            raise ValueError(f"max_message_size must be at most {MAX_MESSAGE_SIZE_LIMIT}")

    @property
    def cipher_string(self) -> str:
        """The suites as an OpenSSL cipher string."""
        return ":".join(self.cipher_suites)


@attrs.frozen
class Room:
    """A conference room: its URI, settings, and (static rooms) dial-out members.

    ``adhoc`` names the rule an ad-hoc room was made from (None for static rooms).
    """

    uri: Identity
    settings: RoomSettings = attrs.field(factory=RoomSettings)
    display_name: str | None = None
    subject: str | None = None
    dial_out: tuple[DialOutMember, ...] = ()
    adhoc: AdhocRule | None = None


@attrs.frozen
class AdhocRule:
    """Rooms created on demand: any Request-URI matching ``pattern`` (``sip:*@host``)
    names a room, which the first caller may create when matching ``creators``."""

    pattern: UriPattern = attrs.field()
    creators: tuple[UriPattern, ...] = attrs.field(default=(), converter=_patterns)
    settings: RoomSettings = attrs.field(factory=RoomSettings)
    display_name: str | None = None
    subject: str | None = None

    @pattern.validator
    def _check_pattern(self, _attribute: object, value: UriPattern) -> None:
        if not value.any_user:
            raise ValueError("an ad-hoc pattern must look like sip:*@host")


@attrs.frozen
class Policy:
    """The whole policy: defaults, static rooms (unique URIs), ad-hoc rules in order."""

    defaults: RoomSettings = attrs.field(factory=RoomSettings)
    rooms: tuple[Room, ...] = attrs.field(default=())
    adhoc: tuple[AdhocRule, ...] = ()
    source: str | None = attrs.field(default=None, eq=False)

    @rooms.validator
    def _check_unique(self, _attribute: object, value: tuple[Room, ...]) -> None:
        seen: set[Identity] = set()
        for room in value:
            if room.uri in seen:
                raise ValueError(f"room {room.uri} is defined twice")
            seen.add(room.uri)
