"""A small Twisted driver for the sans-IO SIP core (:class:`focus.sip.ua.UserAgent`).

The UE only ever talks to one next hop (its ``--proxy``) and is reached back at its
own listening address (Via sent-by, Contact), so this driver is deliberately small:

- UDP: one socket on ``host:port`` (port 0 = any) for everything (RFC 3261 §18.1.1).
- TCP and TLS: a listening port for requests the peer sends to our Contact (a BYE), and
  connections opened on demand to each target and reused for it (§18.1.1); responses to
  requests that arrived on a connection go back on it (§18.2.2). TLS checks the peer's
  certificate against ``tls_ca`` (or the system store) and offers our own certificate
  only when one is configured.
- Host names are resolved with the reactor's resolver to A records only (no SRV, the
  UE is given an explicit proxy port).
- One timer, re-armed at the core's ``next_deadline`` after every input.

It is only the glue the core asks for in its docstring: feed bytes and ``now``, carry out
:class:`~focus.sip.ua.Send`, :class:`~focus.sip.ua.CloseConnection` and
:class:`~focus.sip.resolve.Resolve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from focus.sip.resolve import Resolve
from focus.sip.transaction import Target
from focus.sip.ua import CloseConnection, Send, UserAgent

__all__ = ["SipEndpoint"]

_MAX_PENDING = 64 * 1024  # bytes waiting for a connection to open


class _Datagram(protocol.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self._endpoint._datagram(datagram, addr)


class _Stream(protocol.Protocol):
    """One TCP/TLS connection, named by the Target of its peer."""

    def __init__(self, endpoint: SipEndpoint, target: Target | None) -> None:
        self._endpoint = endpoint
        self.target = target

    def connectionMade(self) -> None:
        transport: Any = self.transport
        if self.target is None:
            peer = transport.getPeer()
            self.target = Target(self._endpoint.transport, peer.host, peer.port)
        self._endpoint._stream_up(self)

    def dataReceived(self, data: bytes) -> None:
        assert self.target is not None
        self._endpoint._stream_data(self.target, data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.target is not None:
            self._endpoint._stream_lost(self, self.target)


class _Outgoing(protocol.ClientFactory):
    def __init__(self, endpoint: SipEndpoint, target: Target) -> None:
        self._endpoint = endpoint
        self._target = target

    def buildProtocol(self, addr: Any) -> _Stream:
        return _Stream(self._endpoint, self._target)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self._endpoint._connect_failed(self._target, reason)


class _Incoming(protocol.Factory):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def buildProtocol(self, addr: Any) -> _Stream:
        return _Stream(self._endpoint, None)


class SipEndpoint:
    """Runs a :class:`UserAgent` core on a reactor over one transport.

    Build with :meth:`listen` (which binds and so learns the local port the core needs in
    its config), then :meth:`attach` the core. ``client_tls`` makes the client side of a
    TLS connection from the peer's host name (``optionsForClientTLS``); ``server_tls`` is
    the server side for connections to our TLS port (None: no TLS port).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        transport: str,
        *,
        client_tls: Callable[[str], Any] | None = None,
        server_tls: Any = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.transport = transport.upper()
        if self.transport not in ("UDP", "TCP", "TLS"):
            raise ValueError(f"unknown SIP transport {transport!r}")
        if self.transport == "TLS" and client_tls is None:
            raise ValueError("SIP over TLS needs client_tls")
        self._reactor = reactor
        self._client_tls = client_tls
        self._server_tls = server_tls
        self._connect_timeout = connect_timeout
        self._ua: UserAgent | None = None
        self._port: Any = None
        self._streams: dict[Target, _Stream] = {}
        self._pending: dict[Target, list[bytes]] = {}
        self._connectors: dict[Target, Any] = {}
        self._timer: Any = None  # IDelayedCall
        self._closed = False
        self.local: Target | None = None

    # -- set-up -----------------------------------------------------------------------

    def listen(self, host: str, port: int = 0) -> Target:
        """Bind our socket (UDP) or listening port (TCP/TLS); return our address."""
        if self.transport == "UDP":
            self._port = self._reactor.listenUDP(port, _Datagram(self), interface=host)
        elif self.transport == "TCP":
            self._port = self._reactor.listenTCP(port, _Incoming(self), interface=host)
        elif self._server_tls is not None:
            self._port = self._reactor.listenSSL(
                port, _Incoming(self), self._server_tls, interface=host
            )
        bound = port if self._port is None else self._port.getHost().port
        self.local = Target(self.transport, host, bound)
        return self.local

    def attach(self, ua: UserAgent) -> None:
        """Drive ``ua``: its commands are carried out whenever it has some."""
        self._ua = ua
        ua.wakeup = self.flush

    def now(self) -> float:
        return float(self._reactor.seconds())

    def close(self) -> None:
        """Stop listening, close every connection and the timer."""
        self._closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._port is not None:
            self._port.stopListening()
            self._port = None
        for connector in list(self._connectors.values()):
            connector.disconnect()
        self._connectors.clear()
        for stream in list(self._streams.values()):
            _lose(stream)
        self._streams.clear()
        self._pending.clear()

    # -- core commands ------------------------------------------------------------------

    def flush(self) -> None:
        """Carry out the core's pending commands and re-arm the timer."""
        if self._ua is None or self._closed:
            return
        for command in self._ua.drain():
            if isinstance(command, Send):
                self._send(command.data, command.target)
            elif isinstance(command, CloseConnection):
                stream = self._streams.pop(command.target, None)
                if stream is not None:
                    _lose(stream)
            elif isinstance(command, Resolve):
                self._resolve(command)
        self._arm()

    def _arm(self) -> None:
        assert self._ua is not None
        deadline = self._ua.next_deadline()
        if self._timer is not None and self._timer.active():
            if deadline is not None and abs(self._timer.getTime() - deadline) < 1e-6:
                return
            self._timer.cancel()
        self._timer = None
        if deadline is not None and not self._closed:
            self._timer = self._reactor.callLater(max(0.0, deadline - self.now()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._ua is not None and not self._closed:
            self._ua.on_timer(self.now())
            self.flush()

    def _send(self, data: bytes, target: Target) -> None:
        if target.transport == "UDP":
            if self._port is None:
                return
            self._port.write(data, (target.host, target.port))
            return
        stream = self._streams.get(target)
        if stream is not None and stream.transport is not None:
            _write(stream, data)
            return
        pending = self._pending.setdefault(target, [])
        pending.append(data)
        if sum(map(len, pending)) > _MAX_PENDING:
            self._connect_failed(target, Failure(OverflowError("too much data queued")))  # type: ignore[no-untyped-call]
            return
        if target not in self._connectors:
            factory = _Outgoing(self, target)
            if target.transport == "TLS":
                assert self._client_tls is not None
                self._connectors[target] = self._reactor.connectSSL(
                    target.host,
                    target.port,
                    factory,
                    self._client_tls(target.host),
                    timeout=self._connect_timeout,
                )
            else:
                self._connectors[target] = self._reactor.connectTCP(
                    target.host, target.port, factory, timeout=self._connect_timeout
                )

    def _resolve(self, query: Resolve) -> None:
        def done(address: str) -> None:
            if self._ua is not None and not self._closed:
                target = Target(query.transport, address, query.port)
                self._ua.resolved(query.query_id, [target], self.now())
                self.flush()

        def failed(reason: Failure) -> None:
            self._log.warn("cannot resolve {host}: {why}", host=query.host, why=reason.value)
            if self._ua is not None and not self._closed:
                self._ua.resolved(query.query_id, [], self.now())
                self.flush()

        self._reactor.resolve(query.host).addCallbacks(done, failed)

    # -- transport events -------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: Any) -> None:
        if self._ua is None or self._closed:
            return
        host, port = addr[0], addr[1]
        self._ua.datagram_received(data, Target("UDP", host, port), self.now())
        self.flush()

    def _stream_up(self, stream: _Stream) -> None:
        assert stream.target is not None and stream.transport is not None
        self._connectors.pop(stream.target, None)
        self._streams[stream.target] = stream
        for data in self._pending.pop(stream.target, []):
            _write(stream, data)

    def _stream_data(self, target: Target, data: bytes) -> None:
        if self._ua is None or self._closed:
            return
        self._ua.connection_data(target, data, self.now())
        self.flush()

    def _stream_lost(self, stream: _Stream, target: Target) -> None:
        if self._streams.get(target) is stream:
            del self._streams[target]
        if self._ua is not None and not self._closed:
            self._ua.connection_lost(target, self.now())
            self.flush()

    def _connect_failed(self, target: Target, reason: Failure) -> None:
        self._connectors.pop(target, None)
        self._pending.pop(target, None)
        self._log.warn(
            "SIP connection to {host}:{port} failed: {why}",
            host=target.host,
            port=target.port,
            why=reason.getErrorMessage(),
        )
        if self._ua is not None and not self._closed:
            self._ua.transport_error(target, self.now())
            self.flush()


def _write(stream: _Stream, data: bytes) -> None:
    transport: Any = stream.transport
    transport.write(data)


def _lose(stream: _Stream) -> None:
    transport: Any = stream.transport
    if transport is not None:
        transport.loseConnection()
