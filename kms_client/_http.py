"""HTTP for the KMS client: one bounded POST, the retry loop, and HTTPS trust.

PROFILE.md section 3: POST of a raw MIKEY message as application/mikey; 200 carries the
response, 4xx a MIKEY Error, 5xx means the client may retry with back-off. Every attempt
has a timeout; the number of attempts is bounded; the response body is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import attrs
import treq
from treq.client import HTTPClient
from twisted.internet import defer, error
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.internet.task import deferLater
from twisted.web import _newclient, client
from twisted.web.http_headers import Headers
from twisted.web.iweb import (
    IAgent,
    IAgentEndpointFactory,
    IBodyProducer,
    IPolicyForHTTPS,
    IResponse,
)
from zope.interface import implementer  # type: ignore[import-untyped]

from ._errors import KmsProtocolError, KmsUnavailable

__all__ = [
    "MAX_RESPONSE_SIZE",
    "MIKEY_CONTENT_TYPE",
    "HttpAnswer",
    "RetryPolicy",
    "Scheduler",
    "https_agent",
    "persistent_pool",
    "post_with_retries",
]

MIKEY_CONTENT_TYPE = "application/mikey"  # RFC 3830 section 10.1
_MIKEY = MIKEY_CONTENT_TYPE.encode("ascii")
MAX_RESPONSE_SIZE = 64 * 1024  # the same bound the KMS puts on requests (PROFILE.md section 3)

T = TypeVar("T")


class Scheduler(Protocol):
    """What the client needs of a reactor: the time and a timer (IReactorTime)."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> IDelayedCall: ...


@attrs.frozen
class RetryPolicy:
    """Per-attempt timeout and bounded retries with exponential back-off.

    Retries happen on connection errors, timeouts and 5xx only (PROFILE.md section 3).
    The delay before retry n (1-based) is backoff * 2**(n-1), capped at max_backoff, and
    scaled by a jitter factor in [0.5, 1.0] so that many clients do not retry in step.
    """

    timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    backoff: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_backoff: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))

    def delay(self, retry: int, jitter: float) -> float:
        delay: float = min(self.backoff * 2 ** (retry - 1), self.max_backoff)
        return delay * (0.5 + 0.5 * jitter)


@attrs.frozen
class HttpAnswer:
    """An HTTP answer the KMS gave: status, media type and (bounded) body."""

    status: int
    media_type: str | None
    body: bytes = attrs.field(repr=False)


class _TooLarge(Exception):
    pass


