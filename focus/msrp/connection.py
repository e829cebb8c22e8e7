"""The sans-IO MSRP connection: transaction, report and session rules of RFC 4975.

One :class:`MsrpConnection` per transport connection.  The adapter feeds it bytes and
timer expiries with the current time and carries out the commands it returns:

* :class:`SendBytes` — write these bytes to the transport;
* :class:`CloseConnection` — framing is lost or the core gave up: close the transport;
* :class:`ArmTimer` — (re)arm the single timer at ``deadline`` (``None``: cancel) and call
  :meth:`MsrpConnection.handle_timeout` then;

and passes the events on to the application (conference logic or UE):
:class:`SessionBound`, :class:`MessageReceived`, :class:`RequestReceived`,
:class:`MessageAborted`, :class:`ReportReceived`, :class:`TransactionCompleted`,
:class:`TransactionFailed`, :class:`MessageSent`, :class:`MessageFailed`,
:class:`FrameRejected`.

Rules implemented here (RFC 4975 unless noted):

* §5.4, §7.3 binding: a request's To-Path must name a session bound to this connection;
  a passive connection binds on the first request (481 unknown, 506 bound elsewhere).
  We are an endpoint, not a relay (RFC 4976), so a To-Path with more than one URI is 481.
* §7.2 responses: Failure-Report ``yes`` (or absent) → always answer; ``partial`` → only
  non-200; ``no`` → never; REPORTs are never answered.  SEND responses go to the leftmost
  From-Path URI, other responses to the whole From-Path, on this connection, ``$``.
* §7.3.1 receiving SEND: 415 for types outside our accept-types, reassembly of chunks
  (any order, overlap: last received wins, bounded; 413 beyond the limit and for later
  chunks of that message), ``#`` drops the message.  The chunk that completes a message
  is answered by the application (``respond``) unless ``auto_accept`` — this is where
  the chat room's 403/404/415/428 decisions (RFC 7701 §6) go.  Other chunks get 200.
* §7.1.3 success reports: sent after a 200 for a message with ``Success-Report: yes``,
  covering the whole message.  §7.1.4 failure reports: :meth:`MsrpConnection.report`.
* §7.1.1 sending: chunking (``a-*/total`` above 2048 octets), a 30 s response timer per
  transaction when Failure-Report is ``yes`` (expiry = 408, treated like a 408 response,
  §10.4), a send window so large messages are paced by their 200s, 413 in a response or
  a REPORT stops the message (§10.5), :meth:`MsrpConnection.abort_message` sends ``#``.
* §12: unknown methods get 501; extension methods listed in the config (RFC 7701's
  NICKNAME) are passed to the application as :class:`RequestReceived`.
* RFC 7701 §6.1 chunk reception timer: an incomplete incoming message is dropped when no
  chunk arrived for ``chunk_reception_timeout`` seconds.

Not done here: fast forwarding of chunks before the message is complete (RFC 7701 §6.1
allows, not requires it; we relay complete messages, bounded by ``max_message_size``), and
relays (RFC 4976).
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import attrs

from .chunking import (
    INTERRUPTIBLE_THRESHOLD,
    Chunk,
    RandomSource,
    Reassembly,
    new_ident,
    pick_transaction_id,
    split_message,
)
from .config import MsrpConfig
from .errors import (
    MsrpError,
    MsrpLimitExceeded,
    MsrpParseError,
    MsrpSessionUnknown,
    MsrpUnsupportedMediaType,
)
from .frame import (
    ByteRange,
    Continuation,
    FailureReport,
    Header,
    Request,
    Response,
    Status,
    is_ident,
    reason_phrase,
)
from .media import accepts
from .parser import BadFrame, FrameParser
from .session import SessionParams, SessionRegistry
from .uri import MsrpUri, format_path

__all__ = [
    "ArmTimer",
    "CloseConnection",
    "Command",
    "FrameRejected",
    "MessageAborted",
    "MessageFailed",
    "MessageReceived",
    "MessageSent",
    "MsrpConnection",
    "ReportReceived",
    "RequestReceived",
    "SendBytes",
    "SessionBound",
    "TransactionCompleted",
    "TransactionFailed",
]


# -- commands for the adapter ------------------------------------------------------------


@attrs.frozen
class SendBytes:
    """Write ``data`` to the transport."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")


@attrs.frozen
class CloseConnection:
    """Close the transport; ``error`` says why (log it)."""

    error: MsrpError


@attrs.frozen
class ArmTimer:
    """Call :meth:`MsrpConnection.handle_timeout` at ``deadline`` (``None``: cancel)."""

    deadline: float | None


# -- events for the application ----------------------------------------------------------


@attrs.frozen
class SessionBound:
    """A session is now bound to this connection (RFC 4975 §5.4)."""

    local_uri: MsrpUri


@attrs.frozen
class MessageReceived:
    """A complete incoming message.

    If ``needs_answer``, call :meth:`MsrpConnection.respond` with ``transaction_id`` (the
    chunk that completed it) — 200 to accept, or an error status.
    """

    local_uri: MsrpUri
    message_id: str
    content_type: str | None
    body: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    transaction_id: str
    from_path: tuple[MsrpUri, ...]
    success_report: bool
    failure_report: FailureReport
    needs_answer: bool
    headers: tuple[Header, ...] = ()


