"""Twisted transports for the sans-IO SIP core: UDP, TCP and TLS (RFC 3261 §18).

:class:`SipStack` owns a :class:`focus.sip.ua.UserAgent` and carries out its commands:

* ``Send`` over UDP goes out of our UDP port; over TCP/TLS it reuses the connection to
  that address when there is one (accepted or opened, §18.1.1, §18.2.2) and otherwise
  opens one, queueing the data until it is connected;
* ``CloseConnection`` drops a stream whose framing broke (§18.3);
* ``Resolve`` goes to the injected :class:`SipResolver`.

One ``callLater`` tracks the core's next deadline.  The reactor is injected; nothing
here makes a protocol decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.application.service import Service
from twisted.internet import defer, ssl
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
)
from twisted.internet.interfaces import IAddress, IHandshakeListener
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer  # type: ignore[import-untyped]

from focus.sip.resolve import Resolve, SrvRecord, order_srv, srv_name
from focus.sip.transaction import Target
from focus.sip.ua import Application, CloseConnection, Send, UAConfig, UserAgent

__all__ = [
    "Listen",
    "NamesResolver",
    "ReactorResolver",
    "SipDatagramProtocol",
    "SipResolver",
    "SipService",
    "SipStack",
    "SipStreamProtocol",
    "tls_server_options",
]


class SipResolver(Protocol):
    """Resolves a host for SIP (RFC 3263 §4.2): SRV first when ``use_srv``, then
    addresses.  Fires with ``[(ip, port), ...]`` in preference order (empty = failure)."""

    def resolve(
        self, host: str, transport: str, port: int, use_srv: bool
    ) -> defer.Deferred[list[tuple[str, int]]]:
        """Look ``host`` up."""
        ...


@attrs.define
class ReactorResolver:
    """Addresses only, through ``reactor.resolve`` (no SRV): enough for loopback, tests
    and deployments that name their peers with host:port."""

    reactor: Any

    def resolve(
        self, host: str, transport: str, port: int, use_srv: bool
    ) -> defer.Deferred[list[tuple[str, int]]]:
        """Resolve ``host`` to one IPv4 address with ``port``."""
        d: defer.Deferred[str] = self.reactor.resolve(host)
        return d.addCallbacks(lambda ip: [(ip, port)], lambda _f: [])


@attrs.define
class NamesResolver:
    """SRV then A records with ``twisted.names`` (RFC 3263 §4.2, RFC 2782 ordering).

    ``resolver`` is an ``IResolver`` (``twisted.names.client.createResolver()``);
    ``random`` a byte source for SRV weights."""

    resolver: Any
    random: Callable[[int], bytes]

    @defer.inlineCallbacks
    def resolve(self, host: str, transport: str, port: int, use_srv: bool) -> Any:
        """Resolve ``host``; SRV failures fall back to A records on ``port`` (§4.2)."""
        from twisted.names import dns

        targets: list[tuple[str, int]] = [(host, port)]
        if use_srv:
            try:
                answers, _, _ = yield self.resolver.lookupService(srv_name(transport, host))
                records = [
                    SrvRecord(a.payload.priority, a.payload.weight, a.payload.port,
                              a.payload.target.name.decode())
                    for a in answers
                    if a.type == dns.SRV
                ]  # fmt: skip
                if records:
                    targets = [(r.target, r.port) for r in order_srv(records, self.random)]
            except Exception as exc:  # no usable SRV records: A records (§4.2)
                SipStack.log.debug("no SRV for {host}: {err}", host=host, err=exc)
        out: list[tuple[str, int]] = []
        for name, p in targets:
            try:
                ip = yield self.resolver.getHostByName(name)
            except Exception as exc:  # try the next target
                SipStack.log.debug("cannot resolve {name}: {err}", name=name, err=exc)
                continue
            out.append((ip, p))
        return out


def tls_server_options(cert_path: str, key_path: str) -> ssl.CertificateOptions:
    """CertificateOptions from PEM files: the certificate (followed by its chain, if any)
    and the private key.  Loaded with ``cryptography`` (pyOpenSSL's own X509/PKey objects
    are deprecated)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with open(cert_path, "rb") as f:
        chain = x509.load_pem_x509_certificates(f.read())
    with open(key_path, "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    return ssl.CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=chain[0],  # type: ignore[arg-type]
        extraCertChain=chain[1:] or None,  # type: ignore[arg-type]
    )


def _target(transport: str, address: IAddress) -> Target:
    host = getattr(address, "host", "")
    port = getattr(address, "port", 0)
    return Target(transport, host, port)


