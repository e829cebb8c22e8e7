"""RFC 3261 §17 transactions as state tables, with timers as deadlines.

Each transaction owns its state and a few named deadlines.  Inputs (a message from the
network, a response from the TU, ``on_timer(now)``, a transport error) go through a
table ``(state, input) -> action``; actions return outputs:

* :class:`Transmit` — send this message to this target (the core encodes it);
* :class:`ToTU` — hand this message to the transaction user;
* :class:`TimedOut` — Timer B/F/H fired or the transport failed (§17.1.4, §17.2.4);
* :class:`Terminated` — the transaction is over and may be forgotten.

Pairs missing from a table are inputs the RFC says to absorb (a late provisional
response, a retransmitted request in Trying, anything after Terminated): they return no
output and do not change state.

Deviation, written down here: INVITE transactions follow RFC 6026 (which updates
RFC 3261 §17).  A 2xx moves the client transaction to *Accepted* (Timer M) so that 2xx
retransmissions reach the TU, and moves the server transaction to *Accepted* (Timer L)
so that INVITE retransmissions are absorbed while the TU retransmits the 2xx (§13.3.1.4).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import ClassVar

import attrs

from .message import Headers, Request, Response

__all__ = [
    "ClientTransaction",
    "ServerTransaction",
    "Target",
    "Terminated",
    "TimedOut",
    "TimerConfig",
    "ToTU",
    "Transmit",
    "TxOutput",
    "TxState",
    "make_ack_for_failure",
    "server_key",
]


@attrs.frozen
class TimerConfig:
    """T1, T2, T4 of §17.1.1.1 / Table 4, in seconds (configurable, RFC defaults)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


@attrs.frozen
class Target:
    """Where a message goes: a transport ("UDP", "TCP", "TLS") and an IP address and port.

    For stream transports this also names the connection: responses to a request that
    came over TCP go back to the connection it came from (§18.2.2).
    """

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """True for stream transports (§17: timers A, E, G do not run)."""
        return self.transport.upper() != "UDP"


@attrs.frozen
class Transmit:
    """Send ``message`` to ``target``."""

    message: Request | Response
    target: Target


@attrs.frozen
class ToTU:
    """Pass ``message`` up to the transaction user."""

    message: Request | Response


@attrs.frozen
class TimedOut:
    """The transaction failed: ``reason`` is "timeout" (Timer B/F/H) or "transport"."""

    reason: str


@attrs.frozen
class Terminated:
    """The transaction reached Terminated; the core forgets it."""


TxOutput = Transmit | ToTU | TimedOut | Terminated


class TxState(enum.Enum):
    """Transaction states of Figures 5-8 plus RFC 6026 Accepted."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class In(enum.Enum):
    """Transaction inputs."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_PROVISIONAL = "TU 1xx"
    TU_SUCCESS = "TU 2xx"
    TU_FAILURE = "TU 300-699"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TIMER_L = "L"
    TIMER_M = "M"
    TRANSPORT_ERROR = "transport error"


_TIMER_INPUTS = {t.value: t for t in In if t.name.startswith("TIMER_")}


def _response_input(resp: Response, prefix: str = "") -> In:
    if resp.status < 200:
        return In[prefix + "PROVISIONAL"]
    if resp.status < 300:
        return In[prefix + "SUCCESS"]
    return In[prefix + "FAILURE"]