@attrs.frozen
class RequestReceived:
    """An extension request (e.g. RFC 7701 NICKNAME); answer it with ``respond``."""

    local_uri: MsrpUri
    request: Request


@attrs.frozen
class MessageAborted:
    """An incoming message was abandoned: ``#`` received, or chunk reception timeout."""

    local_uri: MsrpUri
    message_id: str
    reason: str


@attrs.frozen
class ReportReceived:
    """A REPORT about a message we sent (RFC 4975 §7.3.2)."""

    local_uri: MsrpUri
    message_id: str
    status: Status
    byte_range: ByteRange | None


@attrs.frozen
class TransactionCompleted:
    """A 200 response to one of our requests."""

    local_uri: MsrpUri
    transaction_id: str
    method: str
    message_id: str | None


@attrs.frozen
class TransactionFailed:
    """An error response, a 30 s timeout (408) or a lost connection for our request."""

    local_uri: MsrpUri
    transaction_id: str
    method: str
    message_id: str | None
    code: int
    comment: str | None


@attrs.frozen
class MessageSent:
    """Every chunk of a message was acknowledged (or sent, when no 200s are expected)."""

    local_uri: MsrpUri
    message_id: str


@attrs.frozen
class MessageFailed:
    """Sending a message stopped: error response, failure REPORT, 413, timeout or abort."""

    local_uri: MsrpUri
    message_id: str
    code: int
    comment: str | None


@attrs.frozen
class FrameRejected:
    """An incoming frame was dropped (answered with an error if the rules allowed it)."""

    transaction_id: str | None
    error: MsrpError


Command = (
    SendBytes
    | CloseConnection
    | ArmTimer
    | SessionBound
    | MessageReceived
    | RequestReceived
    | MessageAborted
    | ReportReceived
    | TransactionCompleted
    | TransactionFailed
    | MessageSent
    | MessageFailed
    | FrameRejected
)


# -- internal state ----------------------------------------------------------------------


@attrs.define
class _Outgoing:
    params: SessionParams
    message_id: str
    content_type: str | None
    headers: tuple[Header, ...]
    success_report: bool
    failure_report: FailureReport
    chunks: deque[Chunk]
    in_flight: dict[str, int] = attrs.Factory(dict)  # transaction id -> body octets
    next_start: int = 1
    total: int = 0
    #: the report and extension header lines of every chunk, encoded once per message
    extra: str = ""
    notify_sent: bool = True


@attrs.define
class _Transaction:
    local_uri: MsrpUri
    method: str
    message_id: str | None
    deadline: float | None  # None: Failure-Report partial, no timer


@attrs.define
class _Incoming:
    params: SessionParams
    reassembly: Reassembly
    deadline: float


@attrs.define
class _Awaiting:
    params: SessionParams
    request: Request
    message_id: str | None
    total: int | None


_ACCEPT_CACHE_SIZE = 64


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Recent(Generic[_K, _V]):
    """The last ``limit`` (up to ``2 * limit``) entries added: two plain dicts that
    swap when the young one is full.  O(1) with no per-entry eviction work, where an
    ``OrderedDict`` with ``popitem`` per insert cost ~1 us per relayed copy."""

    __slots__ = ("_limit", "_old", "_young")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._young: dict[_K, _V] = {}
        self._old: dict[_K, _V] = {}

    def add(self, key: _K, value: _V) -> None:
        young = self._young
        if len(young) >= self._limit:
            self._old = young
            self._young = young = {}
        young[key] = value

    def __contains__(self, key: _K) -> bool:
        return key in self._young or key in self._old

    def pop(self, key: _K) -> _V | None:
        value = self._young.pop(key, None)
        return self._old.pop(key, None) if value is None else value

    def clear(self) -> None:
        self._young = {}
        self._old = {}


@attrs.define
class _SendSide:
    """What every request we send on one session repeats (RFC 4975 §7.1): its
    To-Path/From-Path lines, the peer's accept-types answers by content type, and the
    Message-IDs sent recently (REPORTs name them, §7.3.2)."""

    params: SessionParams
    path_lines: str
    accepts: dict[str, bool]
    sent: _Recent[str, None]


_FLAG_BYTES = {flag: flag.value.encode("ascii") + b"\r\n" for flag in Continuation}


def _check_line_value(value: str) -> None:
    # Header values are utf8text (RFC 4975 §9): no CR/LF may slip into a header line.
    if "\r" in value or "\n" in value:
        raise MsrpParseError("header value contains CR or LF")


def _extra_lines(
    success_report: bool, failure_report: FailureReport, headers: tuple[Header, ...]
) -> str:
    """Success-Report, Failure-Report and extension header lines of a SEND, in the
    order ``Request.encode`` writes them (absent report headers mean no/yes, §7.1.1)."""
    if not headers and not success_report:
        if failure_report is FailureReport.PARTIAL:
            return "Failure-Report: partial\r\n"  # every relayed copy (RFC 7701 §6.3)
        if failure_report is FailureReport.YES:
            return ""
    lines = []
    if success_report:
        lines.append("Success-Report: yes\r\n")
    if failure_report is not FailureReport.YES:
        lines.append(f"Failure-Report: {failure_report.value}\r\n")
    for name, value in headers:
        _check_line_value(value)
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines)


