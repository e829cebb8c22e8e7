"""Load a policy from TOML, with errors that name the file, the line and the key.

The file has three kinds of sections (see ``examples/demo.toml`` for every key, with
comments):

- ``[defaults]`` (optional): room settings every room and ad-hoc rule inherits, with the
  sub-tables ``[defaults.rate_limit]`` and ``[defaults.retry]``;
- ``[[room]]`` (any number): a static room with ``uri``, optional ``display_name`` and
  ``subject``, any room setting, and ``[[room.dial_out]]`` members;
- ``[[adhoc]]`` (any number): an ad-hoc rule with ``pattern`` (``sip:*@host``),
  ``creators``, optional ``display_name``/``subject`` and any room setting.

Inheritance is per key: built-in default ← ``[defaults]`` ← the room.  The sub-tables
``rate_limit`` and ``retry`` inherit per field, so a room may set only ``retry.attempts``.
A dial-out member may override ``attempts``, ``backoff``, ``backoff_factor`` and
``answer_timeout`` of the room's retry policy.

Unknown keys are errors: a typo must never pass silently (``max_participant = 3`` would
otherwise leave the default in force).  Syntax errors carry tomllib's line and column.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import attrs

from policies._locate import Path as KeyPath
from policies._locate import SourceError, key_lines, line_of, read_source
from policies.errors import PolicyError, PolicyLoadError
from policies.model import (
    AdhocRule,
    DialOutMember,
    Policy,
    RetryPolicy,
    Room,
    RoomSettings,
)
from policies.uri import Identity, UriPattern

__all__ = ["MAX_POLICY_SIZE", "example_path", "load_policy", "parse_policy"]

MAX_POLICY_SIZE = 1024 * 1024
"""Bytes; a policy file is configuration, not data."""


class _Invalid(Exception):
    def __init__(self, path: KeyPath, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _render(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out += f".{name}" if out else name
    return out


# -- value checkers: (value, path) -> converted value, or _Invalid -------------------------


def _fail(path: KeyPath, reason: str) -> NoReturn:
    raise _Invalid(path, reason)


def _bool(value: object, path: KeyPath) -> bool:
    if not isinstance(value, bool):
        _fail(path, "must be true or false")
    return value


def _int(value: object, path: KeyPath) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "must be an integer")
    if value < 1:
        _fail(path, "must be at least 1")
    return value


def _seconds(value: object, path: KeyPath) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        _fail(path, "must be a positive number")
    return float(value)


def _number(value: object, path: KeyPath) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "must be a number")
    if not math.isfinite(value) or value <= 0:
        _fail(path, "must be a positive number")
    return float(value)


def _text(value: object, path: KeyPath) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    if any(c in value for c in "\r\n\x00"):
        _fail(path, "must be a single line")
    return value


def _list(value: object, path: KeyPath) -> list[object]:
    if not isinstance(value, list):
        _fail(path, "must be a list")
    return value


def _strings(value: object, path: KeyPath) -> tuple[str, ...]:
    return tuple(_text(v, (*path, i)) for i, v in enumerate(_list(value, path)))


def _patterns(value: object, path: KeyPath) -> tuple[UriPattern, ...]:
    out: list[UriPattern] = []
    for i, item in enumerate(_list(value, path)):
        try:
            out.append(UriPattern.parse(_text(item, (*path, i))))
        except PolicyError as exc:
            _fail((*path, i), exc.reason)
    return tuple(out)


def _uri(value: object, path: KeyPath) -> Identity:
    try:
        identity = Identity.parse(_text(value, path))
    except PolicyError as exc:
        _fail(path, exc.reason)
    if identity.scheme not in ("sip", "sips") or identity.user is None:
        _fail(path, "must be a sip: or sips: URI with a user part")
    return identity


def _cipher_suites(value: object, path: KeyPath) -> tuple[str, ...]:
    # Accept a list of names or one OpenSSL cipher string "A:B:C".
    if isinstance(value, str):
        return tuple(value.split(":"))
    return _strings(value, path)


def _table(value: object, path: KeyPath) -> Mapping[str, object]:
    if not isinstance(value, dict):
        _fail(path, "must be a table")
    return value


Checker = Callable[[object, KeyPath], Any]

_RATE_KEYS: dict[str, Checker] = {"messages_per_second": _number, "burst": _int}
_RETRY_KEYS: dict[str, Checker] = {
    "attempts": _int,
    "backoff": _seconds,
    "backoff_factor": _number,
    "answer_timeout": _seconds,
}
_SETTINGS_KEYS: dict[str, Checker] = {
    "max_participants": _int,
    "require_cpim": _bool,
    "accept_wrapped_types": _strings,
    "max_message_size": _int,
    "leg_bind_timeout": _seconds,
    "cipher_suites": _cipher_suites,
    "nicknames": _bool,
    "private_messages": _bool,
    "allow": _patterns,
    "deny": _patterns,
    "may_invite": _patterns,
    "moderators": _patterns,
    "watchers": _patterns,
    "enabled": _bool,
}
_NESTED = {"rate_limit": _RATE_KEYS, "retry": _RETRY_KEYS}
_ROOM_ONLY = {"uri", "display_name", "subject", "dial_out"}
_ADHOC_ONLY = {"pattern", "creators", "display_name", "subject"}
_MEMBER_KEYS = {"uri", "display_name", *_RETRY_KEYS}


def _check_keys(table: Mapping[str, object], allowed: set[str], path: KeyPath) -> None:
    for key in table:
        if key not in allowed:
            hint = _suggest(key, allowed)
            _fail((*path, key), "unknown key" + (f" (did you mean {hint}?)" if hint else ""))


def _suggest(key: str, allowed: set[str]) -> str | None:
    import difflib  # only on the error path

    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return close[0] if close else None


def _evolve(value: Any, changes: dict[str, Any], path: KeyPath) -> Any:
    """attrs.evolve one key at a time, so a validator's complaint names its key."""
    for key, new in changes.items():
        try:
            value = attrs.evolve(value, **{key: new})
        except (ValueError, TypeError) as exc:
            _fail((*path, key), str(exc))
    return value


