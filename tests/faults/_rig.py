"""The fault-test rig: a real ``twistd kms`` and ``twistd focus`` (bench.deployment), a
switchable KMS front the focus talks to, and focus-ue participants in the test reactor.

The participants ask the real KMS for their tickets; the focus resolves them through
:class:`KmsFront`, which forwards to the real KMS, refuses connections ("down"), never
answers ("slow", beyond the focus's client timeout) or answers garbage.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.web import resource, server

from bench._procs import open_fds
from bench.deployment import KMS_IDENTITY, ROOM, Deployment, account_key, identity
from kms_client import KmsClient, https_agent
from ue.chat import Received
from ue.client import ChatClient, UeConfig

LIMIT = 20.0


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


class _Front(resource.Resource):
    isLeaf = True

    def __init__(self, front: KmsFront) -> None:
        super().__init__()
        self.front = front

    def render_POST(self, request: Any) -> Any:
        mode = self.front.mode
        self.front.requests += 1
        if mode == "slow":
            self.front.held.append(request)  # never answered while the focus waits
            return server.NOT_DONE_YET
        if mode == "garbage":
            request.setHeader(b"content-type", b"application/mikey")
            return os.urandom(57)
        body = request.content.read()
        agent = https_agent(reactor())
        import treq

        d = treq.post(
            self.front.target + request.path.decode().split("/mikey-ticket/v1", 1)[1],
            data=body,
            headers={b"content-type": [b"application/mikey"]},
            agent=agent,
        )

        def answer(response: Any) -> Any:
            request.setResponseCode(response.code)
            request.setHeader(b"content-type", b"application/mikey")
            return treq.content(response).addCallback(done)

        def done(content: bytes) -> None:
            if not request.finished and not request._disconnected:
                request.write(content)
                request.finish()

        def failed(_failure: Any) -> None:
            if not request.finished and not request._disconnected:
                request.setResponseCode(502)
                request.finish()

        d.addCallback(answer).addErrback(failed)
        return server.NOT_DONE_YET


class KmsFront:
    """An HTTP front for the KMS with a switchable ``mode``: normal, down, slow, garbage."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.mode = "normal"
        self.requests = 0
        self.held: list[Any] = []
        self.connections: list[Any] = []
        self.port = _free_port()
        self._listening: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mikey-ticket/v1"

    def start(self) -> None:
        front = self

        class Site(server.Site):
            def buildProtocol(self, addr: Any) -> Any:
                protocol = super().buildProtocol(addr)
                front.connections.append(protocol)
                return protocol

        self._listening = reactor().listenTCP(self.port, Site(_Front(self)), interface="127.0.0.1")

    def set_mode(self, mode: str) -> defer.Deferred[None]:
        """Switch; "down" stops listening and resets the connections the focus keeps
        (its KMS client pools them), so every attempt is refused; anything else listens."""
        self.mode = mode
        self._release_held()
        if mode == "down":
            connections, self.connections = self.connections, []
            for protocol in connections:
                # Site builds a _GenericHTTPChannelProtocol proxying the real channel.
                channel = getattr(protocol, "_channel", protocol)
                transport = getattr(channel, "transport", None)
                if transport is not None:
                    transport.abortConnection()
        if mode == "down" and self._listening is not None:
            d, self._listening = self._listening.stopListening(), None
            return defer.maybeDeferred(lambda: d)
        if mode != "down" and self._listening is None:
            self.start()
        return defer.succeed(None)

    def _release_held(self) -> None:
        held, self.held = self.held, []
        for request in held:
            with contextlib.suppress(Exception):
                request.setResponseCode(503)
                request.finish()

    def stop(self) -> defer.Deferred[None]:
        self._release_held()
        if self._listening is not None:
            d, self._listening = self._listening.stopListening(), None
            return defer.maybeDeferred(lambda: d)
        return defer.succeed(None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Participant:
    """One focus-ue session in the test reactor, with what it received."""

    def __init__(self, dep: Deployment, number: int, **config: Any) -> None:
        who = identity(number)
        self.identity = who
        self.messages: list[Received] = []
        self.log: list[str] = []
        kms = KmsClient(
            base_url=dep.kms_url,
            kms_identity=KMS_IDENTITY,
            psk=bytes.fromhex(account_key(who)),
            http=https_agent(reactor()),
            reactor=reactor(),
            allow_plain_http=True,
        )
        settings = {"invite_timeout": 8.0, "leg_timeout": 5.0, "bye_timeout": 2.0, **config}
        self.client = ChatClient(
            UeConfig(identity=who, room=ROOM, proxy=("127.0.0.1", dep.sip_port), **settings),
            kms=kms,
            reactor=reactor(),
            on_message=self.messages.append,
            on_log=self.log.append,
        )

    def join(self) -> defer.Deferred[None]:
        return self.client.join().addTimeout(LIMIT, reactor())

    def texts(self) -> list[str]:
        return [m.body for m in self.messages]


async def wait_for(
    predicate: Callable[[], bool], timeout: float = LIMIT, step: float = 0.05
) -> None:
    """Poll ``predicate`` on the reactor until it holds, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await task.deferLater(reactor(), step, lambda: None)


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor(), seconds, lambda: None)


async def chat_works(a: Participant, b: Participant, text: str) -> None:
    """``a`` says ``text`` and ``b`` receives it."""
    assert a.client.send_chat(text) is not None
    await wait_for(lambda: text in b.texts())


def events(dep: Deployment, name: str) -> list[dict[str, Any]]:
    return [e for e in dep.events() if e.get("event") == name]


def focus_fds(dep: Deployment) -> int:
    assert dep.focus is not None
    return open_fds(dep.focus.pid)


async def leave_all(*participants: Participant) -> None:
    for p in participants:
        with contextlib.suppress(Exception):
            await p.client.leave()