class _Transaction:
    """Shared machinery: state, named deadlines, table dispatch."""

    TABLE: dict[tuple[TxState, In], str]

    def __init__(self, request: Request, target: Target, timers: TimerConfig) -> None:
        self.request = request
        self.target = target
        self.timers = timers
        self.state = TxState.TERMINATED
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    @property
    def reliable(self) -> bool:
        """True when the transport is a stream."""
        return self.target.reliable

    @property
    def deadline(self) -> float | None:
        """The earliest armed timer, or None."""
        return min(self._deadlines.values(), default=None)

    @property
    def armed(self) -> dict[str, float]:
        """Armed timers by letter (for tests and logs)."""
        return dict(self._deadlines)

    def _arm(self, name: str, now: float, interval: float) -> None:
        self._intervals[name] = interval
        self._deadlines[name] = now + interval

    def _disarm(self, *names: str) -> None:
        for n in names:
            self._deadlines.pop(n, None)

    def _dispatch(self, what: In, msg: Request | Response | None, now: float) -> list[TxOutput]:
        name = self.TABLE.get((self.state, what))
        if name is None:
            return []
        action: Callable[[Request | Response | None, float], list[TxOutput]] = getattr(self, name)
        return action(msg, now)

    def on_timer(self, now: float) -> list[TxOutput]:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        out: list[TxOutput] = []
        while True:
            due = [(d, n) for n, d in self._deadlines.items() if d <= now]
            if not due or self.state is TxState.TERMINATED:
                return out
            _, name = min(due)
            del self._deadlines[name]
            out.extend(self._dispatch(_TIMER_INPUTS[name], None, now))

    def on_transport_error(self, now: float) -> list[TxOutput]:
        """§17.1.4 / §17.2.4: the transport layer could not deliver our message."""
        return self._dispatch(In.TRANSPORT_ERROR, None, now)

    def _terminate(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = TxState.TERMINATED
        self._deadlines.clear()
        return [Terminated()]

    def _fail(self, reason: str) -> list[TxOutput]:
        self.state = TxState.TERMINATED
        self._deadlines.clear()
        return [TimedOut(reason), Terminated()]

    def _timeout(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        return self._fail("timeout")

    def _transport_error(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        return self._fail("transport")


def make_ack_for_failure(request: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 response (§17.1.1.3):
    same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE, the To of
    the response, and the INVITE's Route headers."""
    h = request.headers
    headers = Headers.of(
        [
            ("Via", h.get_all("Via")[0]),
            *[("Route", r) for r in h.lines("Route")],
            ("Max-Forwards", 70),
            ("From", h.get("From")),
            ("To", response.headers.get("To")),
            ("Call-ID", h.get("Call-ID")),
            ("CSeq", f"{request.cseq.seq} ACK"),
        ]
    )
    return Request(method="ACK", uri=request.uri, headers=headers)


S = TxState


class ClientTransaction(_Transaction):
    """INVITE (§17.1.1, Figure 5) and non-INVITE (§17.1.2, Figure 6) client transactions.

    Create it, call :meth:`start`, then feed :meth:`on_response`, :meth:`on_timer` and
    :meth:`on_transport_error`.  The key is (branch, method) of §17.1.3.
    """

    INVITE_TABLE: ClassVar[dict[tuple[TxState, In], str]] = {
        (S.CALLING, In.TIMER_A): "_retransmit_invite",
        (S.CALLING, In.TIMER_B): "_timeout",
        (S.CALLING, In.PROVISIONAL): "_invite_provisional",
        (S.PROCEEDING, In.PROVISIONAL): "_deliver",
        (S.CALLING, In.SUCCESS): "_invite_accepted",
        (S.PROCEEDING, In.SUCCESS): "_invite_accepted",
        (S.ACCEPTED, In.SUCCESS): "_deliver",
        (S.CALLING, In.FAILURE): "_invite_completed",
        (S.PROCEEDING, In.FAILURE): "_invite_completed",
        (S.COMPLETED, In.FAILURE): "_resend_ack",
        (S.COMPLETED, In.TIMER_D): "_terminate",
        (S.ACCEPTED, In.TIMER_M): "_terminate",
        (S.CALLING, In.TRANSPORT_ERROR): "_transport_error",
        (S.PROCEEDING, In.TRANSPORT_ERROR): "_transport_error",
        (S.COMPLETED, In.TRANSPORT_ERROR): "_transport_error",
    }
    NON_INVITE_TABLE: ClassVar[dict[tuple[TxState, In], str]] = {
        (S.TRYING, In.TIMER_E): "_retransmit_request",
        (S.PROCEEDING, In.TIMER_E): "_retransmit_request",
        (S.TRYING, In.TIMER_F): "_timeout",
        (S.PROCEEDING, In.TIMER_F): "_timeout",
        (S.TRYING, In.PROVISIONAL): "_non_invite_provisional",
        (S.PROCEEDING, In.PROVISIONAL): "_deliver",
        (S.TRYING, In.SUCCESS): "_non_invite_completed",
        (S.PROCEEDING, In.SUCCESS): "_non_invite_completed",
        (S.TRYING, In.FAILURE): "_non_invite_completed",
        (S.PROCEEDING, In.FAILURE): "_non_invite_completed",
        (S.COMPLETED, In.TIMER_K): "_terminate",
        (S.TRYING, In.TRANSPORT_ERROR): "_transport_error",
        (S.PROCEEDING, In.TRANSPORT_ERROR): "_transport_error",
    }

    def __init__(self, request: Request, target: Target, timers: TimerConfig) -> None:
        super().__init__(request, target, timers)
        self.is_invite = request.method == "INVITE"
        self.TABLE = self.INVITE_TABLE if self.is_invite else self.NON_INVITE_TABLE
        self.key = (request.top_via.branch or "", request.method)
        self._ack: Request | None = None
        self.last_response: Response | None = None

    def start(self, now: float) -> list[TxOutput]:
        """Send the request and arm A/B (INVITE) or E/F (non-INVITE)."""
        t1 = self.timers.t1
        if self.is_invite:
            self.state = S.CALLING
            if not self.reliable:
                self._arm("A", now, t1)
            self._arm("B", now, 64 * t1)
        else:
            self.state = S.TRYING
            if not self.reliable:
                self._arm("E", now, t1)
            self._arm("F", now, 64 * t1)
        return [Transmit(self.request, self.target)]

    def on_response(self, response: Response, now: float) -> list[TxOutput]:
        """A response whose branch and CSeq method match this transaction (§17.1.3)."""
        return self._dispatch(_response_input(response), response, now)

    # -- actions ---------------------------------------------------------------------
    def _deliver(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        assert isinstance(msg, Response)
        self.last_response = msg
        return [ToTU(msg)]

    def _retransmit_invite(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        # §17.1.1.2: Timer A doubles on every retransmission (no T2 cap for INVITE).
        self._arm("A", now, 2 * self._intervals["A"])
        return [Transmit(self.request, self.target)]

    def _retransmit_request(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        # §17.1.2.2: E doubles up to T2 in Trying; in Proceeding it is always T2.
        if self.state is S.TRYING:
            self._arm("E", now, min(2 * self._intervals["E"], self.timers.t2))
        else:
            self._arm("E", now, self.timers.t2)
        return [Transmit(self.request, self.target)]

    def _invite_provisional(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.PROCEEDING
        self._disarm("A", "B")  # §17.1.1.2: no retransmission, Timer B only in Calling
        return self._deliver(msg, now)

    def _non_invite_provisional(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.PROCEEDING
        if "E" in self._deadlines:
            self._arm("E", now, self.timers.t2)
        return self._deliver(msg, now)

    def _invite_accepted(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.ACCEPTED
        self._disarm("A", "B")
        self._arm("M", now, 64 * self.timers.t1)  # RFC 6026 §8.4
        return self._deliver(msg, now)

    def _invite_completed(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        assert isinstance(msg, Response)
        self.state = S.COMPLETED
        self._disarm("A", "B")
        # §17.1.1.2: Timer D is at least 32 s on unreliable transports, zero on reliable.
        self._arm("D", now, 0.0 if self.reliable else max(32.0, 64 * self.timers.t1))
        self._ack = make_ack_for_failure(self.request, msg)
        out: list[TxOutput] = [Transmit(self._ack, self.target)]
        out.extend(self._deliver(msg, now))
        return out

    def _resend_ack(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        return [] if self._ack is None else [Transmit(self._ack, self.target)]

    def _non_invite_completed(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.COMPLETED
        self._disarm("E", "F")
        self._arm("K", now, 0.0 if self.reliable else self.timers.t4)
        return self._deliver(msg, now)


class ServerTransaction(_Transaction):
    """INVITE (§17.2.1, Figure 7) and non-INVITE (§17.2.2, Figure 8) server transactions.

    Create it with the received request (it starts in Proceeding or Trying), then feed
    retransmissions and ACKs (:meth:`on_request`), the TU's responses
    (:meth:`send_response`), timers and transport errors.
    """

    INVITE_TABLE: ClassVar[dict[tuple[TxState, In], str]] = {
        (S.PROCEEDING, In.REQUEST): "_resend_last",
        (S.PROCEEDING, In.TU_PROVISIONAL): "_send",
        (S.PROCEEDING, In.TU_SUCCESS): "_invite_accept",
        (S.PROCEEDING, In.TU_FAILURE): "_invite_complete",
        (S.ACCEPTED, In.TU_SUCCESS): "_pass_2xx",  # §13.3.1.4 retransmissions by the TU
        (S.ACCEPTED, In.TIMER_L): "_terminate",
        (S.COMPLETED, In.REQUEST): "_resend_last",
        (S.COMPLETED, In.TIMER_G): "_retransmit_final",
        (S.COMPLETED, In.TIMER_H): "_timeout",
        (S.COMPLETED, In.ACK): "_confirm",
        (S.CONFIRMED, In.TIMER_I): "_terminate",
        (S.PROCEEDING, In.TRANSPORT_ERROR): "_transport_error",
        (S.COMPLETED, In.TRANSPORT_ERROR): "_transport_error",
    }
    NON_INVITE_TABLE: ClassVar[dict[tuple[TxState, In], str]] = {
        (S.TRYING, In.TU_PROVISIONAL): "_non_invite_proceed",
        (S.TRYING, In.TU_SUCCESS): "_non_invite_complete",
        (S.TRYING, In.TU_FAILURE): "_non_invite_complete",
        (S.PROCEEDING, In.REQUEST): "_resend_last",
        (S.PROCEEDING, In.TU_PROVISIONAL): "_send",
        (S.PROCEEDING, In.TU_SUCCESS): "_non_invite_complete",
        (S.PROCEEDING, In.TU_FAILURE): "_non_invite_complete",
        (S.COMPLETED, In.REQUEST): "_resend_last",
        (S.COMPLETED, In.TIMER_J): "_terminate",
        (S.PROCEEDING, In.TRANSPORT_ERROR): "_transport_error",
        (S.COMPLETED, In.TRANSPORT_ERROR): "_transport_error",
    }

    def __init__(self, request: Request, target: Target, timers: TimerConfig) -> None:
        super().__init__(request, target, timers)
        self.is_invite = request.method == "INVITE"
        self.TABLE = self.INVITE_TABLE if self.is_invite else self.NON_INVITE_TABLE
        self.state = S.PROCEEDING if self.is_invite else S.TRYING
        self.last_response: Response | None = None
        self._accepted = False

    @property
    def final_sent(self) -> bool:
        """True once a final response went out."""
        if self._accepted:
            return True
        return self.last_response is not None and self.last_response.status >= 200

    def on_request(self, request: Request, now: float) -> list[TxOutput]:
        """A retransmission of the request, or the ACK for a non-2xx (§17.2.3 matching)."""
        what = In.ACK if request.method == "ACK" else In.REQUEST
        return self._dispatch(what, request, now)

    def send_response(self, response: Response, now: float) -> list[TxOutput]:
        """The TU's response.  Ignored (returns []) when the state does not allow it."""
        return self._dispatch(_response_input(response, "TU_"), response, now)

    # -- actions ---------------------------------------------------------------------
    def _send(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        assert isinstance(msg, Response)
        self.last_response = msg
        return [Transmit(msg, self.target)]

    def _resend_last(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        if self.last_response is None:
            return []
        return [Transmit(self.last_response, self.target)]

    def _invite_accept(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.ACCEPTED
        self._arm("L", now, 64 * self.timers.t1)  # RFC 6026 §8.7
        self._accepted = True
        self.last_response = None  # the 100 Trying: never resent from Accepted
        return self._pass_2xx(msg, now)

    def _pass_2xx(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        # RFC 6026 §8.7: in Accepted, retransmitted INVITEs are absorbed and every 2xx
        # comes from the TU (which retransmits it, §13.3.1.4), so the transaction keeps
        # neither the 2xx nor, for Timer L's 32 s, any reason to hold it: an idle leg
        # should not carry its answer around (bench/README.md, memory per leg).
        assert isinstance(msg, Response)
        return [Transmit(msg, self.target)]

    def _invite_complete(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.COMPLETED
        if not self.reliable:
            self._arm("G", now, self.timers.t1)
        self._arm("H", now, 64 * self.timers.t1)
        return self._send(msg, now)

    def _retransmit_final(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self._arm("G", now, min(2 * self._intervals["G"], self.timers.t2))
        return self._resend_last(msg, now)

    def _confirm(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.CONFIRMED
        self._disarm("G", "H")
        self._arm("I", now, 0.0 if self.reliable else self.timers.t4)
        return []

    def _non_invite_proceed(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.PROCEEDING
        return self._send(msg, now)

    def _non_invite_complete(self, msg: Request | Response | None, now: float) -> list[TxOutput]:
        self.state = S.COMPLETED
        self._arm("J", now, 0.0 if self.reliable else 64 * self.timers.t1)
        return self._send(msg, now)


def server_key(request: Request) -> tuple[str, ...]:
    """The §17.2.3 matching key of a request: (branch, sent-by, method), with ACK matching
    INVITE.  RFC 2543 requests without the magic cookie are keyed by Call-ID, From tag,
    CSeq number and top Via (a simplification of the full 2543 rule, which also compares
    the Request-URI and To tag)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    if via.rfc3261_branch:
        return ("3261", via.branch or "", sent_by, method)
    return (
        "2543",
        request.call_id,
        request.from_.tag or "",
        str(request.cseq.seq),
        str(via),
        method,
    )
