"""MSRP legs over TLS-PSK: one TCP connection per MSRP session, one PSK per connection.

A *leg* is the transport of one participant's MSRP session (RFC 4975) with the focus.
This module owns sockets, timers and buffers only; every MSRP decision (framing, session
binding, responses, REPORTs, chunking) belongs to the sans-IO core
:class:`focus.msrp.connection.MsrpConnection`, one per leg, and relaying to the conference
layer. The adapter feeds received bytes to the core with the clock's ``now`` and carries
out the commands it returns (:meth:`MsrpLeg.execute`): ``SendBytes`` goes to the leg's
bounded queue, ``ArmTimer`` (re)arms the leg's one MSRP timer, ``CloseConnection`` ends
the leg with :class:`LegProtocolError`; every other item is an event for the
:class:`LegListener` (``MessageReceived``, ``SessionBound``…). The listener acts on the
core the same way: ``leg.execute(leg.connection.respond(tid, 200, leg.now()))``.

Roles (RFC 6135, RFC 4145; PROFILE.md §8–9; DIGEST.md §8.3). The side that opens the TCP
connection is "active" and also the TLS client; the other is "passive" and the TLS
server.

- :class:`PassiveLeg` listens on a port of its own, taken from a configured range by a
  :class:`PortAllocator`. The PSK identity is empty, so the port is the only thing that
  tells the server which PSK to use: a passive leg accepts exactly one connection, then
  closes its listener; any further connection that reaches it is dropped at once.
  Deviation from RFC 4975 §5.4 (connection reuse between sessions): not allowed here,
  each session has its own PSK.
- :class:`ActiveLeg` connects to the peer's address from ``a=path``.

Both report to the listener: ``leg_up`` once the TLS handshake has completed (a TCP
connection alone is not keyed: Twisted calls ``connectionMade`` before the handshake,
so the adapter waits for ``IHandshakeListener.handshakeCompleted``), ``msrp_event`` per
event of the core, and ``leg_failed`` with a typed :class:`LegError` when the leg ends
without the local side asking (setup timeout, handshake failure/wrong PSK, connection
lost, protocol error, queue overflow).

Flow control. The leg registers itself as a streaming producer (``IPushProducer``) with
its TLS transport. When the socket's send buffer fills, Twisted pauses it; while paused,
:meth:`MsrpLeg.send` appends to the leg's own bounded queue (``max_queued_bytes``) and
:meth:`resumeProducing` drains it. A slow reader therefore only fills its own queue; when
that overflows, *that* leg fails with :class:`LegQueueOverflow` and is aborted. The
sender of a relayed message and every other leg are unaffected, because ``send`` never
raises and never blocks. Reading can be paused by the application
(:meth:`MsrpLeg.pause_reading`) to push back on a fast sender.

TLS is injected: the constructor takes the leg's ``IOpenSSLServerConnectionCreator`` /
``IOpenSSLClientConnectionCreator`` (``focus.tls_psk`` builds them from the TEK). The
adapter never sees the PSK. Reactor and clock are injected too.
"""

from __future__ import annotations

import contextlib
import enum
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs
from OpenSSL import SSL
from twisted.internet import error as neterror
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import ClientFactory, Factory, connectionDone
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer  # type: ignore[import-untyped]

from focus.msrp.connection import (
    ArmTimer,
    CloseConnection,
    Command,
    FrameRejected,
    MessageAborted,
    MessageFailed,
    MessageReceived,
    MessageSent,
    MsrpConnection,
    ReportReceived,
    RequestReceived,
    SendBytes,
    SessionBound,
    TransactionCompleted,
    TransactionFailed,
)

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress

__all__ = [
    "ActiveLeg",
    "LegClock",
    "LegConfig",
    "LegConnectFailed",
    "LegConnectionLost",
    "LegError",
    "LegHandshakeFailed",
    "LegListener",
    "LegProtocolError",
    "LegQueueOverflow",
    "LegState",
    "LegTimeout",
    "MsrpEvent",
    "MsrpLeg",
    "PassiveLeg",
    "PortAllocator",
    "PortRangeExhausted",
    "TCPReactor",
]


# --- errors -----------------------------------------------------------------------