class SipDatagramProtocol(DatagramProtocol):
    """Feeds UDP datagrams to the stack."""

    def __init__(self, stack: SipStack) -> None:
        self.stack = stack

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.stack.datagram_received(datagram, Target("UDP", addr[0], addr[1]))


@implementer(IHandshakeListener)
class SipStreamProtocol(TwistedProtocol):
    """One TCP or TLS connection, accepted or opened.  Every wait is bounded:

    * idle connections are closed after ``stack.idle_timeout`` seconds so that half-sent
      messages cannot pin memory;
    * a TLS connection must finish its handshake within ``stack.handshake_timeout``
      (much shorter than the idle timeout), else it is aborted: otherwise peers that
      open TCP and never finish the handshake could hold every connection slot;
    * a connection we close is aborted if it is still open ``stack.close_timeout``
      seconds later (TCP waits for the peer to read what is buffered, Twisted's TLS for
      the peer's close_notify, both without limit).
    """

    def __init__(self, stack: SipStack, transport_name: str) -> None:
        self.stack = stack
        self.transport_name = transport_name
        self.target: Target | None = None
        self._idle: Any = None
        self._handshake: Any = None
        self._closing: Any = None

    def _io(self) -> Any:
        return self.transport

    def _reset_idle(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.stack.idle_timeout)
        else:
            self._idle = self.stack.reactor.callLater(self.stack.idle_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._idle = None
        self.stack.log.info("closing idle SIP connection {peer}", peer=self.target)
        self.close()

    def connectionMade(self) -> None:
        self.target = _target(self.transport_name, self._io().getPeer())
        self.stack.connection_made(self)
        if self.target is not None:
            self._reset_idle()
            if self.transport_name == "TLS":
                self._handshake = self.stack.reactor.callLater(
                    self.stack.handshake_timeout, self._handshake_timed_out
                )

    def handshakeCompleted(self) -> None:
        """IHandshakeListener: the TLS handshake finished in time."""
        if self._handshake is not None and self._handshake.active():
            self._handshake.cancel()
        self._handshake = None

    def _handshake_timed_out(self) -> None:
        self._handshake = None
        self.stack.log.info("aborting SIP/TLS connection {peer}: no handshake", peer=self.target)
        self._abort()

    def dataReceived(self, data: bytes) -> None:
        if self.target is None:
            return  # refused (connection limit) and closing
        self._reset_idle()
        self.stack.connection_data(self.target, data)

    def connectionLost(self, reason: Any = None) -> None:
        for timer in (self._idle, self._handshake, self._closing):
            if timer is not None and timer.active():
                timer.cancel()
        self._idle = self._handshake = self._closing = None
        if self.target is not None:
            self.stack.connection_lost(self)

    def send(self, data: bytes) -> None:
        """Write a message."""
        self._io().write(data)

    def close(self) -> None:
        """Close the connection: politely, then abort after ``stack.close_timeout``."""
        if self.transport is None:
            return
        self._io().loseConnection()
        if self._closing is None:
            self._closing = self.stack.reactor.callLater(self.stack.close_timeout, self._abort)

    def _abort(self) -> None:
        self._closing = None
        if self.transport is not None:
            self._io().abortConnection()


class SipStack:
    """A SIP endpoint on Twisted: the core, its listeners, connections and timer.

    ``reactor`` must provide IReactorTime, IReactorUDP, IReactorTCP (and IReactorSSL
    for TLS).  ``random`` is a byte source (``os.urandom`` in production).
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        config: UAConfig,
        app: Application,
        random: Callable[[int], bytes],
        *,
        resolver: SipResolver | None = None,
        tls_client_options: Callable[[str], Any] | None = None,
        idle_timeout: float = 300.0,
        max_connections: int = 1000,
        handshake_timeout: float = 10.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.reactor = reactor
        self.ua = UserAgent(config, app, random, wakeup=self.flush)
        self.resolver: SipResolver = resolver or ReactorResolver(reactor)
        self.tls_client_options = tls_client_options or ssl.optionsForClientTLS
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout
        self._udp: Any = None
        self._ports: list[Any] = []
        self._connections: dict[Target, SipStreamProtocol] = {}
        self._pending: dict[Target, list[bytes]] = {}
        self._timer: Any = None
        self._stopped = False

    # ------------------------------------------------------------------ listening
    def _add_listen(self, target: Target) -> None:
        listen = tuple(t for t in self.ua.config.listen if t.transport != target.transport)
        self.ua.config = attrs.evolve(self.ua.config, listen=(*listen, target))

    def listen_udp(self, port: int = 5060, interface: str = "127.0.0.1") -> Any:
        """Listen for SIP over UDP; port 0 picks a free port (see ``getHost()``)."""
        lp: Any = self.reactor.listenUDP(port, SipDatagramProtocol(self), interface=interface)
        self._udp = lp
        self._ports.append(lp)
        self._add_listen(Target("UDP", interface, lp.getHost().port))
        return lp

    def _stream_factory(self, transport: str) -> Factory:
        return Factory.forProtocol(lambda: SipStreamProtocol(self, transport))

    @defer.inlineCallbacks
    def listen_tcp(self, port: int = 5060, interface: str = "127.0.0.1") -> Any:
        """Listen for SIP over TCP; fires with the listening port."""
        ep = TCP4ServerEndpoint(self.reactor, port, interface=interface)  # type: ignore[no-untyped-call]
        lp = yield ep.listen(  # type: ignore[no-untyped-call]
            self._stream_factory("TCP")
        )
        self._ports.append(lp)
        self._add_listen(Target("TCP", interface, lp.getHost().port))
        return lp

    @defer.inlineCallbacks
    def listen_tls(
        self,
        port: int = 5061,
        interface: str = "127.0.0.1",
        *,
        cert_path: str | None = None,
        key_path: str | None = None,
        options: Any = None,
    ) -> Any:
        """Listen for SIP over TLS with a certificate and key from PEM files (or ready
        ``CertificateOptions``); fires with the listening port."""
        if options is None:
            if cert_path is None or key_path is None:
                raise ValueError("listen_tls needs cert_path and key_path, or options")
            options = tls_server_options(cert_path, key_path)
        ep = SSL4ServerEndpoint(self.reactor, port, options, interface=interface)  # type: ignore[no-untyped-call]
        lp = yield ep.listen(  # type: ignore[no-untyped-call]
            self._stream_factory("TLS")
        )
        self._ports.append(lp)
        self._add_listen(Target("TLS", interface, lp.getHost().port))
        return lp

    # ------------------------------------------------------------------ input
    def now(self) -> float:
        """The reactor's clock."""
        return float(self.reactor.seconds())

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            # A bug in the core or the application must not stop the server.
            self.log.failure("SIP core failed while handling {what}", what=what)
        self.flush()

    def datagram_received(self, data: bytes, source: Target) -> None:
        """A datagram from the network."""

        def handle() -> None:
            error = self.ua.datagram_received(data, source, self.now())
            if error is not None:
                self.log.info(
                    "dropped malformed datagram from {source}: {error}",
                    source=source,
                    error=error.detail,
                )

        self._guard("datagram", handle)

    def connection_made(self, proto: SipStreamProtocol) -> None:
        """Register a connection for reuse and send what waited for it."""
        assert proto.target is not None
        if len(self._connections) >= self.max_connections:
            self.log.warn("too many SIP connections; closing {peer}", peer=proto.target)
            if self._pending.pop(proto.target, None) is not None:
                # One we opened: what waited for it fails now (§17.1.4, §17.2.4).
                self.reactor.callLater(0, self._transport_error, proto.target)
            proto.target = None  # never registered: nothing to forget on close
            proto.close()
            return
        self._connections[proto.target] = proto
        for data in self._pending.pop(proto.target, []):
            proto.send(data)

    def connection_data(self, target: Target, data: bytes) -> None:
        """Octets on a stream."""
        self._guard("stream data", lambda: self.ua.connection_data(target, data, self.now()))

    def connection_lost(self, proto: SipStreamProtocol) -> None:
        """Forget a closed connection."""
        assert proto.target is not None
        if self._connections.get(proto.target) is proto:
            del self._connections[proto.target]
        self.ua.connection_lost(proto.target, self.now())

    # ------------------------------------------------------------------ output
    def flush(self) -> None:
        """Carry out the core's commands and re-arm the timer."""
        if self._stopped:
            self.ua.drain()
            return
        for cmd in self.ua.drain():
            if isinstance(cmd, Send):
                self._send(cmd.data, self._route(cmd))
            elif isinstance(cmd, CloseConnection):
                proto = self._connections.get(cmd.target)
                if proto is not None:
                    self.log.info("closing SIP connection {peer}: framing error", peer=cmd.target)
                    proto.close()
            elif isinstance(cmd, Resolve):
                self._resolve(cmd)
        self._rearm()

    def _route(self, cmd: Send) -> Target:
        """The connection for ``cmd``: its own target while that connection is open (or
        being opened), else the §18.2.2 fallback of a response."""
        target = cmd.target
        if (
            cmd.fallback is not None
            and target not in self._connections
            and target not in self._pending
        ):
            return cmd.fallback
        return target

    def _send(self, data: bytes, target: Target) -> None:
        if target.transport == "UDP":
            if self._udp is None:
                self.log.warn("no UDP listener to send to {target}", target=target)
                self.ua.transport_error(target, self.now())
                return
            try:
                self._udp.write(data, (target.host, target.port))
            except OSError:
                self.reactor.callLater(0, self._transport_error, target)
            return
        proto = self._connections.get(target)
        if proto is not None:
            proto.send(data)
            return
        queue = self._pending.get(target)
        if queue is not None:
            queue.append(data)
            return
        if len(self._connections) + len(self._pending) >= self.max_connections:
            # Attempts in progress count too: otherwise peers that make us answer or
            # call out to many addresses could open connections without bound.
            self.log.warn("too many SIP connections; not connecting to {target}", target=target)
            self.reactor.callLater(0, self._transport_error, target)
            return
        self._pending[target] = [data]
        self._connect(target)

    def _connect(self, target: Target) -> None:
        factory = self._stream_factory(target.transport)
        if target.transport == "TLS":
            ep: Any = SSL4ClientEndpoint(  # type: ignore[no-untyped-call]
                self.reactor, target.host, target.port, self.tls_client_options(target.host),
                timeout=10,
            )  # fmt: skip
        else:
            ep = TCP4ClientEndpoint(self.reactor, target.host, target.port, timeout=10)
        d = ep.connect(factory)

        def failed(f: Failure) -> None:
            self.log.info("cannot connect to {target}: {err}", target=target, err=f.value)
            self._pending.pop(target, None)
            self._transport_error(target)

        d.addErrback(failed)

    def _transport_error(self, target: Target) -> None:
        self._guard("transport error", lambda: self.ua.transport_error(target, self.now()))

    def _resolve(self, cmd: Resolve) -> None:
        d = self.resolver.resolve(cmd.host, cmd.transport, cmd.port, cmd.use_srv)

        def done(found: list[tuple[str, int]]) -> None:
            targets = [Target(cmd.transport, ip, port) for ip, port in found]
            self._guard("resolution", lambda: self.ua.resolved(cmd.query_id, targets, self.now()))

        def failed(f: Failure) -> None:
            self.log.info("cannot resolve {host}: {err}", host=cmd.host, err=f.value)
            done([])

        d.addCallbacks(done, failed)

    def _rearm(self) -> None:
        deadline = self.ua.next_deadline()
        if self._timer is not None and self._timer.active():
            if deadline is not None and abs(self._timer.getTime() - deadline) < 1e-9:
                return
            self._timer.cancel()
        self._timer = None
        if deadline is not None and not self._stopped:
            delay = max(0.0, deadline - self.now())
            self._timer = self.reactor.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._guard("timer", lambda: self.ua.on_timer(self.now()))

    # ------------------------------------------------------------------ shutdown
    def stop(self) -> defer.Deferred[None]:
        """Stop listening, close connections, cancel the timer; fires when done."""
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        ds: list[defer.Deferred[Any]] = [defer.maybeDeferred(p.stopListening) for p in self._ports]
        self._ports.clear()
        self._udp = None
        for proto in list(self._connections.values()):
            proto.close()
        self._connections.clear()
        self._pending.clear()
        self.ua.close()
        return defer.gatherResults(ds).addCallback(lambda _: None)


@attrs.frozen
class Listen:
    """One listening endpoint: transport "UDP", "TCP" or "TLS", address and port; TLS
    needs ``cert_path`` and ``key_path`` (PEM)."""

    transport: str
    interface: str = "127.0.0.1"
    port: int = 5060
    cert_path: str | None = None
    key_path: str | None = None


class SipService(Service):
    """A ``twistd`` service around a :class:`SipStack`: listens on ``listens`` when
    started, and stops listening, closes connections and cancels timers when stopped."""

    def __init__(self, stack: SipStack, listens: list[Listen]) -> None:
        self.stack = stack
        self.listens = listens
        self.ports: list[Any] = []

    @defer.inlineCallbacks
    def startService(self) -> Any:
        """Open every listener (a failure propagates to twistd)."""
        Service.startService(self)  # type: ignore[no-untyped-call]
        for spec in self.listens:
            transport = spec.transport.upper()
            if transport == "UDP":
                self.ports.append(self.stack.listen_udp(spec.port, spec.interface))
            elif transport == "TCP":
                self.ports.append((yield self.stack.listen_tcp(spec.port, spec.interface)))
            elif transport == "TLS":
                port = yield self.stack.listen_tls(
                    spec.port, spec.interface, cert_path=spec.cert_path, key_path=spec.key_path
                )
                self.ports.append(port)
            else:
                raise ValueError(f"unknown SIP transport {spec.transport!r}")

    def stopService(self) -> defer.Deferred[None]:
        """Shut the stack down cleanly."""
        Service.stopService(self)  # type: ignore[no-untyped-call]
        return self.stack.stop()
