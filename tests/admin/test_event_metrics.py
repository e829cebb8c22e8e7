"""Metrics fed from the service's event log (focus.control.EventTap) and KMS timing."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from focus.control import EventTap, TimedKms
from focus.metrics import FocusMetrics
from kms_client import KmsUnavailable
from tests.roster._core import rig


def test_a_failing_listener_never_breaks_the_event_path() -> None:
    """A listener that raises is reported; later listeners still hear the event."""
    tap = EventTap()
    heard: list[str] = []

    def broken(_event: str, _fields: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    tap.listeners += [broken, lambda event, _fields: heard.append(event)]
    with capturedLogs() as logged:
        tap.emit("join", room="r")
    assert heard == ["join"]
    assert [e.get("focus_event") for e in logged] == ["join", "internal_error"]


def test_join_and_failure_events_become_counters() -> None:
    """bound counts a join by direction; join_refused and key_failure count failures."""
    core, control = rig()
    control.metrics = metrics = FocusMetrics()
    core.join("sip:alice@example.net")
    core.events.emit("join_refused", status=403, reason="x")
    core.events.emit("key_failure", status=488, reason="y")
    core.events.emit("leave", leg_id="gone", reason="leg failed: LegHandshakeFailed: bad mac")
    text = metrics.exposition()
    assert b'focus_joins_total{direction="dial-in"} 1.0' in text
    assert b'focus_join_failures_total{direction="dial-in",reason="policy"} 1.0' in text
    assert b'focus_join_failures_total{direction="dial-in",reason="keying"} 1.0' in text
    assert b"focus_tls_handshake_failures_total 1.0" in text


def test_kms_round_trips_are_timed_with_the_clock() -> None:
    """TimedKms observes the latency of each request and counts KMS failures."""
    clock = Clock()
    metrics = FocusMetrics()
    pending: list[defer.Deferred[Any]] = []

    class Kms:
        def request_ticket(self, **_kw: Any) -> defer.Deferred[Any]:
            d: defer.Deferred[Any] = defer.Deferred()
            pending.append(d)
            return d

        resolve_ticket = request_ticket

    kms = TimedKms(Kms(), clock, metrics)
    ok = kms.request_ticket(initiator="a", responders=["b"])
    clock.advance(0.2)
    pending[0].callback("grant")
    failed = kms.resolve_ticket(responder="b", ticket=b"t")
    failed.addErrback(lambda _f: None)
    clock.advance(1.0)
    pending[1].errback(KmsUnavailable("down", attempts=1))
    assert ok.result == "grant"
    text = metrics.exposition()
    assert b'focus_kms_request_seconds_sum{operation="request"} 0.2' in text
    assert b'focus_kms_failures_total{operation="resolve"} 1.0' in text