class LegError(Exception):
    """Root of the leg errors: why a leg could not start or ended.

    Messages name the leg and the cause; they never carry PSKs or message bodies.
    """


class PortRangeExhausted(LegError):
    """Every port of the configured range is in use by a leg or by someone else."""


class LegTimeout(LegError):
    """The leg was not up (connected *and* keyed) within ``setup_timeout``."""


class LegHandshakeFailed(LegError):
    """The TLS-PSK handshake failed: wrong PSK (``bad record mac``), no common suite,
    a TLS 1.3-only peer, or the peer went away before the handshake finished.

    ``reasons`` are OpenSSL's reason strings, when OpenSSL gave any.
    """

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class LegConnectionLost(LegError):
    """The connection ended after the leg was up (peer close, reset, TLS record error)."""


class LegConnectFailed(LegConnectionLost):
    """An active leg's TCP connect failed (refused, unreachable)."""


class LegProtocolError(LegError):
    """The peer's byte stream cannot be framed as MSRP any more (RFC 4975 §7.1).

    ``status`` is the MSRP status the core attached to the error (400/413).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LegQueueOverflow(LegError):
    """The peer read too slowly: the leg's outgoing queue went over its bound."""


# --- configuration and ports --------------------------------------------------------


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive")


def _port_range(_inst: object, _attribute: object, value: tuple[int, int]) -> None:
    low, high = value
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"port_range {low}-{high} is not a range of TCP ports")


@attrs.frozen
class LegConfig:
    """Settings of the MSRP leg adapter (one object for all legs).

    - ``host``: interface passive legs listen on (the address put in ``a=path``).
    - ``port_range``: inclusive range passive legs take their port from.
    - ``setup_timeout``: seconds from ``start()`` until the leg must be up: for a
      passive leg, peer connected and handshake done; for an active leg, connect and
      handshake.
    - ``max_queued_bytes``: bound of each leg's outgoing queue (bytes).
    - ``close_timeout``: seconds a locally closed leg waits for the peer to finish the
      TLS shutdown (its close_notify, or a TCP close) before the socket is aborted.

    MSRP limits and timers live in the ``MsrpConfig`` of each leg's ``MsrpConnection``.
    """

    host: str = "127.0.0.1"
    port_range: tuple[int, int] = attrs.field(default=(20000, 20999), validator=_port_range)
    setup_timeout: float = attrs.field(default=30.0, validator=_positive)
    max_queued_bytes: int = attrs.field(default=1024 * 1024, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)


class PortAllocator:
    """Hands out ports of an inclusive range, round robin, and takes them back.

    Round robin (rather than lowest first) keeps a port that was just released out of
    use for as long as possible, so a late packet of an old leg's connection is less
    likely to reach a new leg. The allocator only knows its own bookkeeping; a port
    some other program holds is discovered by the failing ``listen`` and skipped.
    """

    def __init__(self, low: int, high: int) -> None:
        _port_range(None, None, (low, high))
        self._low = low
        self._size = high - low + 1
        self._next = 0
        self._used: set[int] = set()

    @classmethod
    def from_config(cls, config: LegConfig) -> PortAllocator:
        return cls(*config.port_range)

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._used)

    def allocate(self) -> int:
        """Return a port no other leg holds; raise :class:`PortRangeExhausted`."""
        for step in range(self._size):
            port = self._low + (self._next + step) % self._size
            if port not in self._used:
                self._used.add(port)
                self._next = (port - self._low + 1) % self._size
                return port
        raise PortRangeExhausted(
            f"all {self._size} ports from {self._low} to {self._low + self._size - 1} are in use"
        )

    def release(self, port: int) -> None:
        """Give ``port`` back (releasing a port twice is harmless)."""
        self._used.discard(port)


class TCPReactor(Protocol):
    """The part of ``IReactorTCP`` the legs use (a real reactor or MemoryReactor)."""

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any: ...

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: Any,
        timeout: float = 30,
        bindAddress: Any = None,
    ) -> Any: ...