def _nested(base: Any, value: object, keys: dict[str, Checker], path: KeyPath) -> Any:
    table = _table(value, path)
    _check_keys(table, set(keys), path)
    return _evolve(base, {k: keys[k](v, (*path, k)) for k, v in table.items()}, path)


def _settings(table: Mapping[str, object], base: RoomSettings, path: KeyPath) -> RoomSettings:
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key in _SETTINGS_KEYS:
            changes[key] = _SETTINGS_KEYS[key](value, (*path, key))
        elif key in _NESTED:
            changes[key] = _nested(getattr(base, key), value, _NESTED[key], (*path, key))
    settings: RoomSettings = _evolve(base, changes, path)
    return settings


def _optional_text(table: Mapping[str, object], key: str, path: KeyPath) -> str | None:
    return None if key not in table else _text(table[key], (*path, key))


def _require(table: Mapping[str, object], key: str, path: KeyPath) -> object:
    if key not in table:
        _fail(path, f"missing required key {key!r}")
    return table[key]


def _member(value: object, retry: RetryPolicy, path: KeyPath) -> DialOutMember:
    table = _table(value, path)
    _check_keys(table, _MEMBER_KEYS, path)
    uri = _uri(_require(table, "uri", path), (*path, "uri"))
    overrides = {k: v for k, v in table.items() if k in _RETRY_KEYS}
    member_retry: RetryPolicy = _nested(retry, overrides, _RETRY_KEYS, path)
    return DialOutMember(uri, member_retry, _optional_text(table, "display_name", path))


def _room(value: object, defaults: RoomSettings, path: KeyPath) -> Room:
    table = _table(value, path)
    _check_keys(table, {*_ROOM_ONLY, *_SETTINGS_KEYS, *_NESTED}, path)
    uri = _uri(_require(table, "uri", path), (*path, "uri"))
    settings = _settings(table, defaults, path)
    members = tuple(
        _member(m, settings.retry, (*path, "dial_out", i))
        for i, m in enumerate(_list(table.get("dial_out", []), (*path, "dial_out")))
    )
    seen: set[Identity] = set()
    for i, member in enumerate(members):
        if member.uri in seen:
            _fail((*path, "dial_out", i, "uri"), f"{member.uri} is listed twice")
        seen.add(member.uri)
    return Room(
        uri=uri,
        settings=settings,
        display_name=_optional_text(table, "display_name", path),
        subject=_optional_text(table, "subject", path),
        dial_out=members,
    )