@functools.lru_cache(maxsize=4096)
def _single_range(total: int) -> str:
    """The Byte-Range of a one-chunk message (``*`` end above 2048 octets, §7.1.1)."""
    return f"1-{'*' if total > INTERRUPTIBLE_THRESHOLD else total}/{total}"


def _encode_send(
    tid: str,
    path_lines: str,
    message_id: str,
    *,
    byte_range: str,
    extra: str,
    content_type: str | None,
    body: bytes,
    flag: bytes,
) -> bytes:
    """A SEND chunk with a body, as ``Request.encode`` writes it (RFC 4975 §7.1): one
    f-string for the header block and one join; the body is not copied before it."""
    ct = "" if content_type is None else f"Content-Type: {content_type}\r\n"
    head = (
        f"MSRP {tid} SEND\r\n{path_lines}Message-ID: {message_id}\r\n"
        f"Byte-Range: {byte_range}\r\n{extra}{ct}\r\n"
    )
    return b"".join((head.encode("utf-8"), body, b"\r\n-------", tid.encode("ascii"), flag))


class MsrpConnection:
    """Sans-IO MSRP endpoint state for one transport connection.

    ``registry`` holds the session URIs we handed out; ``connection_id`` is any hashable
    naming this connection in it.  ``random(n)`` supplies random bytes for transaction ids
    and Message-IDs.  With ``auto_accept`` every complete message is answered 200 by the
    core; otherwise the application answers with :meth:`respond`.

    ``expected`` restricts which session URIs may be bound to this connection (481 for
    others, even if the registry knows them).  In this profile every session has its own
    TLS-PSK connection (PROFILE §9), so a passive leg passes its one session URI: a peer
    keyed for one session must not bind another session it learnt the URI of.
    """

    def __init__(
        self,
        *,
        registry: SessionRegistry,
        random: RandomSource,
        connection_id: Hashable | None = None,
        config: MsrpConfig | None = None,
        auto_accept: bool = False,
        expected: Iterable[MsrpUri] | None = None,
    ) -> None:
        self._config = config if config is not None else MsrpConfig()
        self._registry = registry
        self._random = random
        self._id: Hashable = connection_id if connection_id is not None else id(self)
        self._auto_accept = auto_accept
        self._expected = None if expected is None else frozenset(expected)
        self._parser = FrameParser(self._config)
        self._sessions: dict[MsrpUri, SessionParams] = {}
        self._transactions: dict[str, _Transaction] = {}
        self._outgoing: dict[str, _Outgoing] = {}
        self._send_queue: deque[str] = deque()  # message ids with chunks left to send
        self._incoming: dict[tuple[MsrpUri, str], _Incoming] = {}
        self._rejected: OrderedDict[tuple[MsrpUri, str], int] = OrderedDict()
        self._awaiting: OrderedDict[str, _Awaiting] = OrderedDict()
        self._failed: OrderedDict[tuple[MsrpUri, str], None] = OrderedDict()
        # Failure-Report partial requests: (local URI, method, Message-ID) by transaction
        # id, a plain tuple since one is kept per relayed copy and few are ever looked up.
        self._partial: _Recent[str, tuple[MsrpUri, str, str | None]] = _Recent(
            self._config.max_sent_remembered
        )
        # Running totals so the per-message cost does not grow with the backlog (the relay
        # hot path): SEND body octets awaiting a 200 over every message (the window), and
        # the latest ``now`` seen, which keeps transaction deadlines in insertion order.
        self._in_flight_bytes = 0
        self._queued_bytes = 0  # body octets of chunks not yet sent (max_send_queue)
        self._clock = float("-inf")
        self._armed: float | None = None
        self._closed = False
        # Per bound session, what its outgoing requests repeat (formatting two paths and
        # matching accept-types per relayed copy was a large part of the relay's cost),
        # and the Message-IDs we sent recently, to correlate REPORTs (§7.3.2; bounded).
        # The last one used is kept at hand: a leg of the focus has one session, and an
        # MsrpUri's hash is a Python call.
        self._send_sides: dict[MsrpUri, _SendSide] = {}
        self._last_side: tuple[MsrpUri, _SendSide] | None = None

    # -- introspection -------------------------------------------------------------------

    @property
    def connection_id(self) -> Hashable:
        return self._id

    @property
    def sessions(self) -> tuple[SessionParams, ...]:
        """Sessions bound to this connection."""
        return tuple(self._sessions.values())

    @property
    def closed(self) -> bool:
        return self._closed

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timeout` must be called, if any.

        Every entry of ``_transactions`` got ``max(now seen so far) + transaction_timeout``
        when it was added, so the dict's insertion order is deadline order and the oldest
        entry is the earliest: O(1) instead of a scan of up to a window's worth of
        transactions per call.  ``_incoming`` is bounded by ``max_pending_messages``."""
        if not self._incoming:
            for txn in self._transactions.values():
                return txn.deadline
            return None
        deadlines = [i.deadline for i in self._incoming.values()]
        for txn in self._transactions.values():
            if txn.deadline is not None:
                deadlines.append(txn.deadline)
            break
        return min(deadlines) if deadlines else None

    # -- inputs --------------------------------------------------------------------------

    def open_session(self, params: SessionParams, now: float) -> list[Command]:
        """Active side: bind ``params`` here and send the binding SEND (RFC 4975 §5.4).

        The registry must know the session (``registry.add``).  The SEND has no body.
        """
        out: list[Command] = []
        self._bind(params.local_uri, out)
        tid = pick_transaction_id(None, self._random, self._config.id_random_bytes)
        request = Request(
            transaction_id=tid,
            method="SEND",
            to_path=params.peer_path,
            from_path=(params.local_uri,),
            message_id=new_ident(self._random, self._config.id_random_bytes),
            byte_range=ByteRange(1, 0, 0),
        )
        self._send_request(request, params.local_uri, now, out)
        return self._finish(out)

    def receive_data(self, data: bytes, now: float) -> list[Command]:
        """Bytes arrived from the transport."""
        out: list[Command] = []
        if self._closed:
            return out
        try:
            frames = self._parser.feed(data)
        except MsrpError as exc:
            frames = []
            self._fail_connection(exc, out)
        for frame in frames:
            if isinstance(frame, BadFrame):
                self._on_bad_frame(frame, out)
            elif isinstance(frame, Response):
                self._on_response(frame, now, out)
            else:
                self._on_request(frame, now, out)
        if self._parser.error is not None and not self._closed:
            self._fail_connection(self._parser.error, out)
        return self._finish(out)

    def handle_timeout(self, now: float) -> list[Command]:
        """The timer fired: expire transactions (408) and stalled incoming messages."""
        out: list[Command] = []
        # Deadlines are in insertion order (see next_deadline): stop at the first not due.
        due: list[tuple[str, _Transaction]] = []
        for tid, txn in self._transactions.items():
            if txn.deadline is None or txn.deadline > now:
                break
            due.append((tid, txn))
        for tid, txn in due:
            # A failed chunk stops its message and drops its sibling transactions, so
            # entries of this snapshot may be gone already.
            if self._transactions.pop(tid, None) is not None:
                self._transaction_failed(tid, txn, 408, "no response within the timeout", out)
        for key, incoming in list(self._incoming.items()):
            if incoming.deadline <= now:
                del self._incoming[key]
                out.append(MessageAborted(key[0], key[1], "chunk reception timeout"))
        self._pump(now, out)
        return self._finish(out)

    def connection_lost(self, now: float) -> list[Command]:
        """The transport is gone: every session and pending transaction fails (§5.4)."""
        out: list[Command] = []
        if not self._closed:
            self._fail_connection(None, out)
        return self._finish(out)

    def send_message(
        self,
        local_uri: MsrpUri,
        content_type: str,
        body: bytes,
        now: float,
        *,
        message_id: str | None = None,
        success_report: bool = False,
        failure_report: FailureReport = FailureReport.YES,
        headers: Iterable[Header] = (),
        notify_sent: bool = True,
    ) -> tuple[str, list[Command]]:
        """Queue a message for the peer of ``local_uri``; return its Message-ID.

        ``notify_sent=False``: no :class:`MessageSent` for this message (a relay that
        does not follow its copies, RFC 7701 §6.3, spares an event per copy); failures
        are still reported.

        Raises :class:`MsrpUnsupportedMediaType` if the peer did not list ``content_type``
        in its accept-types (RFC 4975 §8.6), :class:`MsrpLimitExceeded` above the peer's
        ``a=max-size``, :class:`MsrpSessionUnknown` if the session is not bound here.

        When ``max_send_queue`` octets already wait behind the send window, the peer is
        not keeping up: the connection fails (``CloseConnection`` with 413, every
        pending message fails, this one too) instead of queueing without bound.

        ``ValueError`` for a caller-chosen ``message_id`` that is not an ident or is
        already in flight.

        Chunks are emitted whole, so ``chunk_size`` also bounds how long a response or
        REPORT may wait behind a chunk (RFC 4975 §7.1.1 asks to interrupt chunks above
        2048 octets for them; in memory, a whole chunk is the interruption unit).
        """
        last = self._last_side
        side = last[1] if last is not None and last[0] is local_uri else self._side(local_uri)
        params = side.params
        accepted = side.accepts.get(content_type)
        if accepted is None:
            _check_line_value(content_type)
            accepted = accepts(params.peer_accept_types, content_type)
            if len(side.accepts) >= _ACCEPT_CACHE_SIZE:
                side.accepts.clear()
            side.accepts[content_type] = accepted
        if not accepted:
            raise MsrpUnsupportedMediaType("the peer does not accept this media type")
        if params.peer_max_size is not None and len(body) > params.peer_max_size:
            # a=max-size is a hint the sender SHOULD respect (RFC 4975 §8.6).
            raise MsrpLimitExceeded("message larger than the peer's a=max-size")
        if message_id is None:
            mid = new_ident(self._random, self._config.id_random_bytes)  # hex: an ident
        elif is_ident(message_id):
            mid = message_id
        else:
            raise ValueError("a Message-ID must be an RFC 4975 ident")
        if mid in self._outgoing:
            raise ValueError("this Message-ID is already being sent")
        if self._queued_bytes and self._queued_bytes + len(body) > self._config.max_send_queue:
            # The peer reads so slowly, or answers so rarely, that a whole queue waits
            # behind the window: end this connection (the others go on) rather than drop
            # its messages silently or hold them for ever.
            overflow: list[Command] = []
            self._fail_connection(
                MsrpLimitExceeded("send queue full: the peer is not acknowledging"), overflow
            )
            overflow.append(MessageFailed(local_uri, mid, 413, "send queue full"))
            return mid, self._finish(overflow)
        headers = tuple(headers)
        extra = _extra_lines(success_report, failure_report, headers)
        side.sent.add(mid, None)
        out: list[Command] = []
        total = len(body)
        if (
            failure_report is not FailureReport.YES
            and not self._send_queue
            and total <= self._config.chunk_size
        ):
            # The relay's hot path: one chunk, no 200 to wait for (RFC 4975 §7.1.2,
            # Failure-Report partial/no), nothing queued ahead of it: encode and send
            # now, without the queue and window bookkeeping.  Same bytes as the
            # general path (tests compare them).
            tid = pick_transaction_id(body, self._random, self._config.id_random_bytes)
            out.append(
                SendBytes(
                    _encode_send(
                        tid,
                        side.path_lines,
                        mid,
                        byte_range=_single_range(total),
                        extra=extra,
                        content_type=content_type,
                        body=body,
                        flag=_FLAG_BYTES[Continuation.COMPLETE],
                    )
                )
            )
            if failure_report is FailureReport.PARTIAL:
                self._remember_partial(tid, (local_uri, "SEND", mid))
            if notify_sent:
                out.append(MessageSent(local_uri, mid))
            return mid, out  # no deadline was added: _finish would arm nothing new
        self._queued_bytes += total
        self._outgoing[mid] = _Outgoing(
            params=params,
            message_id=mid,
            content_type=content_type,
            headers=headers,
            success_report=success_report,
            failure_report=failure_report,
            chunks=deque(split_message(body, self._config.chunk_size)),
            total=total,
            extra=extra,
            notify_sent=notify_sent,
        )
        self._send_queue.append(mid)
        self._pump(now, out)
        return mid, self._finish(out)

    def abort_message(self, message_id: str, now: float) -> list[Command]:
        """Stop sending a message; if chunks were left, send an empty ``#`` chunk (§7.1)."""
        out: list[Command] = []
        message = self._drop_outgoing(message_id)
        if message is None:
            return out
        if message.chunks:
            rest = ByteRange(message.next_start, None, message.total)
            chunk = Chunk(rest, b"", Continuation.ABORT)
            tid = pick_transaction_id(chunk.body, self._random, self._config.id_random_bytes)
            out.append(SendBytes(self._encode_chunk(message, chunk, tid)))
        self._stop_message(message.params.local_uri, message_id, 0, "aborted", out)
        return self._finish(out)

    def send_request(
        self,
        local_uri: MsrpUri,
        method: str,
        now: float,
        *,
        headers: Iterable[Header] = (),
        content_type: str | None = None,
        body: bytes | None = None,
    ) -> tuple[str, list[Command]]:
        """Send a non-SEND request (e.g. RFC 7701 NICKNAME); return its transaction id.

        No Success-/Failure-Report headers (RFC 7701 §7.1), so the response is expected
        within the transaction timeout.
        """
        if method in ("SEND", "REPORT") or not method.isascii() or not method.isupper():
            raise ValueError("send_request is for extension methods (1*UPALPHA, not SEND/REPORT)")
        params = self._session(local_uri)
        tid = pick_transaction_id(body, self._random, self._config.id_random_bytes)
        request = Request(
            transaction_id=tid,
            method=method,
            to_path=params.peer_path,
            from_path=(local_uri,),
            content_type=content_type,
            headers=tuple(headers),
            body=body,
        )
        request.validate()
        out: list[Command] = []
        self._send_request(request, local_uri, now, out)
        return tid, self._finish(out)

    def respond(
        self, transaction_id: str, code: int, now: float, comment: str | None = None
    ) -> list[Command]:
        """Answer a :class:`MessageReceived` or :class:`RequestReceived` that needs it.

        Follows Failure-Report (§7.2); a 200 to a message with ``Success-Report: yes`` also
        sends the success REPORT (§7.1.3).  Raises ``KeyError`` for an unknown id.
        """
        out: list[Command] = []
        self._respond(transaction_id, code, comment, out)
        return self._finish(out)

    def report(
        self,
        message: MessageReceived,
        code: int,
        now: float,
        *,
        comment: str | None = None,
        content_type: str | None = None,
        body: bytes | None = None,
    ) -> list[Command]:
        """Send a REPORT about a received message, if its report headers allow it.

        ``code == 200`` is a success report (only with ``Success-Report: yes``, §7.1.3);
        any other code a failure report (never with ``Failure-Report: no``, §7.1.4).  The
        optional body is informational (RFC 7701 §6.2 puts a CPIM wrapper there).
        """
        out: list[Command] = []
        if code == 200 and not message.success_report:
            return out
        if code != 200 and message.failure_report is FailureReport.NO:
            return out
        params = self._sessions.get(message.local_uri)
        if params is None:
            return out
        total = len(message.body)
        self._send_report(
            params,
            message.from_path,
            message.message_id,
            out,
            status=Status(code, comment if comment is not None else reason_phrase(code)),
            byte_range=ByteRange(1, total, total),
            content_type=content_type,
            body=body,
        )
        return self._finish(out)

    def _respond(
        self, transaction_id: str, code: int, comment: str | None, out: list[Command]
    ) -> None:
        awaiting = self._awaiting.pop(transaction_id)
        self._answer(awaiting.request, awaiting.params.local_uri, code, comment, out)
        request = awaiting.request
        if (
            code == 200
            and request.method == "SEND"
            and request.wants_success_report
            and awaiting.message_id is not None
        ):
            total = awaiting.total or 0
            self._send_report(
                awaiting.params,
                request.from_path,
                awaiting.message_id,
                out,
                status=Status(200, "OK"),
                byte_range=ByteRange(1, total, total),
            )

    # -- internals: binding --------------------------------------------------------------

    def _session(self, local_uri: MsrpUri) -> SessionParams:
        params = self._sessions.get(local_uri)
        if params is None:
            raise MsrpSessionUnknown("session not bound to this connection")
        return params

    def _bind(self, local_uri: MsrpUri, out: list[Command]) -> SessionParams:
        params = self._sessions.get(local_uri)
        if params is not None:
            return params
        if self._expected is not None and local_uri not in self._expected:
            raise MsrpSessionUnknown("session not expected on this connection")
        params = self._registry.bind(local_uri, self._id)
        self._sessions[local_uri] = params
        self._send_sides.pop(local_uri, None)
        self._last_side = None
        out.append(SessionBound(local_uri))
        return params

    # -- internals: receiving ------------------------------------------------------------

    def _on_bad_frame(self, bad: BadFrame, out: list[Command]) -> None:
        out.append(FrameRejected(bad.transaction_id, bad.error))
        if bad.method is None or bad.method == "REPORT" or not bad.to_path or not bad.from_path:
            return
        local = bad.to_path[-1]
        if bad.error.status == 413 and bad.message_id is not None and local in self._sessions:
            # A chunk above the limit: refuse the rest of that message too (§10.5).
            self._remember_rejected((local, bad.message_id))
        request = Request(
            transaction_id=bad.transaction_id,
            method=bad.method,
            to_path=bad.to_path,
            from_path=bad.from_path,
            failure_report=bad.failure_report,
        )
        self._answer(request, local, bad.error.status, bad.error.reason, out)

    def _on_request(self, request: Request, now: float, out: list[Command]) -> None:
        try:
            if request.transaction_id in self._awaiting:
                # RFC 4975 §7.1: ids MUST NOT collide with transactions that still exist;
                # delivering it would give the application two requests it answers by
                # the same id.
                raise MsrpParseError("transaction id in use by a pending request")
            if len(request.to_path) != 1:
                raise MsrpSessionUnknown("To-Path must name exactly one session of ours")
            params = self._bind(request.to_path[0], out)
        except MsrpError as exc:
            out.append(FrameRejected(request.transaction_id, exc))
            self._answer(request, request.to_path[-1], exc.status, exc.reason, out)
            return
        if request.method == "SEND":
            self._on_send(params, request, now, out)
        elif request.method == "REPORT":
            self._on_report(params, request, now, out)
        elif request.method in self._config.extension_methods:
            self._await_answer(request.transaction_id, _Awaiting(params, request, None, None))
            out.append(RequestReceived(params.local_uri, request))
        else:
            self._answer(request, params.local_uri, 501, reason_phrase(501), out)

    def _on_send(
        self, params: SessionParams, request: Request, now: float, out: list[Command]
    ) -> None:
        local = params.local_uri
        if request.body is None:
            # A body-less SEND carries no content (binding or keep-alive, §5.4, §7.1).
            self._answer(request, local, 200, "OK", out)
            return
        mid = request.message_id
        assert mid is not None  # validated by the parser for SENDs with a body
        key = (local, mid)
        if key in self._rejected:
            self._answer(request, local, 413, reason_phrase(413), out)
            return
        content_type = request.content_type or ""
        if not accepts(params.accept_types, content_type):
            self._answer(request, local, 415, reason_phrase(415), out)
            return
        if request.continuation is Continuation.ABORT:
            self._incoming.pop(key, None)
            self._answer(request, local, 200, "OK", out)
            out.append(MessageAborted(local, mid, "aborted by the sender"))
            return
        incoming = self._incoming.get(key)
        try:
            if incoming is None:
                if len(self._incoming) >= self._config.max_pending_messages:
                    raise MsrpLimitExceeded("too many messages in reassembly")
                incoming = _Incoming(params, Reassembly(mid, self._config.max_message_size), 0.0)
            complete = incoming.reassembly.add(
                request.byte_range, request.body, request.continuation, request.content_type
            )
        except MsrpError as exc:
            self._incoming.pop(key, None)
            if exc.status == 413:
                self._remember_rejected(key)
            out.append(FrameRejected(request.transaction_id, exc))
            self._answer(request, local, exc.status, exc.reason, out)
            return
        if not complete:
            incoming.deadline = now + self._config.chunk_reception_timeout
            self._incoming[key] = incoming
            self._answer(request, local, 200, "OK", out)
            return
        self._incoming.pop(key, None)
        body = incoming.reassembly.body()
        self._await_answer(request.transaction_id, _Awaiting(params, request, mid, len(body)))
        out.append(
            MessageReceived(
                local_uri=local,
                message_id=mid,
                content_type=incoming.reassembly.content_type,
                body=body,
                transaction_id=request.transaction_id,
                from_path=request.from_path,
                success_report=request.wants_success_report,
                failure_report=request.failure_mode,
                needs_answer=not self._auto_accept,
                headers=request.headers,
            )
        )
        if self._auto_accept:
            self._respond(request.transaction_id, 200, None, out)

    def _await_answer(self, transaction_id: str, awaiting: _Awaiting) -> None:
        """Remember a request the application must answer; bounded, body not kept."""
        request = awaiting.request
        if request.body is not None:
            awaiting.request = attrs.evolve(request, body=None, content_type=None)
        self._awaiting[transaction_id] = awaiting
        while len(self._awaiting) > self._config.max_unanswered:
            # The application never answered: forget it; the peer's 30 s timer fires.
            self._awaiting.popitem(last=False)

    def _remember_rejected(self, key: tuple[MsrpUri, str]) -> None:
        self._rejected[key] = 413
        while len(self._rejected) > self._config.max_rejected_remembered:
            self._rejected.popitem(last=False)

    def _on_report(
        self, params: SessionParams, request: Request, now: float, out: list[Command]
    ) -> None:
        # REPORTs are never answered and never trigger REPORTs (§7.1.2).
        mid = request.message_id
        status = request.status
        assert mid is not None and status is not None  # validated by the parser
        side = self._send_sides.get(params.local_uri)
        if side is None or mid not in side.sent:
            return  # unknown Message-ID: silently ignored (§7.1.1, §7.1.2)
        out.append(ReportReceived(params.local_uri, mid, status, request.byte_range))
        if status.namespace == 0 and status.code != 200:
            # A failure REPORT (413 included, §10.5) stops the message (§7.3.2).
            self._stop_message(params.local_uri, mid, status.code, status.comment, out)

    def _on_response(self, response: Response, now: float, out: list[Command]) -> None:
        txn = self._transactions.pop(response.transaction_id, None)
        if txn is None:
            partial = self._partial.pop(response.transaction_id)
            if partial is not None:
                txn = _Transaction(*partial, None)
        if txn is None:
            out.append(
                FrameRejected(
                    response.transaction_id, MsrpError("response to no pending transaction")
                )
            )
            return
        mid = txn.message_id
        message = self._outgoing.get(mid) if mid is not None and txn.method == "SEND" else None
        if 200 <= response.code < 300:
            out.append(
                TransactionCompleted(txn.local_uri, response.transaction_id, txn.method, mid)
            )
            if message is not None:
                self._in_flight_bytes -= message.in_flight.pop(response.transaction_id, 0)
                if not message.chunks and not message.in_flight:
                    del self._outgoing[message.message_id]
                    if message.notify_sent:
                        out.append(MessageSent(txn.local_uri, message.message_id))
            self._pump(now, out)
            return
        self._transaction_failed(response.transaction_id, txn, response.code, response.comment, out)
        self._pump(now, out)

    # -- internals: sending --------------------------------------------------------------

    def _transaction_failed(
        self, tid: str, txn: _Transaction, code: int, comment: str | None, out: list[Command]
    ) -> None:
        out.append(TransactionFailed(txn.local_uri, tid, txn.method, txn.message_id, code, comment))
        if txn.method == "SEND" and txn.message_id is not None:
            # 413 (§10.5) and every other failure of a chunk stop the whole message.
            self._stop_message(txn.local_uri, txn.message_id, code, comment, out)

    def _stop_message(
        self,
        local_uri: MsrpUri,
        message_id: str,
        code: int,
        comment: str | None,
        out: list[Command],
    ) -> None:
        """Stop sending a message and tell the application, once per message."""
        message = self._drop_outgoing(message_id)
        if message is not None:
            for tid in message.in_flight:
                self._transactions.pop(tid, None)
        key = (local_uri, message_id)
        if key in self._failed:
            return
        self._failed[key] = None
        while len(self._failed) > self._config.max_sent_remembered:
            self._failed.popitem(last=False)
        out.append(MessageFailed(local_uri, message_id, code, comment))

    def _side(self, local_uri: MsrpUri) -> _SendSide:
        """The send state of a bound session (481 if not bound), made the last used."""
        side = self._send_sides.get(local_uri)
        if side is None:
            params = self._session(local_uri)
            side = _SendSide(
                params=params,
                path_lines=(
                    f"To-Path: {format_path(params.peer_path)}\r\nFrom-Path: {params.local_uri}\r\n"
                ),
                accepts={},
                sent=_Recent(self._config.max_sent_remembered),
            )
            self._send_sides[local_uri] = side
        self._last_side = (local_uri, side)
        return side

    def _encode_chunk(self, message: _Outgoing, chunk: Chunk, tid: str) -> bytes:
        """The SEND for one chunk: what ``Request(...).encode()`` gives, built from the
        message's pre-encoded header lines (tests check both agree)."""
        return _encode_send(
            tid,
            self._side(message.params.local_uri).path_lines,
            message.message_id,
            byte_range=str(chunk.byte_range),
            extra=message.extra,
            content_type=message.content_type,
            body=chunk.body,
            flag=_FLAG_BYTES[chunk.continuation],
        )

    def _remember_partial(self, tid: str, txn: tuple[MsrpUri, str, str | None]) -> None:
        # No timer, no 200 will come, but an error response must still reach the
        # user (§7.1.1): remember the transaction, bounded, without a deadline.
        self._partial.add(tid, txn)

    def _pump(self, now: float, out: list[Command]) -> None:
        """Send queued chunks while the window allows (paced by 200 responses)."""
        window = self._config.send_window
        while self._send_queue:
            mid = self._send_queue[0]
            message = self._outgoing.get(mid)
            if message is None or not message.chunks:
                self._send_queue.popleft()
                continue
            acked = message.failure_report is FailureReport.YES
            in_flight = self._in_flight_bytes
            if acked and in_flight and in_flight + len(message.chunks[0].body) > window:
                return
            chunk = message.chunks.popleft()
            size = len(chunk.body)
            self._queued_bytes -= size
            tid = pick_transaction_id(chunk.body, self._random, self._config.id_random_bytes)
            message.next_start = chunk.byte_range.start + size
            out.append(SendBytes(self._encode_chunk(message, chunk, tid)))
            local = message.params.local_uri
            if acked:
                message.in_flight[tid] = size
                self._in_flight_bytes += size
                self._track(tid, local, "SEND", mid, now)
            elif message.failure_report is FailureReport.PARTIAL:
                self._remember_partial(tid, (local, "SEND", mid))
            if not message.chunks:
                self._send_queue.popleft()
                if not acked:
                    # No 200s will come (partial/no): done once the last chunk is out.
                    del self._outgoing[mid]
                    if message.notify_sent:
                        out.append(MessageSent(message.params.local_uri, mid))

    def _drop_outgoing(self, message_id: str) -> _Outgoing | None:
        """Forget a message being sent; its unacknowledged chunks leave the window."""
        message = self._outgoing.pop(message_id, None)
        if message is not None:
            self._in_flight_bytes -= sum(message.in_flight.values())
            self._queued_bytes -= sum(len(chunk.body) for chunk in message.chunks)
        return message

    def _send_request(
        self, request: Request, local_uri: MsrpUri, now: float, out: list[Command]
    ) -> None:
        out.append(SendBytes(request.encode()))
        mode = request.failure_mode
        if request.method == "REPORT" or mode is FailureReport.NO:
            return  # no response can come (§7.1.2, §7.1.4)
        if mode is FailureReport.PARTIAL:
            self._remember_partial(
                request.transaction_id, (local_uri, request.method, request.message_id)
            )
            return
        self._track(request.transaction_id, local_uri, request.method, request.message_id, now)

    def _track(
        self, tid: str, local_uri: MsrpUri, method: str, message_id: str | None, now: float
    ) -> None:
        """Start the response timer of a Failure-Report ``yes`` request (§7.1.1)."""
        # A clock that steps back must not put a deadline before older ones (the order
        # next_deadline relies on); such a transaction times out at most that step late.
        self._clock = max(self._clock, now)
        self._transactions[tid] = _Transaction(
            local_uri, method, message_id, self._clock + self._config.transaction_timeout
        )

    def _send_report(
        self,
        params: SessionParams,
        to_path: tuple[MsrpUri, ...],
        message_id: str,
        out: list[Command],
        *,
        status: Status,
        byte_range: ByteRange,
        content_type: str | None = None,
        body: bytes | None = None,
    ) -> None:
        tid = pick_transaction_id(body, self._random, self._config.id_random_bytes)
        report = Request(
            transaction_id=tid,
            method="REPORT",
            to_path=to_path,
            from_path=(params.local_uri,),
            message_id=message_id,
            byte_range=byte_range,
            status=status,
            content_type=content_type,
            body=body,
        )
        out.append(SendBytes(report.encode()))

    def _answer(
        self,
        request: Request,
        local_uri: MsrpUri,
        code: int,
        comment: str | None,
        out: list[Command],
    ) -> None:
        """Send the response ``request`` asked for under its Failure-Report (§7.2)."""
        if request.method == "REPORT":
            return
        mode = request.failure_mode
        if mode is FailureReport.NO or (mode is FailureReport.PARTIAL and code == 200):
            return
        to_path = request.from_path[:1] if request.method == "SEND" else request.from_path
        response = Response(
            transaction_id=request.transaction_id,
            code=code,
            comment=comment if comment is not None else reason_phrase(code),
            to_path=to_path,
            from_path=(local_uri,),
        )
        out.append(SendBytes(response.encode()))

    # -- internals: failure and bookkeeping ----------------------------------------------

    def _fail_connection(self, error: MsrpError | None, out: list[Command]) -> None:
        self._closed = True
        if error is not None:
            out.append(CloseConnection(error))
        for tid, txn in list(self._transactions.items()):
            del self._transactions[tid]
            out.append(
                TransactionFailed(
                    txn.local_uri, tid, txn.method, txn.message_id, 408, "connection lost"
                )
            )
        for mid, message in list(self._outgoing.items()):
            out.append(MessageFailed(message.params.local_uri, mid, 408, "connection lost"))
        self._outgoing.clear()
        self._in_flight_bytes = 0
        self._queued_bytes = 0
        self._send_queue.clear()
        self._partial.clear()
        for local, mid in list(self._incoming):
            out.append(MessageAborted(local, mid, "connection lost"))
        self._incoming.clear()
        self._awaiting.clear()
        self._registry.unbind_connection(self._id)
        self._sessions.clear()
        self._send_sides.clear()
        self._last_side = None

    def _finish(self, out: list[Command]) -> list[Command]:
        deadline = self.next_deadline()
        if deadline != self._armed:
            self._armed = deadline
            out.append(ArmTimer(deadline))
        return out
