"""Prometheus metrics of the focus and the ``/metrics`` resource that serves them.

One :class:`FocusMetrics` per service, on its own ``CollectorRegistry`` (never the
process-global one: two services in one test process must not share counters).  The
service calls the small recording methods where things happen; the names follow the
Prometheus conventions (``_total`` for counters, base units, ``focus_`` prefix):

=====================================  ======================================================
``focus_rooms``                        live rooms (gauge)
``focus_participants``                 participants with a leg in any state (gauge)
``focus_joins_total{direction}``       participants whose leg came up (dial-in / dial-out)
``focus_join_failures_total{direction,reason}``  admissions or set-ups that failed
``focus_kms_request_seconds{operation}``  KMS round trips (request / resolve), histogram
``focus_kms_failures_total{operation}``   KMS round trips that failed
``focus_messages_relayed_total``       chat messages accepted for relay
``focus_bytes_relayed_total``          their body bytes, counted once per recipient
``focus_relay_refused_total{status}``  SENDs refused (MSRP status)
``focus_leg_queue_bytes``              bytes waiting in every leg's send queue (gauge)
``focus_leg_queue_max_bytes``          the fullest leg queue (gauge)
``focus_tls_handshake_failures_total`` TLS-PSK handshakes that failed (wrong PSK …)
``focus_dial_out_attempts_total{outcome}``  dial-out INVITEs by outcome
``focus_subscriptions``                conference-package subscriptions (gauge)
``focus_policy_reloads_total{result}`` reloads (ok / refused)
=====================================  ======================================================

Label values are bounded: reasons outside :data:`FAILURE_REASONS` count as ``other``,
so a hostile peer cannot grow the registry.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from twisted.web.resource import Resource
from twisted.web.server import Request

__all__ = [
    "DIAL_OUT_OUTCOMES",
    "FAILURE_REASONS",
    "FocusMetrics",
    "MetricsResource",
]

FAILURE_REASONS = frozenset(
    {
        "policy",  # 403/404/480/486 from the room policy
        "sdp",  # 488: no usable TCP/TLS/MSRP line
        "keying",  # MIKEY verification failed
        "kms",  # the KMS refused or was unreachable
        "declined",  # the callee said no (4xx-6xx to our INVITE)
        "timeout",  # no answer / leg not up in time
        "leg",  # TLS-PSK or MSRP leg failure
        "sip",  # transport or protocol error
        "other",
    }
)
DIAL_OUT_OUTCOMES = frozenset(
    {"answered", "declined", "timeout", "keying", "kms", "sdp", "leg", "sip", "other"}
)
DIRECTIONS = frozenset({"dial-in", "dial-out"})
KMS_OPERATIONS = frozenset({"request", "resolve"})
_KMS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _bounded(value: str, allowed: frozenset[str], fallback: str = "other") -> str:
    return value if value in allowed else fallback


class FocusMetrics:
    """The focus's metrics on a private registry (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rooms = Gauge("focus_rooms", "Live conference rooms.", registry=r)
        self.participants = Gauge("focus_participants", "Participants with a leg.", registry=r)
        self.joins = Counter(
            "focus_joins", "Participants whose MSRP leg came up.", ["direction"], registry=r
        )
        self.join_failures = Counter(
            "focus_join_failures",
            "Joins that failed, by direction and reason.",
            ["direction", "reason"],
            registry=r,
        )
        self.kms_latency = Histogram(
            "focus_kms_request_seconds",
            "KMS round-trip time.",
            ["operation"],
            buckets=_KMS_BUCKETS,
            registry=r,
        )
        self.kms_failures = Counter(
            "focus_kms_failures", "KMS round trips that failed.", ["operation"], registry=r
        )
        self.messages_relayed = Counter(
            "focus_messages_relayed", "Chat messages accepted for relay.", registry=r
        )
        self.bytes_relayed = Counter(
            "focus_bytes_relayed", "Relayed body bytes, once per recipient.", registry=r
        )
        self.relay_refused = Counter(
            "focus_relay_refused", "SEND requests refused, by MSRP status.", ["status"], registry=r
        )
        self.queue_bytes = Gauge(
            "focus_leg_queue_bytes", "Bytes queued on all MSRP legs.", registry=r
        )
        self.queue_max_bytes = Gauge(
            "focus_leg_queue_max_bytes", "Bytes queued on the fullest MSRP leg.", registry=r
        )
        self.tls_handshake_failures = Counter(
            "focus_tls_handshake_failures", "TLS-PSK handshakes that failed.", registry=r
        )
        self.dial_out_attempts = Counter(
            "focus_dial_out_attempts", "Dial-out INVITEs by outcome.", ["outcome"], registry=r
        )
        self.subscriptions = Gauge(
            "focus_subscriptions", "Conference-package subscriptions.", registry=r
        )
        self.policy_reloads = Counter(
            "focus_policy_reloads", "Policy reloads by result.", ["result"], registry=r
        )

    # -- recording --------------------------------------------------------------------------

    def joined(self, direction: str) -> None:
        self.joins.labels(_bounded(direction, DIRECTIONS, "dial-in")).inc()

    def join_failed(self, direction: str, reason: str) -> None:
        self.join_failures.labels(
            _bounded(direction, DIRECTIONS, "dial-in"), _bounded(reason, FAILURE_REASONS)
        ).inc()

    def kms_round_trip(self, operation: str, seconds: float, *, ok: bool = True) -> None:
        """One KMS exchange took ``seconds`` (measured by the caller with its clock)."""
        op = _bounded(operation, KMS_OPERATIONS, "request")
        self.kms_latency.labels(op).observe(max(0.0, seconds))
        if not ok:
            self.kms_failures.labels(op).inc()

    def relayed(self, body_bytes: int, recipients: int) -> None:
        self.messages_relayed.inc()
        self.bytes_relayed.inc(max(0, body_bytes) * max(0, recipients))

    def refused(self, msrp_status: int) -> None:
        status = str(msrp_status) if 400 <= msrp_status <= 599 else "other"
        self.relay_refused.labels(status).inc()

    def dial_out_attempt(self, outcome: str) -> None:
        self.dial_out_attempts.labels(_bounded(outcome, DIAL_OUT_OUTCOMES)).inc()

    def handshake_failed(self) -> None:
        self.tls_handshake_failures.inc()

    def policy_reloaded(self, ok: bool) -> None:
        self.policy_reloads.labels("ok" if ok else "refused").inc()

    def track(
        self,
        *,
        rooms: Callable[[], float] | None = None,
        participants: Callable[[], float] | None = None,
        queue_bytes: Callable[[], float] | None = None,
        queue_max_bytes: Callable[[], float] | None = None,
        subscriptions: Callable[[], float] | None = None,
    ) -> None:
        """Read gauges from the service's state at scrape time instead of keeping them
        in step by hand (cannot drift)."""
        for gauge, fn in (
            (self.rooms, rooms),
            (self.participants, participants),
            (self.queue_bytes, queue_bytes),
            (self.queue_max_bytes, queue_max_bytes),
            (self.subscriptions, subscriptions),
        ):
            if fn is not None:
                gauge.set_function(fn)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsResource(Resource):
    """``GET /metrics``: the text exposition, rendered in the reactor thread (no thread
    pool, unlike ``prometheus_client.twisted``, which also binds the global reactor)."""

    isLeaf = True

    def __init__(self, metrics: FocusMetrics) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))  # type: ignore[no-untyped-call]
        request.setHeader(b"Cache-Control", b"no-store")  # type: ignore[no-untyped-call]
        return self._metrics.exposition()
