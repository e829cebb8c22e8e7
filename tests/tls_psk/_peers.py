"""Helpers shared by the loopback tests: bounded child processes and free ports."""

from __future__ import annotations

import contextlib
import os
import socket

import attrs
from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IHandshakeListener, IReactorProcess, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from tests.peers import python313

OPENSSL = "/usr/bin/openssl"
PYTHON313 = python313()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class Result:
    """What a child process did: exit code (None if killed), stdout, stderr."""

    code: int | None
    out: bytes
    err: bytes


class BoundedProcess(protocol.ProcessProtocol):
    """A child process that is killed when ``timeout`` seconds pass.

    ``ready`` fires when ``marker`` first appears in stdout or stderr (or at once
    when no marker is given); ``ended`` fires with a :class:`Result`.
    """

    def __init__(self, reactor: IReactorTime, timeout: float, marker: bytes | None) -> None:
        self.out = b""
        self.err = b""
        self.marker = marker
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[Result] = defer.Deferred()
        self._timer = reactor.callLater(timeout, self._kill)
        self.killed = False

    def _kill(self) -> None:
        self.killed = True
        with contextlib.suppress(error.ProcessExitedAlready):
            self.transport.signalProcess("KILL")

    def _check_marker(self) -> None:
        if self.marker is not None and not self.ready.called and self.marker in self.out + self.err:
            self.ready.callback(None)

    def outReceived(self, data: bytes) -> None:
        self.out += data
        self._check_marker()

    def errReceived(self, data: bytes) -> None:
        self.err += data
        self._check_marker()

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def close_stdin(self) -> None:
        self.transport.closeStdin()

    def processEnded(self, reason: object) -> None:
        if self._timer.active():
            self._timer.cancel()
        code = getattr(getattr(reason, "value", None), "exitCode", None)
        if not self.ready.called:
            self.ready.errback(RuntimeError(f"process ended before ready: {self.err!r}"))
        self.ended.callback(Result(None if self.killed else code, self.out, self.err))


def spawn(
    reactor: IReactorProcess,
    argv: list[str],
    *,
    timeout: float = 10.0,
    marker: bytes | None = None,
) -> BoundedProcess:
    """Start ``argv`` under a hard ``timeout``; the caller awaits ``.ready``/``.ended``."""
    proc = BoundedProcess(reactor, timeout, marker)  # type: ignore[arg-type]
    if marker is None:
        proc.ready.callback(None)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    reactor.spawnProcess(proc, argv[0], argv, env=env)
    return proc


def deadline(reactor: IReactorTime, d: defer.Deferred, seconds: float) -> defer.Deferred:
    """``d`` with a timeout, so no test waits for more than ``seconds``."""
    return d.addTimeout(seconds, reactor)


@implementer(IHandshakeListener)
class Probe(protocol.Protocol):
    """An application protocol inside TLS that records what happens to it.

    On handshake it writes ``greeting``; when ``expect`` has arrived it closes.
    """

    def __init__(self, greeting: bytes = b"", expect: bytes | None = None) -> None:
        self.greeting = greeting
        self.expect = expect
        self.received = b""
        self.keyed: defer.Deferred[None] = defer.Deferred()
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.reason: Failure | None = None
        self.handshake_done = False
        self.cipher: str | None = None
        self.version: str | None = None

    def handshakeCompleted(self) -> None:
        self.handshake_done = True
        self.cipher = self.transport.getHandle().get_cipher_name()
        self.version = self.transport.getHandle().get_protocol_version_name()
        self.keyed.callback(None)
        if self.greeting:
            self.transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.expect is not None and self.expect in self.received:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        # A Failure passed to callback() would become an errback; keep it aside.
        self.reason = reason
        self.lost.callback(None)
