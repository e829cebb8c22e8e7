"""Structured event logs of the focus: one line per significant event.

Events (join, leave, key failure, relay error, ready, policy reload ...) are emitted
through a ``twisted.logger.Logger`` with a ``focus_event`` field and the identifying
fields ``call_id``, ``room`` and ``leg_id`` (DESIGN: "servers log one structured line per
significant event").  :func:`event_observer` writes exactly those events as JSON lines or
as ``key=value`` text to the configured destination; twistd's own log keeps everything.

Values are never keys: callers pass identities, statuses and reasons only, and this
module refuses to write a field whose value is ``bytes`` (PSKs, TEKs and MIKEY messages
are bytes; a mistake shows up as ``<bytes withheld>``, never as hex).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO, Any

from twisted.logger import ILogObserver, Logger, LogLevel, formatEvent
from zope.interface import provider  # type: ignore[import-untyped]

__all__ = ["EventLog", "event_observer"]

_SKIP = frozenset({"log_logger", "log_source", "log_format", "log_level", "log_namespace"})


class EventLog:
    """Emit focus events: ``events.emit("join", call_id=..., room=..., leg_id=...)``."""

    def __init__(self, namespace: str = "focus") -> None:
        self._log = Logger(namespace=namespace)

    def emit(self, event: str, *, level: LogLevel = LogLevel.info, **fields: Any) -> None:
        text = " ".join(f"{k}={{{k}}}" for k in sorted(fields))
        self._log.emit(level, f"{event} {text}".rstrip(), focus_event=event, **fields)


def _clean(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return "<bytes withheld>"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return str(value)


def _record(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event.get("log_time", 0)))
        + f".{int((event.get('log_time', 0) % 1) * 1000):03d}Z",
        "level": getattr(event.get("log_level"), "name", "info"),
        "event": event["focus_event"],
    }
    for key, value in event.items():
        if key in _SKIP or key.startswith("log_") or key == "focus_event":
            continue
        out[key] = _clean(value)
    return out


def event_observer(stream: IO[str], fmt: str = "json") -> ILogObserver:
    """An observer writing focus events (only) to ``stream``: JSON lines or text."""
    write: Callable[[dict[str, Any]], str]
    if fmt == "json":

        def write(record: dict[str, Any]) -> str:
            return json.dumps(record, sort_keys=False, ensure_ascii=False)

    else:

        def write(record: dict[str, Any]) -> str:
            head = f"{record.pop('time')} {record.pop('level')} {record.pop('event')}"
            rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in record.items())
            return f"{head} {rest}".rstrip()

    def observe(event: dict[str, Any]) -> None:
        if "focus_event" not in event:
            return
        try:
            line = write(_record(event))
        except Exception:  # a log line must never break the caller
            line = json.dumps({"event": event.get("focus_event"), "error": formatEvent(event)})
        stream.write(line + "\n")
        stream.flush()

    observer: ILogObserver = provider(ILogObserver)(observe)
    return observer