class _Timer(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...

    def getTime(self) -> float: ...


class LegClock(Protocol):
    """The part of ``IReactorTime`` the legs use (a reactor or ``task.Clock``)."""

    def seconds(self) -> float: ...

    # Returns an IDelayedCall; typed Any because mypy cannot match zope interfaces.
    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> Any: ...


# --- the interface the conference layer implements ------------------------------------

#: What the core reports besides transport commands (see ``focus.msrp.connection``).
MsrpEvent = (
    SessionBound
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


class LegListener(Protocol):
    """What the conference layer implements to hear from its legs.

    Every callback runs in the reactor thread; none may block. A callback may call
    :meth:`MsrpLeg.execute`, :meth:`MsrpLeg.send` or :meth:`MsrpLeg.close` on any leg,
    including the one calling. Each leg ends either by ``leg_failed`` (the last callback
    it makes) or by a local ``close()`` (after which it makes none).
    """

    def leg_up(self, leg: MsrpLeg) -> None:
        """The TLS-PSK handshake completed: the leg is keyed and may carry MSRP.

        On an active leg the listener now binds the session by sending the first SEND
        (RFC 4975 §5.4, RFC 6135): ``leg.execute(leg.connection.open_session(p, leg.now()))``.
        """

    def msrp_event(self, leg: MsrpLeg, event: MsrpEvent) -> None:
        """The leg's ``MsrpConnection`` reported ``event`` (a message arrived, a
        transaction completed…). Answers go back through ``leg.execute``."""

    def leg_failed(self, leg: MsrpLeg, error: LegError) -> None:
        """The leg ended without the local side asking; it is already closed.

        Events the core produced for the loss (``TransactionFailed``, ``MessageFailed``,
        ``MessageAborted`` of pending work) are delivered by ``msrp_event`` just before.
        """


class LegState(enum.Enum):
    """Lifecycle of a leg. ``UP`` is the only state in which MSRP bytes flow."""

    NEW = "new"
    WAITING = "waiting"  # passive: listening; active: connecting
    HANDSHAKING = "handshaking"  # TCP connected, TLS not finished
    UP = "up"
    CLOSED = "closed"  # closed by the local side
    FAILED = "failed"


_TERMINAL = (LegState.CLOSED, LegState.FAILED)


# --- the per-connection protocol ------------------------------------------------------


@implementer(IHandshakeListener, IPushProducer)
class _LegProtocol(TwistedProtocol):
    """The application protocol inside TLS; forwards everything to its leg."""

    def __init__(self, leg: MsrpLeg) -> None:
        self._leg = leg

    def connectionMade(self) -> None:
        assert self.transport is not None
        # Streaming producer: the TLS transport (and below it the TCP transport) tells
        # us when its buffer is full (pauseProducing) and when it drained.
        self.transport.registerProducer(self, True)
        self._leg._connection_made(self.transport)

    def handshakeCompleted(self) -> None:
        self._leg._handshake_completed()

    def dataReceived(self, data: bytes) -> None:
        self._leg._data_received(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._leg._connection_lost(reason)

    def pauseProducing(self) -> None:
        self._leg._pause_writing()

    def resumeProducing(self) -> None:
        self._leg._resume_writing()

    def stopProducing(self) -> None:
        # The connection is going away; connectionLost does the bookkeeping.
        pass


# --- legs ------------------------------------------------------------------------------


class MsrpLeg:
    """Common part of passive and active legs: state, queue, MSRP core, failure reporting."""

    _log = Logger()

    def __init__(
        self,
        leg_id: str,
        connection: MsrpConnection,
        listener: LegListener,
        *,
        reactor: TCPReactor,
        clock: LegClock,
        config: LegConfig,
    ) -> None:
        self.leg_id = leg_id
        self.connection = connection
        self._listener = listener
        self._reactor = reactor
        self._clock = clock
        self._config = config
        self._state = LegState.NEW
        self._transport: Any = None  # the TLS transport (ITransport + IProducer)
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._write_paused = False
        self._timer: _Timer | None = None
        self._msrp_timer: _Timer | None = None
        self._msrp_deadline: float | None = None  # what the core last asked for
        self._close_timer: _Timer | None = None
        self._failure_reported = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.leg_id} {self._state.value}>"

    # -- public API ----------------------------------------------------------------

    @property
    def state(self) -> LegState:
        return self._state

    def now(self) -> float:
        """The clock's time, the ``now`` to pass to the leg's ``MsrpConnection``."""
        return self._clock.seconds()

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in this leg's own outgoing queue."""
        return self._queued

    def execute(self, commands: Iterable[Command]) -> None:
        """Carry out what the leg's ``MsrpConnection`` returned, in order.

        ``SendBytes`` → :meth:`send`; ``ArmTimer`` → the leg's MSRP timer, which feeds
        ``handle_timeout`` back into the core; ``CloseConnection`` (framing lost) → the
        leg closes its transport after what was written, and fails with
        :class:`LegProtocolError` once the remaining events were delivered; every other
        item goes to ``listener.msrp_event``. After a local ``close()`` nothing is
        delivered any more.
        """
        failure: LegError | None = None
        for command in commands:
            if isinstance(command, SendBytes):
                self.send(command.data)
            elif isinstance(command, ArmTimer):
                self._arm_msrp_timer(command.deadline)
            elif isinstance(command, CloseConnection):
                if failure is None and not self._ended():
                    failure = LegProtocolError(
                        f"leg {self.leg_id}: MSRP connection closed by the core: "
                        f"{command.error.reason}",
                        command.error.status,
                    )
                    self._terminate(LegState.FAILED, graceful=True)
            elif self._state is not LegState.CLOSED and not self._failure_reported:
                self._notify(self._listener.msrp_event, command)
        if failure is not None:
            self._report_failure(failure)

    def send(self, data: bytes) -> None:
        """Queue ``data`` (encoded MSRP) for the peer; never blocks, never raises.

        Before the leg is up, and while the transport is paused, the bytes wait in the
        leg's bounded queue; past ``max_queued_bytes`` the leg fails with
        :class:`LegQueueOverflow`. On a closed or failed leg this does nothing (the
        listener has been told already).
        """
        if self._state in _TERMINAL or not data:
            return
        if self._state is LegState.UP and not self._write_paused and not self._queue:
            self._transport.write(data)
            return
        self._queue.append(data)
        self._queued += len(data)
        if self._queued > self._config.max_queued_bytes:
            self._fail(
                LegQueueOverflow(
                    f"leg {self.leg_id}: outgoing queue above "
                    f"{self._config.max_queued_bytes} bytes (peer reads too slowly)"
                )
            )

    def close(self) -> None:
        """End the leg from the local side; the listener is not called back.

        Bytes already handed to TLS are flushed and followed by close_notify; bytes
        still in the leg's own queue (peer not reading) are dropped.
        """
        if self._state in _TERMINAL:
            return
        self._log.info("msrp leg {leg_id} closed locally", leg_id=self.leg_id)
        self._terminate(LegState.CLOSED, graceful=True)
        # Let the core fail its pending transactions; the local side knows why.
        self.connection.connection_lost(self.now())

    def pause_reading(self) -> None:
        """Stop reading from the peer (TCP then pushes back on it) until resumed."""
        if self._transport is not None and self._state not in _TERMINAL:
            self._transport.pauseProducing()

    def resume_reading(self) -> None:
        if self._transport is not None and self._state not in _TERMINAL:
            self._transport.resumeProducing()

    # -- subclass hooks ------------------------------------------------------------------

    def _release(self) -> None:
        """Give back what the leg holds besides the connection (timers, port, listener)."""
        for timer in (self._timer, self._msrp_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._msrp_timer = None
        self._queue.clear()
        self._queued = 0

    def _arm_msrp_timer(self, deadline: float | None) -> None:
        """Follow the core's one deadline without a cancel and a new DelayedCall per
        response: a sender pipelining SENDs moves its deadline (the oldest pending
        transaction's, RFC 4975 §7.1.1) a little later with every 200.  A timer armed
        for an earlier time is kept: when it fires it re-arms for the deadline the core
        asked for last (or does nothing if there is none any more)."""
        self._msrp_deadline = deadline
        if deadline is None or self._ended():
            return
        timer = self._msrp_timer
        if timer is not None and timer.active():
            if timer.getTime() <= deadline:
                return
            timer.cancel()
        self._msrp_timer = self._clock.callLater(
            max(0.0, deadline - self.now()), self._msrp_timer_fired
        )

    def _msrp_timer_fired(self) -> None:
        self._msrp_timer = None
        deadline = self._msrp_deadline
        if deadline is None or self._ended():
            return
        now = self.now()
        if deadline > now:
            self._msrp_timer = self._clock.callLater(deadline - now, self._msrp_timer_fired)
            return
        self.execute(self.connection.handle_timeout(now))

    def _arm_setup_timer(self) -> None:
        self._timer = self._clock.callLater(self._config.setup_timeout, self._setup_timed_out)

    def _setup_timed_out(self) -> None:
        self._timer = None
        self._fail(
            LegTimeout(
                f"leg {self.leg_id}: not up within {self._config.setup_timeout:g} s "
                f"(state {self._state.value})"
            )
        )

    # -- events from the protocol -------------------------------------------------------

    def _connection_made(self, transport: Any) -> None:
        self._transport = transport
        if self._state in _TERMINAL:
            # Timed out or closed between accept and connectionMade.
            transport.abortConnection()
            return
        self._state = LegState.HANDSHAKING
        # MSRP is request/response with small frames (a 100 B chat message, its 200):
        # with Nagle's algorithm each one can wait for the peer's delayed ACK (up to
        # 40 ms on Linux).  Twisted's TLS layer already gathers the writes of one
        # reactor turn into one record, so disabling Nagle adds no tiny segments.
        with contextlib.suppress(AttributeError, OSError):
            transport.setTcpNoDelay(True)

    def _handshake_completed(self) -> None:
        if self._state is not LegState.HANDSHAKING:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._state = LegState.UP
        self._log.info("msrp leg {leg_id} up", leg_id=self.leg_id)
        self._notify(self._listener.leg_up)
        self._drain()

    def _data_received(self, data: bytes) -> None:
        if self._state is not LegState.UP:
            return
        self.execute(self.connection.receive_data(data, self.now()))

    def _ended(self) -> bool:
        return self._state in _TERMINAL

    def _connection_lost(self, reason: Failure) -> None:
        previous = self._state
        self._transport = None
        if self._close_timer is not None and self._close_timer.active():
            self._close_timer.cancel()
        self._close_timer = None
        if previous in _TERMINAL:
            return
        self._fail(self._classify_loss(reason, previous), abort=False)

    def _classify_loss(self, reason: Failure, previous: LegState) -> LegError:
        value = reason.value
        if isinstance(value, SSL.Error):
            reasons = _ssl_reasons(value)
            text = "; ".join(reasons) or "no reason given"
            if previous is not LegState.UP:
                return LegHandshakeFailed(
                    f"leg {self.leg_id}: TLS-PSK handshake failed: {text}", reasons
                )
            return LegConnectionLost(f"leg {self.leg_id}: TLS record error: {text}")
        if previous is not LegState.UP:
            return LegHandshakeFailed(
                f"leg {self.leg_id}: connection closed during the TLS-PSK handshake "
                f"({type(value).__name__})"
            )
        clean = isinstance(value, neterror.ConnectionDone)
        return LegConnectionLost(
            f"leg {self.leg_id}: connection {'closed by the peer' if clean else 'lost'} "
            f"({type(value).__name__})"
        )

    def _pause_writing(self) -> None:
        self._write_paused = True

    def _resume_writing(self) -> None:
        self._write_paused = False
        self._drain()

    def _drain(self) -> None:
        # transport.write may pause us synchronously; stop as soon as it does.
        while self._queue and not self._write_paused and self._state is LegState.UP:
            data = self._queue.popleft()
            self._queued -= len(data)
            self._transport.write(data)

    def _terminate(self, state: LegState, *, graceful: bool, abort: bool = True) -> None:
        """Enter a terminal state, give everything back, and end the transport.

        ``graceful``: flush what TLS holds, then close_notify. Otherwise abort, unless
        ``abort`` is false (the transport is already gone).
        """
        self._state = state
        self._release()
        transport = self._transport
        if transport is None:
            return
        if graceful:
            # TLS holds back close_notify while a producer is registered.
            transport.unregisterProducer()
            transport.loseConnection()
            # Twisted's TLS then waits for the peer's close_notify (and TCP for the peer
            # to read what is buffered) with no limit; RFC 5246 §7.2.1 lets the closing
            # side go without waiting.  Bound the wait so a silent peer cannot hold the
            # socket for ever.
            self._close_timer = self._clock.callLater(
                self._config.close_timeout, self._close_timed_out, transport
            )
        elif abort:
            transport.abortConnection()

    def _close_timed_out(self, transport: Any) -> None:
        self._close_timer = None
        self._log.info(
            "msrp leg {leg_id}: peer did not finish closing; aborted", leg_id=self.leg_id
        )
        transport.abortConnection()

    def _fail(self, error: LegError, *, abort: bool = True) -> None:
        """End the leg for ``error``: the core's loss events first, then ``leg_failed``."""
        if self._state in _TERMINAL:
            return
        self._terminate(LegState.FAILED, graceful=False, abort=abort)
        for command in self.connection.connection_lost(self.now()):
            if not isinstance(command, SendBytes | ArmTimer | CloseConnection):
                self._notify(self._listener.msrp_event, command)
        self._report_failure(error)

    def _notify(self, callback: Callable[..., object], *args: object) -> None:
        """Call the listener; an exception it raises is logged here and goes no further.

        Listener callbacks run inside Twisted's ``dataReceived`` of this leg, or inside
        another leg's (the conference relays synchronously): an exception escaping would
        make Twisted drop whichever connection was reading, and would break the promise
        that :meth:`send` never raises.  The traceback is logged without local variables.
        """
        try:
            callback(self, *args)
        except Exception:
            self._log.failure(
                "msrp leg {leg_id}: listener {callback} raised",
                leg_id=self.leg_id,
                callback=getattr(callback, "__name__", "?"),
            )

    def _report_failure(self, error: LegError) -> None:
        self._failure_reported = True
        self._log.warn(
            "msrp leg {leg_id} failed: {kind}: {why}",
            leg_id=self.leg_id,
            kind=type(error).__name__,
            why=str(error),
        )
        self._notify(self._listener.leg_failed, error)


def _ssl_reasons(error: SSL.Error) -> tuple[str, ...]:
    """OpenSSL's reason strings (library text, never key material)."""
    args = error.args[0] if error.args and isinstance(error.args[0], list) else []
    return tuple(str(item[-1]) for item in args if isinstance(item, tuple) and item)


class _OneConnectionTLSFactory(TLSMemoryBIOFactory):
    """TLS server factory of a passive leg: the first connection only."""

    # One factory per leg: Twisted's "Starting/Stopping factory" lines (two factories,
    # twice each per leg) were a quarter of the twistd log's cost in the join profile.
    # The leg logs its own listening line.
    noisy = False

    def __init__(self, leg: PassiveLeg, creator: object, clock: LegClock) -> None:
        inner = Factory.forProtocol(lambda: _LegProtocol(leg))
        inner.noisy = False
        super().__init__(
            cast(IOpenSSLServerConnectionCreator, creator),
            False,
            cast(IProtocolFactory, inner),
            cast(IReactorTime, clock),
        )
        self._leg = leg

    def buildProtocol(self, addr: IAddress | None) -> Any:
        if not self._leg._accept(addr):
            return None  # Twisted closes the socket: a second connection is refused
        return super().buildProtocol(addr)


class PassiveLeg(MsrpLeg):
    """The TLS-PSK server side of one MSRP session, on a port of its own.

    ``creator`` is the leg's ``IOpenSSLServerConnectionCreator`` (bound to its PSK).
    Call :meth:`start` to listen; it returns the port for the SDP ``a=path``.

    Whoever connects first gets the leg's one connection. A stranger who races the
    participant to the port cannot be keyed (no PSK) and can only make the leg fail
    with :class:`LegHandshakeFailed`; the conference then tears the session down.
    """

    def __init__(
        self,
        leg_id: str,
        creator: object,
        connection: MsrpConnection,
        listener: LegListener,
        *,
        allocator: PortAllocator,
        reactor: TCPReactor,
        clock: LegClock,
        config: LegConfig,
    ) -> None:
        super().__init__(leg_id, connection, listener, reactor=reactor, clock=clock, config=config)
        self._creator = creator
        self._allocator = allocator
        self._listening: Any = None  # IListeningPort
        self.port: int | None = None
        self.peer: IAddress | None = None

    def start(self) -> int:
        """Listen on a free port of the range and return it.

        Raises :class:`PortRangeExhausted` when no port of the range can be bound.
        """
        if self._state is not LegState.NEW:
            raise LegError(f"leg {self.leg_id} already started")
        factory = _OneConnectionTLSFactory(self, self._creator, self._clock)
        for _attempt in range(self._allocator.size):
            port = self._allocator.allocate()
            try:
                self._listening = self._reactor.listenTCP(
                    port, factory, backlog=1, interface=self._config.host
                )
            except neterror.CannotListenError:
                # Someone outside our bookkeeping holds it; try the next one.
                self._allocator.release(port)
                continue
            self.port = port
            break
        else:
            raise PortRangeExhausted(f"leg {self.leg_id}: no port of the range could be bound")
        self._state = LegState.WAITING
        self._arm_setup_timer()
        self._log.info(
            "msrp leg {leg_id} listening on {host}:{port}",
            leg_id=self.leg_id,
            host=self._config.host,
            port=port,
        )
        return port

    def _accept(self, addr: IAddress | None) -> bool:
        if self._state is not LegState.WAITING or self.peer is not None:
            self._log.info(
                "msrp leg {leg_id}: refused another connection from {addr}",
                leg_id=self.leg_id,
                addr=addr,
            )
            return False
        self.peer = addr
        self._stop_listening()
        return True

    def _stop_listening(self) -> None:
        if self._listening is not None:
            listening, self._listening = self._listening, None
            listening.stopListening()

    def _release(self) -> None:
        super()._release()
        self._stop_listening()
        if self.port is not None:
            self._allocator.release(self.port)


class ActiveLeg(MsrpLeg):
    """The TLS-PSK client side of one MSRP session (we connect to the peer).

    ``creator`` is the leg's ``IOpenSSLClientConnectionCreator`` (bound to its PSK);
    ``host``/``port`` come from the leftmost URI of the peer's ``a=path``.
    """

    def __init__(
        self,
        leg_id: str,
        creator: object,
        connection: MsrpConnection,
        listener: LegListener,
        *,
        host: str,
        port: int,
        reactor: TCPReactor,
        clock: LegClock,
        config: LegConfig,
    ) -> None:
        super().__init__(leg_id, connection, listener, reactor=reactor, clock=clock, config=config)
        self._creator = creator
        self.host = host
        self.port = port
        self._connector: Any = None  # IConnector

    def start(self) -> None:
        """Start connecting; the leg reports ``leg_up`` or ``leg_failed`` later."""
        if self._state is not LegState.NEW:
            raise LegError(f"leg {self.leg_id} already started")
        factory = TLSMemoryBIOFactory(
            cast(IOpenSSLClientConnectionCreator, self._creator),
            True,
            cast(IProtocolFactory, _ConnectFactory(self)),
            cast(IReactorTime, self._clock),
        )
        self._state = LegState.WAITING
        self._arm_setup_timer()
        self._connector = self._reactor.connectTCP(
            self.host, self.port, factory, timeout=self._config.setup_timeout
        )

    def _connect_failed(self, reason: Failure) -> None:
        if isinstance(reason.value, neterror.TimeoutError):
            self._setup_timed_out()
            return
        self._fail(
            LegConnectFailed(
                f"leg {self.leg_id}: connect to {self.host}:{self.port} failed "
                f"({type(reason.value).__name__})"
            ),
            abort=False,
        )

    def _release(self) -> None:
        super()._release()
        connector, self._connector = self._connector, None
        if connector is not None and self._transport is None:
            # Still connecting: stop the attempt (raises once connected or failed).
            with contextlib.suppress(neterror.NotConnectingError):
                connector.stopConnecting()


class _ConnectFactory(ClientFactory):
    def __init__(self, leg: ActiveLeg) -> None:
        self._leg = leg

    def buildProtocol(self, addr: IAddress | None) -> _LegProtocol:
        return _LegProtocol(self._leg)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self._leg._connect_failed(reason)