def _adhoc(value: object, defaults: RoomSettings, path: KeyPath) -> AdhocRule:
    table = _table(value, path)
    _check_keys(table, {*_ADHOC_ONLY, *_SETTINGS_KEYS, *_NESTED}, path)
    raw = _text(_require(table, "pattern", path), (*path, "pattern"))
    try:
        pattern = UriPattern.parse(raw)
    except PolicyError as exc:
        _fail((*path, "pattern"), exc.reason)
    if not pattern.any_user:
        _fail((*path, "pattern"), "an ad-hoc pattern must look like sip:*@host")
    return AdhocRule(
        pattern=pattern,
        creators=_patterns(table.get("creators", []), (*path, "creators")),
        settings=_settings(table, defaults, path),
        display_name=_optional_text(table, "display_name", path),
        subject=_optional_text(table, "subject", path),
    )


def _policy(document: Mapping[str, object], source: str) -> Policy:
    _check_keys(document, {"defaults", "room", "adhoc"}, ())
    defaults_table = _table(document.get("defaults", {}), ("defaults",))
    _check_keys(defaults_table, {*_SETTINGS_KEYS, *_NESTED}, ("defaults",))
    defaults = _settings(defaults_table, RoomSettings(), ("defaults",))
    rooms = tuple(
        _room(r, defaults, ("room", i))
        for i, r in enumerate(_list(document.get("room", []), ("room",)))
    )
    seen: dict[Identity, int] = {}
    for i, room in enumerate(rooms):
        if room.uri in seen:
            _fail(
                ("room", i, "uri"), f"room {room.uri} is already defined in room[{seen[room.uri]}]"
            )
        seen[room.uri] = i
    adhoc = tuple(
        _adhoc(a, defaults, ("adhoc", i))
        for i, a in enumerate(_list(document.get("adhoc", []), ("adhoc",)))
    )
    return Policy(defaults=defaults, rooms=rooms, adhoc=adhoc, source=source)


_SYNTAX_POSITION_RE = re.compile(r"\(at line (\d+), column (\d+)\)|\(at end of document\)")


def parse_policy(text: str, filename: str = "<policy>") -> Policy:
    """Build a :class:`Policy` from TOML text; raise :class:`PolicyLoadError` (only)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_SIZE:
        raise PolicyLoadError(f"larger than {MAX_POLICY_SIZE} bytes", filename=filename)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _SYNTAX_POSITION_RE.search(message)
        reason = _SYNTAX_POSITION_RE.sub("", message).strip()
        line = column = None
        if m is not None and m.group(1) is not None:
            line, column = int(m.group(1)), int(m.group(2))
        elif m is not None:  # "at end of document": the last line
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
        raise PolicyLoadError(
            f"TOML syntax: {reason}", filename=filename, line=line, column=column
        ) from None
    try:
        return _policy(document, filename)
    except _Invalid as exc:
        raise PolicyLoadError(
            exc.reason,
            filename=filename,
            line=line_of(key_lines(text), exc.path),
            key=_render(exc.path) or None,
        ) from None


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and parse a policy file (UTF-8 TOML, at most :data:`MAX_POLICY_SIZE` bytes)."""
    filename = os.fspath(path)
    try:
        text = read_source(filename, MAX_POLICY_SIZE)
    except SourceError as exc:
        raise PolicyLoadError(exc.reason, filename=filename, line=exc.line) from None
    return parse_policy(text, filename)


def example_path(name: str) -> Path:
    """The path of a shipped example policy, e.g. ``example_path("demo.toml")``."""
    path = Path(str(resources.files("policies").joinpath("examples", name)))
    if not path.is_file():
        raise PolicyError(f"no example policy named {name!r}")
    return path
