"""The user-agent core (RFC 3261 §8, §9, §12-§14, §17, §18): a sans-IO SIP endpoint.

Bytes and events go in with the current time, commands come out:

* inputs: :meth:`UserAgent.datagram_received`, :meth:`UserAgent.connection_data`,
  :meth:`UserAgent.connection_lost`, :meth:`UserAgent.transport_error`,
  :meth:`UserAgent.resolved` and :meth:`UserAgent.on_timer`, each with ``now``;
* outputs: :class:`Send`, :class:`CloseConnection` and
  :class:`~focus.sip.resolve.Resolve` commands, taken with :meth:`UserAgent.drain`;
  :meth:`UserAgent.next_deadline` tells the adapter when to call ``on_timer``.

The application (the transaction user above the UA core) subclasses
:class:`Application`; the core calls it synchronously and the application answers
through :class:`IncomingRequest` or starts requests with :meth:`UserAgent.send_request`.
When the application acts outside a callback (a delayed answer), the core calls the
``wakeup`` function the adapter installed so the adapter drains the new commands.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable
from typing import Any, cast

import attrs

from .dialog import Dialog, DialogId, DialogState
from .errors import ProtocolError, ServiceUnavailable, SipError, SipParseError
from .framing import StreamError, StreamParser, parse_datagram
from .headers import Address, Via
from .message import (
    DEFAULT_LIMITS,
    Headers,
    Limits,
    Message,
    Request,
    Response,
    check_request,
    check_response,
)
from .resolve import Resolve, plan_resolution
from .transaction import (
    ClientTransaction,
    ServerTransaction,
    Target,
    Terminated,
    TimedOut,
    TimerConfig,
    ToTU,
    Transmit,
    TxOutput,
    server_key,
)
from .uri import URI, SipURI

__all__ = [
    "KNOWN_METHODS",
    "REASONS",
    "Application",
    "CloseConnection",
    "Command",
    "IncomingRequest",
    "OutgoingRequest",
    "Send",
    "UAConfig",
    "UserAgent",
    "make_response",
]

KNOWN_METHODS = frozenset(
    [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    ]
)
CORE_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"})

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "Version Not Supported",
    513: "Message Too Large", 603: "Decline",
}  # fmt: skip


@attrs.frozen
class Send:
    """Send ``data`` to ``target`` (over the connection to it, for TCP/TLS: reuse one if
    open, else open one, §18.1.1/§18.2.2).

    ``fallback`` is set for responses over a stream: ``target`` names the connection the
    request came on; when that connection is no longer open, §18.2.2 says to open one to
    the ``received`` address and the Via sent-by port instead (the peer's ephemeral
    source port has nobody listening)."""

    data: bytes
    target: Target
    fallback: Target | None = None


@attrs.frozen
class CloseConnection:
    """Close the stream connection to ``target`` (a framing error, §18.3)."""

    target: Target


Command = Send | CloseConnection | Resolve


@attrs.frozen
class UAConfig:
    """What the core needs to know about itself.

    ``listen`` holds our listening addresses, one per transport (they give the Via
    sent-by and the Contact).  Requests whose Request-URI host is not ``host``, one of
    ``domains`` or a listening address get 404.
    """

    host: str
    listen: tuple[Target, ...]
    domains: tuple[str, ...] = ()
    outbound_proxy: SipURI | None = None
    timers: TimerConfig = attrs.field(factory=TimerConfig)
    limits: Limits = DEFAULT_LIMITS
    user_agent: str = "msrp-focus"
    supported: tuple[str, ...] = ()
    accept: tuple[str, ...] = ("application/sdp",)
    default_transport: str = "UDP"
    invite_timeout: float = 180.0  # like Timer C (§16.6): CANCEL an unanswered INVITE
    #: An INVITE we received and the application leaves unanswered this long gets 408.
    answer_timeout: float = 180.0
    #: Server transactions kept at most; beyond, new requests get 503 (every table bounded).
    max_transactions: int = 10000

    def local(self, transport: str) -> Target:
        """Our listening address for ``transport`` (else the first one)."""
        for t in self.listen:
            if t.transport == transport.upper():
                return t
        if not self.listen:
            raise ProtocolError("no listening address configured")
        return self.listen[0]


def make_response(
    request: Request | Headers,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, object]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """§8.2.6.2: copy Via (all, in order), From, To, Call-ID and CSeq from the request,
    add a To tag for non-100 responses when given, then ``headers`` and the body."""
    h = request.headers if isinstance(request, Request) else request
    to = h.get("To") or ""
    if to_tag is not None and status > 100:
        try:
            if Address.parse(to).tag is None:
                to = f"{to};tag={to_tag}"
        except SipParseError:
            pass
    fields: list[tuple[str, object]] = [("Via", v) for v in h.lines("Via")]
    fields += [
        ("From", h.get("From") or ""),
        ("To", to),
        ("Call-ID", h.get("Call-ID") or ""),
        ("CSeq", h.get("CSeq") or ""),
    ]
    if status == 100 and "Timestamp" in h:  # §8.2.6.1
        fields.append(("Timestamp", h.get("Timestamp")))
    fields += list(headers)
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    return Response(
        status=status,
        reason=reason or REASONS.get(status, "Unknown"),
        headers=Headers.of(fields),
        body=body,
    )


ResponseHandler = Callable[["OutgoingRequest", Response], None]


class OutgoingRequest:
    """A request we sent (client side).  Every response, including the 408/503 the core
    makes up for a timeout or transport error (§8.1.3.1), goes to ``handler``."""

    def __init__(
        self,
        ua: UserAgent,
        request: Request,
        handler: ResponseHandler | None,
        dialog: Dialog | None,
    ) -> None:
        self._ua = ua
        self.request = request
        self.handler = handler
        self.dialog = dialog
        self.target: Target | None = None
        self.transaction: ClientTransaction | None = None
        self.provisional: Response | None = None
        self.final: Response | None = None
        self.cancel_requested = False
        self._cancel_sent = False

    def __repr__(self) -> str:
        return f"<OutgoingRequest {self.request.method} {self.request.uri}>"

    def cancel(self, now: float) -> None:
        """Cancel this INVITE (§9.1); see :meth:`UserAgent.cancel`."""
        self._ua.cancel(self, now)


class IncomingRequest:
    """A request we received (server side), to be answered with :meth:`respond`."""

    def __init__(  # noqa: PLR0917 - constructed only by the core
        self,
        ua: UserAgent,
        request: Request,
        source: Target,
        transaction: ServerTransaction | None,
        dialog: Dialog | None,
        to_tag: str,
    ) -> None:
        self._ua = ua
        self.request = request
        self.source = source
        self.transaction = transaction
        self.dialog = dialog
        self.to_tag = to_tag
        self.cancelled = False
        #: When the core answers 408 for the application (set by the core).
        self.answer_deadline: float | None = None

    def __repr__(self) -> str:
        return f"<IncomingRequest {self.request.method} {self.request.uri} from {self.source}>"

    @property
    def answered(self) -> bool:
        """True once a final response has been sent."""
        return self.transaction is None or self.transaction.final_sent

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        now: float,
        headers: Iterable[tuple[str, object]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Response:
        """Send a response.  A 2xx to an INVITE creates the dialog (§12.1.1), adds our
        Contact and is retransmitted until the ACK arrives (§13.3.1.4)."""
        return self._ua._respond(
            self, status, reason, now=now, headers=headers, body=body, content_type=content_type
        )


class Application:
    """The transaction user above the UA core.  Subclass and override what you need.

    The core answers by itself: OPTIONS (200 with Allow, Accept, Supported), CANCEL
    (§9.2), BYE in a dialog (200, then :meth:`on_dialog_terminated`), malformed
    requests (400), and 405/501/416/404/482/483/420/415/481 as §8.2 says.
    """

    #: Methods this application handles besides the core ones (e.g. {"NOTIFY"}).
    methods: frozenset[str] = frozenset()

    def serves(self, uri: URI) -> bool:
        """Whether a Request-URI (with our host) names something we serve; else 404."""
        return True

    def on_request(self, incoming: IncomingRequest, now: float) -> None:
        """A new request (INVITE, re-INVITE, other methods in :attr:`methods`).
        Answer now or later with ``incoming.respond``.  The default answers 501."""
        incoming.respond(501, now=now)

    def on_ack(self, dialog: Dialog, ack: Request, now: float) -> None:
        """The ACK for our 2xx arrived (§13.3.1.4); its body may carry the answer."""

    def on_cancel(self, incoming: IncomingRequest, now: float) -> None:
        """The INVITE was cancelled; the core already answered 487 (§9.2)."""

    def on_dialog_terminated(self, dialog: Dialog, reason: str, now: float) -> None:
        """The dialog ended: "bye" (peer hung up), "no-ack" (§13.3.1.4 give-up, we
        sent BYE), or "481"/"408" (§12.2.1.2)."""


@attrs.define
class _Retransmit2xx:
    response: Response
    target: Target
    interval: float
    deadline: float
    give_up: float
    dialog: Dialog


class UserAgent:
    """The sans-IO SIP endpoint; see the module docstring."""

    def __init__(
        self,
        config: UAConfig,
        app: Application,
        random: Callable[[int], bytes],
        wakeup: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.app = app
        self._random = random
        self.wakeup = wakeup
        self._outbox: list[Command] = []
        self._busy = 0
        self._client: dict[tuple[str, str], tuple[ClientTransaction, OutgoingRequest]] = {}
        self._server: dict[tuple[str, ...], tuple[ServerTransaction, IncomingRequest]] = {}
        self._merge: dict[tuple[str, str, int, str], tuple[str, ...]] = {}
        # The reverse of _merge, so that forgetting a transaction is O(1).
        self._merged_by: dict[tuple[str, ...], tuple[str, str, int, str]] = {}
        self.dialogs: dict[DialogId, Dialog] = {}
        self._retx: dict[tuple[DialogId, int], _Retransmit2xx] = {}
        self._acks: dict[tuple[DialogId, int], tuple[Request, Target, float]] = {}
        self._streams: dict[Target, StreamParser] = {}
        self._resolving: dict[int, tuple[OutgoingRequest | None, Request]] = {}
        self._query_ids = itertools.count(1)
        self._invite_guard: dict[tuple[str, str], float] = {}
        # Deadlines of every entry of the five timed tables above, as a heap, so that
        # next_deadline and on_timer cost O(log n) instead of a scan of every transaction
        # (UDP transactions live 64*T1 after their answer: at a few hundred requests per
        # second a scan per message dominated).  _scheduled holds the one current
        # deadline per timed entry ("c"/"s"/"r"/"a"/"g", key); heap entries that differ
        # from it are stale and dropped when they reach the top.
        self._timers: list[tuple[float, int, tuple[str, Hashable]]] = []
        self._scheduled: dict[tuple[str, Hashable], float] = {}
        self._timer_seq = itertools.count()

    # ------------------------------------------------------------------ plumbing
    @property
    def allowed_methods(self) -> list[str]:
        """The Allow header value (§20.5)."""
        return sorted(CORE_METHODS | self.app.methods)

    def drain(self) -> list[Command]:
        """Take the pending commands."""
        out, self._outbox = self._outbox, []
        return out

    def _emit(self, cmd: Command) -> None:
        self._outbox.append(cmd)

    def _enter(self) -> None:
        self._busy += 1

    def _leave(self) -> None:
        self._busy -= 1
        if not self._busy and self._outbox and self.wakeup is not None:
            self.wakeup()

    def _token(self, n: int = 8) -> str:
        return self._random(n).hex()

    def new_tag(self) -> str:
        """A random tag (§19.3: at least 32 bits of randomness)."""
        return self._token(6)

    def new_branch(self) -> str:
        """A branch with the magic cookie (§8.1.1.7)."""
        return "z9hG4bK" + self._token(10)

    def new_call_id(self) -> str:
        """A globally unique Call-ID (§8.1.1.4)."""
        return f"{self._token(12)}@{self.config.host}"

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must be called next, or None."""
        timers = self._timers
        while timers:
            deadline, _, ref = timers[0]
            if self._scheduled.get(ref) == deadline:
                return deadline
            heapq.heappop(timers)  # stale: the entry moved or is gone
        return None

    def _deadline_of(self, ref: tuple[str, Hashable]) -> float | None:
        """The current deadline of one timed entry (None: nothing armed or gone)."""
        kind, key = ref[0], cast(Any, ref[1])
        if kind == "c":
            client = self._client.get(key)
            return None if client is None else client[0].deadline
        if kind == "s":
            server = self._server.get(key)
            if server is None:
                return None
            stx, incoming = server
            ds = [stx.deadline, None if stx.final_sent else incoming.answer_deadline]
            return min((d for d in ds if d is not None), default=None)
        if kind == "r":
            r = self._retx.get(key)
            return None if r is None else min(r.deadline, r.give_up)
        if kind == "a":
            ack = self._acks.get(key)
            return None if ack is None else ack[2]
        return self._invite_guard.get(key)

    def _reschedule(self, kind: str, key: Hashable) -> None:
        """Record the entry's current deadline; called after anything that may change it."""
        ref = (kind, key)
        deadline = self._deadline_of(ref)
        if deadline == self._scheduled.get(ref):
            return
        if deadline is None:
            del self._scheduled[ref]
            return
        self._scheduled[ref] = deadline
        heapq.heappush(self._timers, (deadline, next(self._timer_seq), ref))
        if len(self._timers) > 2 * len(self._scheduled) + 64:
            # Bounded: drop the stale entries (amortised O(1) per push).
            self._timers = [(d, next(self._timer_seq), r) for r, d in self._scheduled.items()]
            heapq.heapify(self._timers)

    def on_timer(self, now: float) -> None:
        """Fire every deadline at or before ``now`` (each entry at most once per call; one
        re-armed at or before ``now`` is reported by next_deadline for the next call)."""
        self._enter()
        try:
            fired: set[tuple[str, Hashable]] = set()
            again: list[tuple[float, int, tuple[str, Hashable]]] = []
            try:
                while self._timers and self._timers[0][0] <= now:
                    entry = heapq.heappop(self._timers)
                    ref = entry[2]
                    if self._scheduled.get(ref) != entry[0]:
                        continue  # stale
                    if ref in fired:
                        again.append(entry)
                        continue
                    fired.add(ref)
                    try:
                        self._fire(ref, now)
                    finally:
                        # Its heap entry is gone: record it afresh even if unchanged, and
                        # even if the application raised, so that no deadline is lost.
                        self._scheduled.pop(ref, None)
                        self._reschedule(*ref)
            finally:
                for entry in again:
                    heapq.heappush(self._timers, entry)
        finally:
            self._leave()

    def _fire(self, ref: tuple[str, Hashable], now: float) -> None:
        kind, key = ref[0], cast(Any, ref[1])
        if kind == "c":
            client = self._client.get(key)
            if client is not None:
                d = client[0].deadline
                if d is not None and d <= now:
                    self._client_outputs(key, client[0].on_timer(now), now)
        elif kind == "s":
            server = self._server.get(key)
            if server is None:
                return
            stx, incoming = server
            d = stx.deadline
            if d is not None and d <= now:
                self._server_outputs(key, stx.on_timer(now), now)
            a = incoming.answer_deadline
            if a is not None and a <= now and not stx.final_sent:
                incoming.answer_deadline = None
                incoming.respond(408, now=now)  # the application never answered
        elif kind == "r":
            r = self._retx.get(key)
            if r is None:
                return
            if r.give_up <= now:
                del self._retx[key]
                self._ack_timeout(r.dialog, now)
            elif r.deadline <= now:
                self._send(r.response, r.target)
                r.interval = min(2 * r.interval, self.config.timers.t2)
                r.deadline = now + r.interval
        elif kind == "a":
            ack = self._acks.get(key)
            if ack is not None and ack[2] <= now:
                del self._acks[key]
        else:
            deadline = self._invite_guard.get(key)
            if deadline is None or deadline > now:
                return
            del self._invite_guard[key]
            entry = self._client.get(key)
            if entry is None or entry[1].final is not None:
                return
            out = entry[1]
            if out._cancel_sent:
                # §9.1: no final response 64*T1 after the CANCEL: the INVITE
                # transaction is considered terminated (reported as 408).
                del self._client[key]
                self._reschedule("c", key)
                self._synthesize(out, 408, now)
            else:
                self.cancel(out, now)

    def _send(self, msg: Message, target: Target) -> None:
        fallback = None
        if isinstance(msg, Response) and target.reliable:
            fallback = _stream_fallback(msg, target)
        self._emit(Send(msg.encode(), target, fallback))

    # ------------------------------------------------------------------ transport input
    def datagram_received(self, data: bytes, source: Target, now: float) -> SipError | None:
        """A UDP datagram from ``source``.  A datagram that does not parse as a message is
        dropped (there is no request to answer); the error is returned for logging."""
        self._enter()
        try:
            try:
                msg = parse_datagram(data, self.config.limits)
            except SipError as exc:
                # The headers parsed but the body is wrong (too large, or shorter than
                # Content-Length): answer 513/400 when it is a request (§18.3, §21.5.11).
                if _answerable(exc.head):
                    self._respond_stateless(exc.head, source, exc)  # type: ignore[arg-type]
                return exc
            self._message(msg, source, now)
            return None
        finally:
            self._leave()

    def connection_data(self, conn: Target, data: bytes, now: float) -> None:
        """Octets on the stream connection to/from ``conn`` (§18.3 framing)."""
        self._enter()
        try:
            parser = self._streams.get(conn)
            if parser is None:
                parser = self._streams[conn] = StreamParser(self.config.limits)
            for item in parser.feed(data):
                if isinstance(item, StreamError):
                    if _answerable(item.head):
                        self._respond_stateless(item.head, conn, item.error)  # type: ignore[arg-type]
                    # The failed parser stays until connection_lost: it ignores whatever
                    # still arrives, so nothing after the break is ever read as a message.
                    self._emit(CloseConnection(conn))
                else:
                    self._message(item, conn, now)
        finally:
            self._leave()

    def connection_lost(self, conn: Target, now: float) -> None:
        """The stream connection ``conn`` closed; forget its framing state."""
        self._streams.pop(conn, None)

    def transport_error(self, target: Target, now: float) -> None:
        """Sending to ``target`` failed (§17.1.4, §17.2.4)."""
        self._enter()
        try:
            for key, (ctx, _) in list(self._client.items()):
                if ctx.target == target:
                    self._client_outputs(key, ctx.on_transport_error(now), now)
            for skey, (stx, _) in list(self._server.items()):
                if stx.target == target:
                    self._server_outputs(skey, stx.on_transport_error(now), now)
        finally:
            self._leave()

    def _message(self, msg: Message, source: Target, now: float) -> None:
        if isinstance(msg, Request):
            self._request(msg, source, now)
        else:
            self._response(msg, now)

    # ------------------------------------------------------------------ server side
    def _stamp_via_headers(self, headers: Headers, source: Target) -> Headers:
        """§18.2.1 received, RFC 3581 §4 rport, on the top Via."""
        vias = headers.get_all("Via")
        top = Via.parse(vias[0])
        params = top.params
        if top.wants_rport:
            params = params.set("rport", str(source.port)).set("received", source.host)
        elif top.host.strip("[]") != source.host:
            params = params.set("received", source.host)
        if params == top.params:
            return headers
        return headers.replace_all("Via", [str(top.with_params(params)), *vias[1:]])

    def _stamp_via(self, request: Request, source: Target) -> Request:
        """The request with its top Via stamped (see :meth:`_stamp_via_headers`)."""
        return request.with_headers(self._stamp_via_headers(request.headers, source))

    @staticmethod
    def response_target(via: Via, source: Target) -> Target:
        """§18.2.2 with RFC 3581 §4: where responses to a request go."""
        if source.reliable:
            return source  # the connection the request came on
        if via.maddr:
            return Target("UDP", via.maddr, via.port or 5060)
        if via.wants_rport:
            return Target("UDP", source.host, source.port)
        return Target("UDP", source.host, via.port or 5060)

    def _respond_stateless(
        self, request: Request | Headers, source: Target, error: SipError
    ) -> None:
        """Answer a request we cannot or will not keep a transaction for.  Without the
        headers a response copies (§8.2.6.2) there is nobody to answer: drop it."""
        headers = request.headers if isinstance(request, Request) else request
        if any(n not in headers for n in ("Via", "From", "To", "Call-ID", "CSeq")):
            return
        try:
            via = Via.parse(headers.get_all("Via")[0])
            target = self.response_target(via, source)
            headers = self._stamp_via_headers(headers, source)
        except SipError:
            target = source
        resp = make_response(
            headers,
            error.status,
            error.reason,
            to_tag=self.new_tag(),
            headers=[("Warning", _warning(self.config.host, error.detail))],
        )
        self._send(resp, target)

    def _request(self, request: Request, source: Target, now: float) -> None:
        try:
            key = server_key(request)
            target = self.response_target(request.top_via, source)
            request = self._stamp_via(request, source)
        except SipError as exc:
            if request.method != "ACK":
                self._respond_stateless(request, source, exc)
            return
        found = self._server.get(key)
        if found is not None:
            stx, _ = found
            if request.method == "ACK" and not stx.is_invite:
                return
            self._server_outputs(key, stx.on_request(request, now), now)
            return
        if request.method == "ACK":
            self._ack_2xx(request, now)
            return
        if len(self._server) >= self.config.max_transactions:
            self._respond_stateless(request, source, ServiceUnavailable("too many transactions"))
            return
        stx = ServerTransaction(request, target, self.config.timers)
        incoming = IncomingRequest(self, request, source, stx, None, self.new_tag())
        # Non-INVITE: the UAC gives up after 64*T1 (Timer F); INVITE: answer_timeout.
        incoming.answer_deadline = now + (
            self.config.answer_timeout if request.method == "INVITE" else 64 * self.config.timers.t1
        )
        self._server[key] = (stx, incoming)
        self._reschedule("s", key)
        try:
            self._new_request(incoming, key, now)
        except SipError as exc:
            if not incoming.answered:
                self._respond_error(incoming, exc, now)
        except Exception:
            # A failing application must not leave the peer waiting: answer 500, then
            # let the adapter log the error.
            if not incoming.answered:
                incoming.respond(500, now=now)
            raise

    def _respond_error(self, incoming: IncomingRequest, exc: SipError, now: float) -> None:
        headers: list[tuple[str, object]] = []
        if exc.status in (400, 513, 505):
            headers.append(("Warning", _warning(self.config.host, exc.detail)))
        incoming.respond(exc.status, exc.reason, now=now, headers=headers)

    def _new_request(self, incoming: IncomingRequest, key: tuple[str, ...], now: float) -> None:
        req = incoming.request
        method = req.method
        if method == "INVITE":
            # §17.2.1: a 100 Trying unless the TU answers within 200 ms; we send it at once.
            incoming.respond(100, now=now)
        check_request(req)
        if method == "CANCEL":
            self._cancel_received(incoming, now)
            return
        mf = req.max_forwards
        if mf == 0 and method != "OPTIONS":
            # §8.2 / RFC 4475 §3.3.11 (the brief: 483 for requests that would be relayed;
            # OPTIONS is answered per §11).
            incoming.respond(483, now=now)
            return
        allowed = CORE_METHODS | self.app.methods
        if method not in allowed:
            status = 405 if method in KNOWN_METHODS else 501
            incoming.respond(status, now=now, headers=[("Allow", ", ".join(self.allowed_methods))])
            return
        if not isinstance(req.uri, SipURI):
            incoming.respond(416, now=now)  # §8.2.2.1
            return
        to = req.to
        if to.tag is None and not self._serves(req.uri):
            incoming.respond(404, now=now)  # §8.2.2.1
            return
        if to.tag is None:
            mkey = (req.from_.tag or "", req.call_id, req.cseq.seq, method)
            other = self._merge.get(mkey)
            if other is not None and other != key and other in self._server:
                incoming.respond(482, "Loop Detected", now=now)  # §8.2.2.2 merged request
                return
            self._merge[mkey] = key
            self._merged_by[key] = mkey
        unsupported = [r for r in req.headers.get_all("Require") if r not in self.config.supported]
        if unsupported:  # §8.2.2.3
            incoming.respond(420, now=now, headers=[("Unsupported", ", ".join(unsupported))])
            return
        if (
            method == "INVITE" and req.body and (req.content_type or "") not in self.config.accept
        ):  # §8.2.3
            incoming.respond(415, now=now, headers=[("Accept", ", ".join(self.config.accept))])
            return
        if method == "INVITE" and not self._acceptable(req):
            # §21.4.7 (RFC 4475 §3.3.15): our answer is SDP, which the peer does not take.
            incoming.respond(406, now=now, headers=[("Accept", ", ".join(self.config.accept))])
            return
        if to.tag is not None:
            self._in_dialog(incoming, now)
            return
        if method == "OPTIONS":
            incoming.respond(200, now=now, headers=self.capabilities())
            return
        if method == "BYE":
            incoming.respond(481, now=now)
            return
        self.app.on_request(incoming, now)

    def capabilities(self) -> list[tuple[str, object]]:
        """Allow, Accept and Supported headers (§11.2)."""
        out: list[tuple[str, object]] = [
            ("Allow", ", ".join(self.allowed_methods)),
            ("Accept", ", ".join(self.config.accept)),
        ]
        if self.config.supported:
            out.append(("Supported", ", ".join(self.config.supported)))
        return out

    def _acceptable(self, req: Request) -> bool:
        """Whether one of our body types fits the request's Accept (absent: SDP, §20.1)."""
        ranges = [a.split(";", 1)[0].strip(" \t").lower() for a in req.headers.get_all("Accept")]
        if not ranges:
            return True
        for ours in self.config.accept:
            major = ours.split("/", 1)[0]
            if any(r in (ours, f"{major}/*", "*/*") for r in ranges):
                return True
        return False

    def _serves(self, uri: SipURI) -> bool:
        host = uri.host.lower().strip("[]")
        ours = {self.config.host.lower(), *(d.lower() for d in self.config.domains)}
        ours |= {t.host.lower() for t in self.config.listen}
        return host in ours and self.app.serves(uri)

    def _in_dialog(self, incoming: IncomingRequest, now: float) -> None:
        req = incoming.request
        did = DialogId(req.call_id, req.to.tag or "", req.from_.tag or "")
        dialog = self.dialogs.get(did)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            incoming.respond(481, now=now)  # §12.2.2
            return
        incoming.dialog = dialog
        if not dialog.check_remote_cseq(req):
            incoming.respond(500, "Out of Order CSeq", now=now)
            return
        if req.method == "BYE":
            incoming.respond(200, now=now)
            self._end_dialog(dialog, "bye", now)
            return
        if req.method == "OPTIONS":
            incoming.respond(200, now=now, headers=self.capabilities())
            return
        if req.method == "INVITE":
            dialog.refresh_target(req)  # §12.2.2: target refresh
        self.app.on_request(incoming, now)

    def _end_dialog(self, dialog: Dialog, reason: str, now: float) -> None:
        if dialog.state is DialogState.TERMINATED:
            return
        dialog.state = DialogState.TERMINATED
        self.dialogs.pop(dialog.id, None)
        for rkey in [k for k in self._retx if k[0] == dialog.id]:
            del self._retx[rkey]
        self.app.on_dialog_terminated(dialog, reason, now)

    def _cancel_received(self, incoming: IncomingRequest, now: float) -> None:
        """§9.2: match the INVITE by its server-transaction key; 481 when none."""
        req = incoming.request
        ikey = (*server_key(req)[:-1], "INVITE")
        found = self._server.get(ikey)
        if found is None:
            incoming.respond(481, now=now)
            return
        _, invite = found
        # §9.2: the To tag of the CANCEL's 200 SHOULD be that of the INVITE's response.
        incoming.to_tag = invite.dialog.id.local_tag if invite.dialog else invite.to_tag
        incoming.respond(200, now=now, headers=[])
        if not invite.answered:
            invite.cancelled = True
            invite.respond(487, now=now)
            self.app.on_cancel(invite, now)

    def _ack_2xx(self, ack: Request, now: float) -> None:
        """An ACK outside any transaction: the ACK for our 2xx (§13.3.1.4, §17.2.3)."""
        try:
            did = DialogId(ack.call_id, ack.to.tag or "", ack.from_.tag or "")
            seq = ack.cseq.seq
        except SipError:
            return
        dialog = self.dialogs.get(did)
        if dialog is None:
            return
        stopped = self._retx.pop((did, seq), None) is not None
        self._reschedule("r", (did, seq))
        if stopped or dialog.invite_cseq == seq:
            self.app.on_ack(dialog, ack, now)

    def _ack_timeout(self, dialog: Dialog, now: float) -> None:
        """§13.3.1.4: no ACK after 64*T1: the session ends with a BYE."""
        if dialog.state is DialogState.TERMINATED:
            return
        self.send_in_dialog(dialog, "BYE", now, end_reason="no-ack")

    def _respond(
        self,
        incoming: IncomingRequest,
        status: int,
        reason: str | None,
        *,
        now: float,
        headers: Iterable[tuple[str, object]],
        body: bytes,
        content_type: str | None,
    ) -> Response:
        stx = incoming.transaction
        req = incoming.request
        if stx is None:
            raise ProtocolError("this request cannot be answered")
        if stx.final_sent and not (200 <= status < 300 and req.method == "INVITE"):
            raise ProtocolError(f"{req.method} already has a final response")
        extra = list(headers)
        names = {n.lower() for n, _ in extra}
        if "server" not in names:
            extra.append(("Server", self.config.user_agent))
        dialog_creating = req.method == "INVITE" and 200 <= status < 300
        if req.method == "INVITE" and 100 < status < 300:
            # §12.1.1: copy every Record-Route of the request into dialog-forming responses.
            extra = [("Record-Route", r) for r in req.headers.lines("Record-Route")] + extra
            if "contact" not in names:
                extra.append(("Contact", self._contact(req.uri, stx.target.transport)))
        if dialog_creating and "allow" not in names:
            extra += self.capabilities()[:1]  # §13.3.1.4: the 2xx SHOULD carry Allow
        if req.method == "INVITE" and status == 405 and "allow" not in names:
            extra.append(("Allow", ", ".join(self.allowed_methods)))
        to_tag = incoming.dialog.id.local_tag if incoming.dialog else incoming.to_tag
        resp = make_response(
            req,
            status,
            reason,
            to_tag=to_tag,
            headers=extra,
            body=body,
            content_type=content_type,
        )
        self._enter()
        try:
            key = server_key(req)
            self._server_outputs(key, stx.send_response(resp, now), now)
            if dialog_creating:
                self._uas_2xx(incoming, resp, now)
                self._slim_accepted(key)
        finally:
            self._leave()
        return resp

    def _slim_accepted(self, key: tuple[str, ...]) -> None:
        """Keep only what an INVITE server transaction in Accepted uses.

        For Timer L's 64*T1 (RFC 6026 §8.7) the entry absorbs retransmitted INVITEs and
        matches a late CANCEL, which gets its 200 with the INVITE's To tag and has no
        other effect (§9.2); neither needs the INVITE itself. Without this every newly
        joined (then idle) leg held its INVITE, SDP offer included, for 32 s. The
        application's own IncomingRequest is left as it is.
        """
        entry = self._server.get(key)
        if entry is None:
            return
        stx, held = entry
        stub = Request(method=held.request.method, uri=held.request.uri)
        slim = IncomingRequest(self, stub, held.source, stx, held.dialog, held.to_tag)
        stx.request = stub
        self._server[key] = (stx, slim)

    def _uas_2xx(self, incoming: IncomingRequest, resp: Response, now: float) -> None:
        req = incoming.request
        dialog = incoming.dialog
        if dialog is None:
            contact = Address.parse(resp.headers.get("Contact") or "")
            dialog = Dialog.from_uas(req, resp, contact)
            self.dialogs[dialog.id] = dialog
            incoming.dialog = dialog
        dialog.invite_cseq = req.cseq.seq
        assert incoming.transaction is not None
        t1 = self.config.timers.t1
        self._retx[(dialog.id, req.cseq.seq)] = _Retransmit2xx(
            response=resp,
            target=incoming.transaction.target,
            interval=t1,
            deadline=now + t1,
            give_up=now + 64 * t1,
            dialog=dialog,
        )
        self._reschedule("r", (dialog.id, req.cseq.seq))

    def _server_outputs(self, key: tuple[str, ...], outputs: list[TxOutput], now: float) -> None:
        for o in outputs:
            if isinstance(o, Transmit):
                self._send(o.message, o.target)
            elif isinstance(o, Terminated):
                entry = self._server.pop(key, None)
                if entry is not None:
                    self._forget_merge(key)
        self._reschedule("s", key)
        # TimedOut (Timer H: no ACK for our failure response) needs no action: the
        # Terminated output that follows forgets the transaction.

    def _forget_merge(self, key: tuple[str, ...]) -> None:
        mkey = self._merged_by.pop(key, None)
        if mkey is not None and self._merge.get(mkey) == key:
            del self._merge[mkey]

    # ------------------------------------------------------------------ client side
    def _contact(self, uri: URI, transport: str) -> str:
        local = self.config.local(transport)
        user = uri.user if isinstance(uri, SipURI) and uri.user else None
        scheme = "sips" if transport == "TLS" else "sip"
        host = f"[{local.host}]" if ":" in local.host else local.host
        userpart = f"{user}@" if user else ""
        tparam = "" if transport == "UDP" else f";transport={transport.lower()}"
        if transport == "TLS":
            tparam = ""
        return f"<{scheme}:{userpart}{host}:{local.port}{tparam}>"

    def new_request(
        self,
        method: str,
        uri: URI | str,
        *,
        from_: Address | str,
        to: Address | str | None = None,
        headers: Iterable[tuple[str, object]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        call_id: str | None = None,
        cseq: int = 1,
    ) -> Request:
        """An out-of-dialog request (§8.1.1); Via and Contact are added when sent."""
        from .uri import parse_uri

        ruri = parse_uri(uri) if isinstance(uri, str) else uri
        from_addr = Address.parse(from_) if isinstance(from_, str) else from_
        if from_addr.tag is None:
            from_addr = from_addr.with_tag(self.new_tag())
        if to is None:
            to_addr = Address(uri=ruri)
        else:
            to_addr = Address.parse(to) if isinstance(to, str) else to
        fields: list[tuple[str, object]] = [
            ("Max-Forwards", 70),
            ("From", from_addr),
            ("To", to_addr),
            ("Call-ID", call_id or self.new_call_id()),
            ("CSeq", f"{cseq} {method}"),
            ("User-Agent", self.config.user_agent),
            *headers,
        ]
        if content_type is not None:
            fields.append(("Content-Type", content_type))
        return Request(method=method, uri=ruri, headers=Headers.of(fields), body=body)

    def invite(
        self,
        uri: URI | str,
        *,
        from_: Address | str,
        now: float,
        handler: ResponseHandler | None = None,
        to: Address | str | None = None,
        body: bytes = b"",
        content_type: str | None = "application/sdp",
        headers: Iterable[tuple[str, object]] = (),
    ) -> OutgoingRequest:
        """Send an INVITE (dial-out).  Responses go to ``handler``; a 2xx creates
        ``outgoing.dialog`` and is ACKed by the core (§13.2.2.4)."""
        req = self.new_request(
            "INVITE",
            uri,
            from_=from_,
            to=to,
            headers=headers,
            body=body,
            content_type=content_type if body else None,
        )
        return self.send_request(req, now, handler)

    def send_request(
        self,
        request: Request,
        now: float,
        handler: ResponseHandler | None = None,
        *,
        dialog: Dialog | None = None,
    ) -> OutgoingRequest:
        """Send a request through a new client transaction.  The next hop is the top
        Route, else the outbound proxy (as a pre-loaded route, §8.1.2), else the
        Request-URI; it is resolved per RFC 3263 (possibly via a Resolve command)."""
        self._enter()
        try:
            out = OutgoingRequest(self, request, handler, dialog)
            if "Route" not in request.headers and self.config.outbound_proxy is not None:
                proxy = self.config.outbound_proxy
                if not proxy.lr:
                    proxy = attrs.evolve(proxy, params=proxy.params.set("lr"))
                out.request = request.with_headers(request.headers.prepend("Route", f"<{proxy}>"))
            self._route(out, out.request, now)
            return out
        finally:
            self._leave()

    def _next_hop(self, request: Request) -> URI:
        routes = request.routes
        return routes[0].uri if routes else request.uri

    def _route(self, out: OutgoingRequest | None, request: Request, now: float) -> None:
        try:
            plan = plan_resolution(self._next_hop(request), self.config.default_transport)
        except SipError as exc:
            if out is not None:
                self._synthesize(out, exc.status, now)  # 416 for a non-SIP next hop
            return
        if isinstance(plan, Target):
            self._dispatch(out, request, plan, now)
            return
        qid = next(self._query_ids)
        self._resolving[qid] = (out, request)
        self._emit(attrs.evolve(plan, query_id=qid))

    def resolved(self, query_id: int, targets: list[Target], now: float) -> None:
        """The answer to a :class:`Resolve` command: targets in preference order (empty
        when resolution failed, which ends the request with 503, §8.1.3.1)."""
        self._enter()
        try:
            entry = self._resolving.pop(query_id, None)
            if entry is None:
                return
            out, request = entry
            if not targets:
                if out is not None:
                    self._synthesize(out, 503, now)
                return
            self._dispatch(out, request, targets[0], now)
        finally:
            self._leave()

    def _with_via(self, request: Request, target: Target, branch: str) -> Request:
        local = self.config.local(target.transport)
        host = f"[{local.host}]" if ":" in local.host else local.host
        via = f"SIP/2.0/{target.transport} {host}:{local.port};branch={branch};rport"
        headers = request.headers.remove("Via").prepend("Via", via)
        if request.method in ("INVITE", "SUBSCRIBE", "REFER") and "Contact" not in headers:
            headers = headers.add("Contact", self._contact(request.from_.uri, target.transport))
        return request.with_headers(headers)

    def _dispatch(
        self, out: OutgoingRequest | None, request: Request, target: Target, now: float
    ) -> None:
        if out is None:
            # The ACK for a 2xx is not part of a transaction (§13.2.2.4, §17.1.1.1); it is
            # kept for 64*T1 to answer retransmitted 2xx responses.
            ack = self._with_via(request, target, self.new_branch())
            self._send(ack, target)
            did = DialogId(ack.call_id, ack.from_.tag or "", ack.to.tag or "")
            self._acks[(did, ack.cseq.seq)] = (ack, target, now + 64 * self.config.timers.t1)
            self._reschedule("a", (did, ack.cseq.seq))
            return
        if request.method == "CANCEL":
            req = request  # §9.1: same top Via (and branch) as the INVITE
        else:
            branch = self.new_branch()
            req = self._with_via(request, target, branch)
            if self._needs_congestion_control(req, target):
                # §18.1.1: a request above 1300 bytes (path MTU unknown) goes over TCP.
                target = Target("TCP", target.host, target.port)
                req = self._with_via(request, target, branch)
        out.request = req
        out.target = target
        ctx = ClientTransaction(req, target, self.config.timers)
        out.transaction = ctx
        key = ctx.key
        self._client[key] = (ctx, out)
        if req.method == "INVITE":
            self._invite_guard[key] = now + self.config.invite_timeout
            self._reschedule("g", key)
        self._client_outputs(key, ctx.start(now), now)

    def _needs_congestion_control(self, request: Request, target: Target) -> bool:
        if target.transport != "UDP" or len(request.encode()) <= 1300:
            return False
        hop = self._next_hop(request)
        explicit_udp = isinstance(hop, SipURI) and hop.transport == "udp"
        has_tcp = any(t.transport == "TCP" for t in self.config.listen)
        return has_tcp and not explicit_udp

    def _client_outputs(self, key: tuple[str, str], outputs: list[TxOutput], now: float) -> None:
        entry = self._client.get(key)
        if entry is None:
            return
        _, out = entry
        # Bookkeeping first, the application last: an exception in a response handler
        # must not leave a dead transaction in the table or an ACK unsent.
        for o in outputs:
            if isinstance(o, Transmit):
                self._send(o.message, o.target)
            elif isinstance(o, Terminated):
                self._client.pop(key, None)
                self._invite_guard.pop(key, None)
                self._reschedule("g", key)
        self._reschedule("c", key)
        for o in outputs:
            if isinstance(o, ToTU):
                assert isinstance(o.message, Response)
                self._client_response(out, o.message, now)
            elif isinstance(o, TimedOut):
                # §8.1.3.1: a timeout is a 408, a transport error a 503.
                self._synthesize(out, 408 if o.reason == "timeout" else 503, now)

    def _synthesize(self, out: OutgoingRequest, status: int, now: float) -> None:
        if out.final is not None:
            return
        resp = make_response(out.request, status)
        self._client_response(out, resp, now)

    def _client_response(self, out: OutgoingRequest, resp: Response, now: float) -> None:
        req = out.request
        if req.method == "INVITE":
            if resp.status < 200:
                out.provisional = resp
                if out.cancel_requested and not out._cancel_sent:
                    self._send_cancel(out, now)
            elif resp.status < 300 and self._invite_2xx(out, resp, now):
                return  # a retransmission: re-ACKed, not shown to the handler again
            if resp.status >= 200 and out.transaction is not None:
                self._invite_guard.pop(out.transaction.key, None)
                self._reschedule("g", out.transaction.key)
        if resp.status >= 200:
            first = out.final is None
            out.final = out.final or resp
            if not first and req.method != "INVITE":
                return
            if out.dialog is not None and resp.status in (408, 481) and req.method != "INVITE":
                self._end_dialog(out.dialog, str(resp.status), now)  # §12.2.1.2
        if out.handler is not None:
            out.handler(out, resp)

    def _invite_2xx(self, out: OutgoingRequest, resp: Response, now: float) -> bool:
        """ACK a 2xx (§13.2.2.4); returns True when it was a retransmission."""
        try:
            did = DialogId(resp.call_id, resp.from_.tag or "", resp.to.tag or "")
        except SipError:
            return True
        seq = resp.cseq.seq
        stored = self._acks.get((did, seq))
        if stored is not None:
            self._send(stored[0], stored[1])
            return True
        dialog = self.dialogs.get(did)
        if dialog is None:
            if out.dialog is not None and out.dialog.id == did:
                dialog = out.dialog  # re-INVITE within an existing dialog
            elif out.dialog is not None:
                # §13.2.2.4: a 2xx from another fork after the first one: ACK it, then
                # BYE it (we take one session per INVITE).  Not shown to the handler and
                # not kept: a forking peer must not grow the dialog table.
                self._hang_up_fork(Dialog.from_uac(out.request, resp), seq, now)
                return True
            else:
                dialog = Dialog.from_uac(out.request, resp)
                self.dialogs[did] = dialog
        dialog.refresh_target(resp)
        dialog.invite_cseq = seq
        if out.dialog is None:
            out.dialog = dialog
        ack = dialog.build_request("ACK", "", cseq=seq)
        ack = ack.with_headers(ack.headers.remove("Via").remove("Contact"))
        self._route(None, ack, now)
        return False

    def _hang_up_fork(self, dialog: Dialog, seq: int, now: float) -> None:
        """ACK then BYE an extra dialog of a forked INVITE, without telling the app."""
        dialog.invite_cseq = seq
        ack = dialog.build_request("ACK", "", cseq=seq)
        self._route(None, ack.with_headers(ack.headers.remove("Via").remove("Contact")), now)
        bye = dialog.build_request("BYE", "")
        bye = bye.with_headers(bye.headers.remove("Via").remove("Contact"))
        dialog.state = DialogState.TERMINATED
        self.send_request(bye, now, None, dialog=dialog)

    # ------------------------------------------------------------------ requests we start
    def cancel(self, out: OutgoingRequest, now: float) -> None:
        """§9.1: CANCEL a pending INVITE.  Sent once a provisional response has arrived;
        does nothing after a final response."""
        self._enter()
        try:
            if out.request.method != "INVITE" or out.final is not None or out.cancel_requested:
                return
            out.cancel_requested = True
            if out.provisional is not None:
                self._send_cancel(out, now)
        finally:
            self._leave()

    def _send_cancel(self, out: OutgoingRequest, now: float) -> None:
        out._cancel_sent = True
        inv = out.request
        h = inv.headers
        headers = Headers.of(
            [
                ("Via", h.get_all("Via")[0]),
                *[("Route", r) for r in h.lines("Route")],
                ("Max-Forwards", 70),
                ("From", h.get("From")),
                ("To", h.get("To")),
                ("Call-ID", h.get("Call-ID")),
                ("CSeq", f"{inv.cseq.seq} CANCEL"),
            ]
        )
        cancel = Request(method="CANCEL", uri=inv.uri, headers=headers)
        assert out.target is not None
        c_out = OutgoingRequest(self, cancel, None, None)
        self._dispatch(c_out, cancel, out.target, now)
        # §9.1: if no final response arrives within 64*T1 of the CANCEL, give up.
        if out.transaction is not None:
            self._invite_guard[out.transaction.key] = now + 64 * self.config.timers.t1
            self._reschedule("g", out.transaction.key)
            out.cancel_requested = True

    def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        now: float,
        handler: ResponseHandler | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, object]] = (),
        end_reason: str = "local-bye",
    ) -> OutgoingRequest:
        """A new request within ``dialog`` (BYE, re-INVITE, NOTIFY, INFO, ...), §12.2.1.1.
        A BYE ends the dialog at once (reported with ``end_reason``)."""
        extra = list(headers)
        if content_type is not None:
            extra.append(("Content-Type", content_type))
        req = dialog.build_request(method, "", extra=Headers.of(extra))
        req = attrs.evolve(req, headers=req.headers.remove("Via"), body=body)
        if method not in ("INVITE", "SUBSCRIBE", "REFER", "NOTIFY", "UPDATE"):
            req = req.with_headers(req.headers.remove("Contact"))
        if method == "BYE" and dialog.state is not DialogState.TERMINATED:
            out = self.send_request(req, now, handler, dialog=dialog)
            self._end_dialog(dialog, end_reason, now)
            return out
        return self.send_request(req, now, handler, dialog=dialog)

    def bye(self, dialog: Dialog, now: float, handler: ResponseHandler | None = None) -> None:
        """Hang up (§15.1.1): send BYE and end the dialog at once."""
        self.send_in_dialog(dialog, "BYE", now, handler)

    # ------------------------------------------------------------------ responses in
    def _response(self, resp: Response, now: float) -> None:
        try:
            check_response(resp)
            vias = resp.vias
            key = (vias[0].branch or "", resp.cseq.method)
        except SipError:
            return  # §18.1.2: malformed responses are discarded
        if len(vias) != 1:
            return  # §8.1.3.3: a UAC discards responses with more than one Via
        ours = {self.config.host.lower(), *(t.host.lower() for t in self.config.listen)}
        if vias[0].host.strip("[]").lower() not in ours:
            return  # §18.1.2: a sent-by we never insert: not a response to us
        entry = self._client.get(key)
        if entry is not None:
            ctx, _ = entry
            self._client_outputs(key, ctx.on_response(resp, now), now)
            return
        if resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
            # A 2xx retransmission after the transaction ended (§13.2.2.4): re-ACK.
            try:
                did = DialogId(resp.call_id, resp.from_.tag or "", resp.to.tag or "")
            except SipError:
                return
            stored = self._acks.get((did, resp.cseq.seq))
            if stored is not None:
                self._send(stored[0], stored[1])

    def close(self) -> None:
        """Forget every transaction, dialog and timer (clean shutdown)."""
        self._client.clear()
        self._server.clear()
        self._merge.clear()
        self._merged_by.clear()
        self._retx.clear()
        self._acks.clear()
        self._streams.clear()
        self._resolving.clear()
        self._invite_guard.clear()
        self._timers.clear()
        self._scheduled.clear()
        self.dialogs.clear()
        self._outbox.clear()


#: §18.2.2 / RFC 3263 §4.2: default ports when the Via sent-by has none.
_DEFAULT_PORTS = {"TCP": 5060, "TLS": 5061}


def _stream_fallback(response: Response, connection: Target) -> Target | None:
    """§18.2.2: where a response goes when the request's connection has closed: the
    address in ``received`` (always the connection's source address, which is what we
    stamped) and the sent-by port, or the transport's default port."""
    try:
        via = response.top_via
    except SipError:
        return None
    port = via.port or _DEFAULT_PORTS.get(connection.transport.upper(), 5060)
    fallback = Target(connection.transport, via.received or connection.host, port)
    return None if fallback == connection else fallback


def _answerable(head: object) -> bool:
    """A parse error's ``head`` we may answer: a header block, or a request but an ACK."""
    return isinstance(head, Headers) or (isinstance(head, Request) and head.method != "ACK")


def _warning(host: str, detail: str) -> str:
    """§20.43: ``399 host "text"`` with the text made safe for a quoted string."""
    text = "".join(c if c.isprintable() and c not in '"\\' else "?" for c in detail)[:200]
    return f'399 {host} "{text}"'
