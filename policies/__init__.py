"""Operator policy: model, TOML loader with line-accurate errors, evaluation.

Pure: no I/O besides :func:`load_policy` reading the file it is given, no clock, no
randomness.
"""

from policies._locate import SourceError, key_lines, line_of, read_source
from policies.errors import PolicyError, PolicyLoadError
from policies.evaluation import (
    Allowed,
    Decision,
    Limits,
    Refused,
    dial_out_members,
    find_room,
    is_moderator,
    limits,
    may_invite,
    may_join,
    may_watch,
)
from policies.loader import MAX_POLICY_SIZE, example_path, load_policy, parse_policy
from policies.model import (
    DEFAULT_CIPHER_SUITES,
    AdhocRule,
    DialOutMember,
    Policy,
    RateLimit,
    RetryPolicy,
    Room,
    RoomSettings,
)
from policies.uri import Identity, UriPattern, normalize_uri

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "MAX_POLICY_SIZE",
    "AdhocRule",
    "Allowed",
    "Decision",
    "DialOutMember",
    "Identity",
    "Limits",
    "Policy",
    "PolicyError",
    "PolicyLoadError",
    "RateLimit",
    "Refused",
    "RetryPolicy",
    "Room",
    "RoomSettings",
    "SourceError",
    "UriPattern",
    "dial_out_members",
    "example_path",
    "find_room",
    "is_moderator",
    "key_lines",
    "limits",
    "line_of",
    "load_policy",
    "may_invite",
    "may_join",
    "may_watch",
    "normalize_uri",
    "parse_policy",
    "read_source",
]