class _ServerError(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP {status}")


def _media_type(response: IResponse) -> str | None:
    values = response.headers.getRawHeaders(b"content-type")
    if not values:
        return None
    first: bytes = values[0]
    return first.split(b";", 1)[0].strip().lower().decode("latin-1")


@implementer(IBodyProducer)
class _BytesProducer:
    """A request body written in one go.

    treq's default producer for bytes runs on the global cooperator (and so the global
    reactor); a KMS message is at most 64 KiB, so there is nothing to pace and the
    injected reactor stays the only one in play.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self._body)
        return defer.succeed(None)

    def stopProducing(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


async def _post_once(http: HTTPClient, url: str, body: bytes) -> HttpAnswer:
    response: IResponse = await http.post(
        url,
        data=cast(IBodyProducer, _BytesProducer(body)),
        headers=Headers({b"Content-Type": [_MIKEY], b"Accept": [_MIKEY]}),
        unbuffered=True,
        allow_redirects=False,  # a KMS answer is final (PROFILE.md section 3)
    )
    length = response.length
    if isinstance(length, int) and length > MAX_RESPONSE_SIZE:
        # Do not read it at all; dropping the connection is cheaper than draining it.
        response.deliverBody(_Discard())  # type: ignore[no-untyped-call,call-arg,misc]
        raise KmsProtocolError(f"response of {length} bytes is over {MAX_RESPONSE_SIZE}")
    chunks: list[bytes] = []
    received = 0

    def collect(data: bytes) -> None:
        nonlocal received
        received += len(data)
        if received > MAX_RESPONSE_SIZE:
            raise _TooLarge()
        chunks.append(data)

    try:
        await treq.collect(response, collect)
    except _TooLarge:
        raise KmsProtocolError(f"response body over {MAX_RESPONSE_SIZE} bytes") from None
    return HttpAnswer(status=response.code, media_type=_media_type(response), body=b"".join(chunks))


class _Discard:
    """A body consumer that stops the transfer at once (IProtocol for deliverBody)."""

    def makeConnection(self, transport: Any) -> None:
        stop = getattr(transport, "stopProducing", None)
        if stop is not None:
            stop()

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        pass


# Failures that mean "no usable HTTP answer came back": worth another attempt.
_TRANSIENT = (
    error.ConnectError,
    error.ConnectionLost,
    error.ConnectionClosed,
    error.TimeoutError,
    defer.TimeoutError,
    client.ResponseFailed,
    client.RequestTransmissionFailed,
    _newclient.RequestNotSent,
)


def _cancelled(exc: BaseException) -> bool:
    """True when *exc* is how a cancelled request fails (directly or wrapped by Agent)."""
    kinds = (defer.CancelledError, error.ConnectingCancelledError)
    if isinstance(exc, kinds):
        return True
    return any(r.check(*kinds) for r in getattr(exc, "reasons", None) or ())


def _describe(exc: BaseException) -> str:
    reasons = getattr(exc, "reasons", None)
    if reasons:
        inner = "; ".join(f"{r.type.__name__}: {r.getErrorMessage()}" for r in reasons)
        return f"{type(exc).__name__} ({inner})"
    return f"{type(exc).__name__}: {exc}"


async def post_with_retries(
    *,
    http: HTTPClient,
    url: str,
    make_body: Callable[[], bytes],
    scheduler: Scheduler,
    policy: RetryPolicy,
    jitter: Callable[[], float],
    on_answer: Callable[[HttpAnswer], T],
) -> T:
    """POST `make_body()` to *url* until an answer other than 5xx comes back.

    `make_body` is called once per attempt: a retry carries a fresh timestamp and fresh
    random values, so the KMS's replay cache (RFC 3830 section 5.3) does not refuse it when
    the first attempt did arrive. `on_answer` turns a non-5xx answer into the result or
    raises the client's own error.
    """
    last_reason = "no attempt made"
    last_status: int | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if attempt > 1:
            await deferLater(scheduler, policy.delay(attempt - 1, jitter()))  # type: ignore[arg-type]
        one: Deferred[HttpAnswer] = Deferred.fromCoroutine(_post_once(http, url, make_body()))
        # Our own timer rather than Deferred.addTimeout: a cancelled connection attempt
        # fails with ConnectingCancelledError or ResponseNeverReceived, not always with
        # CancelledError, and any of them is "no answer in time" when the timer fired.
        timed_out: list[bool] = []

        def expire(d: Deferred[HttpAnswer] = one, flag: list[bool] = timed_out) -> None:
            flag.append(True)
            d.cancel()

        timer: Any = scheduler.callLater(policy.timeout, expire)  # an IDelayedCall
        try:
            answer = await one
        except Exception as e:
            if timed_out:
                last_reason = f"no answer within {policy.timeout:g} s"
            elif _cancelled(e):
                # Only our timer and the caller cancel an attempt; this was the caller.
                raise defer.CancelledError() from e
            elif isinstance(e, _TRANSIENT):
                last_reason = _describe(e)
            else:
                raise
            last_status = None
            continue
        finally:
            if timer.active():
                timer.cancel()
        if 500 <= answer.status <= 599:
            last_reason = f"HTTP {answer.status}"
            last_status = answer.status
            continue
        return on_answer(answer)
    raise KmsUnavailable(last_reason, attempts=policy.max_attempts, http_status=last_status)


def run(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    return Deferred.fromCoroutine(coro)


@implementer(IPolicyForHTTPS)
class _TrustRootPolicy:
    """Check the KMS certificate against a configured CA instead of the system store."""

    def __init__(self, trust_root: Any) -> None:
        self._trust_root = trust_root

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._trust_root)


_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    """TCP (+TLS for https) to the KMS, like Agent's own factory, except that an IP
    literal host (the usual ``https://127.0.0.1:8443/...``) is connected to directly.

    Agent's ``HostnameEndpoint`` resolves even "127.0.0.1" through ``getaddrinfo`` in the
    reactor's thread pool: a thread hand-off per connection, which the join profile
    showed at 6-11 % of the focus's CPU (bench/README.md).
    """

    def __init__(self, reactor: Any, policy: Any, connect_timeout: float) -> None:
        self._reactor = reactor
        self._policy = policy
        self._timeout = connect_timeout

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        host = uri.host.decode("ascii")
        endpoint: Any
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(self._reactor, host, uri.port, timeout=self._timeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(  # type: ignore[no-untyped-call]
                self._reactor, host, uri.port, timeout=self._timeout
            )
        else:
            endpoint = HostnameEndpoint(self._reactor, host, uri.port, timeout=self._timeout)
        if uri.scheme == b"https":
            endpoint = wrapClientTLS(self._policy.creatorForNetloc(uri.host, uri.port), endpoint)
        return cast(IStreamClientEndpoint, endpoint)


#: How long an idle connection to the KMS is kept. Below the reference KMS's own idle
#: timeout (30 s, kms/_resource.py ``build_site``), so the client, not the server, closes
#: an idle connection and no request races a server-side close.
IDLE_CONNECTION_TIMEOUT = 10.0


def persistent_pool(
    reactor: Any, *, max_per_host: int = 32, idle_timeout: float = IDLE_CONNECTION_TIMEOUT
) -> client.HTTPConnectionPool:
    """A pool that keeps up to *max_per_host* idle connections to the KMS for
    *idle_timeout* s, so a busy client (the focus resolves a ticket per join) pays the
    TCP (and TLS) set-up once instead of per request. The owner closes it
    (``closeCachedConnections``)."""
    pool = client.HTTPConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
    pool.maxPersistentPerHost = max_per_host
    pool.cachedConnectionTimeout = idle_timeout  # type: ignore[assignment]
    pool.retryAutomatically = False  # a POST is never replayed behind our back
    return pool


def https_agent(
    reactor: Any,
    *,
    ca_file: Path | str | None = None,
    connect_timeout: float = 10.0,
    pool: client.HTTPConnectionPool | None = None,
) -> IAgent:
    """An Agent for the KMS: HTTPS checked against *ca_file* (PEM, one or more certificates).

    Without *ca_file* the platform's trust store is used (BrowserLikePolicyForHTTPS).
    The agent also serves plain http:// URLs; whether those are allowed is the KmsClient's
    decision (`allow_plain_http`). A busy caller (the focus) may pass a persistent
    *pool* (:func:`persistent_pool`) to reuse TLS connections; the owner closes it
    (`closeCachedConnections`). IP literal hosts are connected to without a resolver.
    """
    policy: Any
    if ca_file is None:
        policy = client.BrowserLikePolicyForHTTPS()  # type: ignore[no-untyped-call]
    else:
        pems = _PEM_CERT.findall(Path(ca_file).read_bytes())
        if not pems:
            raise ValueError(f"no PEM certificate in {ca_file}")
        certificates = [Certificate.loadPEM(p) for p in pems]
        policy = _TrustRootPolicy(trustRootFromCertificates(certificates))  # type: ignore[no-untyped-call]
    agent = client.Agent.usingEndpointFactory(  # type: ignore[no-untyped-call]
        reactor, _EndpointFactory(reactor, policy, connect_timeout), pool=pool
    )
    return cast(IAgent, agent)
