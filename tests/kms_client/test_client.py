"""KmsClient behaviour on faults: timeouts, retries, typed errors (PROFILE.md section 3)."""

from __future__ import annotations

import attrs
import pytest
from treq.testing import RequestTraversalAgent
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web import client as web_client
from twisted.web.iweb import IAgent
from twisted.web.resource import Resource
from zope.interface import implementer

from kms import build_resource
from kms_client import (
    KmsClient,
    KmsProtocolError,
    KmsRejected,
    KmsUnavailable,
    RetryPolicy,
)
from mikey import DecodeError, TicketGrant, build_error
from tests.kms.conftest import ALICE, BASE, BOB, KEYS, KMS_ID, NOW, Kms, counting_random


def make_client(http: object, clock: object, **kw: object) -> KmsClient:
    options: dict[str, object] = {
        "base_url": BASE,
        "kms_identity": KMS_ID,
        "psk": KEYS[ALICE],
        "http": http,
        "reactor": clock,
        "allow_plain_http": True,
        "random_bytes": counting_random(),
        "retry": RetryPolicy(timeout=2.0, max_attempts=3, backoff=1.0, max_backoff=4.0),
    }
    options.update(kw)
    return KmsClient(**options)  # type: ignore[arg-type]


def outcome(d: Deferred) -> list[object]:
    results: list[object] = []
    d.addBoth(results.append)
    return results


def clock_at_now() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


@implementer(IAgent)
@attrs.define
class NeverAnswers:
    """An agent for a KMS that accepted the connection and then went silent."""

    requests: list[bytes] = attrs.Factory(list)
    cancelled: int = 0

    def request(self, method, uri, headers=None, bodyProducer=None):
        self.requests.append(uri)

        def cancel(d: Deferred) -> None:
            self.cancelled += 1

        return Deferred(cancel)


@implementer(IAgent)
@attrs.define
class Refuses:
    """An agent for a KMS that is not running: every connection is refused."""

    calls: int = 0

    def request(self, method, uri, headers=None, bodyProducer=None):
        self.calls += 1
        return fail(ConnectionRefusedError("refused"))


class Canned(Resource):
    """Answers every POST with a fixed status, content type and body."""

    isLeaf = True

    def __init__(self, *answers: tuple[int, bytes | None, bytes]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls: list[bytes] = []

    def render_POST(self, request):
        self.calls.append(request.content.read())
        code, content_type, body = self.answers[min(len(self.calls), len(self.answers)) - 1]
        request.setResponseCode(code)
        if content_type is not None:
            request.setHeader(b"content-type", content_type)
        return body


def pump(agent: RequestTraversalAgent, clock: Clock, results: list[object], rounds: int = 50):
    for _ in range(rounds):
        if results:
            return
        agent.flush()
        clock.advance(0.5)


def test_silent_kms_gives_kms_unavailable_after_the_timeouts_no_hang() -> None:
    """Three attempts of 2 s with 1 s and 2 s back-off: KmsUnavailable by t=8 s, not before 6 s."""
    clock, agent = clock_at_now(), NeverAnswers()
    results = outcome(make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB]))
    clock.pump([0.1] * 59)
    assert results == []
    clock.pump([0.1] * 30)
    assert len(results) == 1 and isinstance(results[0], Failure)
    assert results[0].check(KmsUnavailable)
    assert results[0].value.attempts == 3
    assert "within 2 s" in str(results[0].value)
    assert len(agent.requests) == 3 and agent.cancelled == 3
    assert not clock.getDelayedCalls()


def test_stopped_kms_gives_kms_unavailable_after_bounded_retries() -> None:
    """Refused connections are retried with back-off, then KmsUnavailable; nothing is left armed."""
    clock, agent = clock_at_now(), Refuses()
    results = outcome(make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB]))
    assert agent.calls == 1 and results == []
    clock.advance(1.0)
    assert agent.calls == 2
    clock.advance(2.0)
    assert agent.calls == 3
    assert isinstance(results[0], Failure) and results[0].check(KmsUnavailable)
    assert "ConnectionRefusedError" in str(results[0].value)
    assert not clock.getDelayedCalls()


def test_real_agent_on_a_memory_reactor_times_out() -> None:
    """With twisted.web's Agent and a connection that never completes, the timeout still fires."""
    reactor = MemoryReactorClock()
    reactor.advance(NOW)
    agent = web_client.Agent(reactor, connectTimeout=60)
    client = make_client(agent, reactor, retry=RetryPolicy(timeout=3.0, max_attempts=1))
    results = outcome(client.request_ticket(initiator=ALICE, responders=[BOB]))
    assert reactor.tcpClients, "the agent did not try to connect"
    reactor.advance(3.0)
    assert isinstance(results[0], Failure) and results[0].check(KmsUnavailable)


def test_5xx_is_retried_and_a_later_success_is_returned(kms: Kms) -> None:
    """A 503 then the real KMS: the client retries with a fresh message and gets the grant."""

    class FlakyFirst(Resource):
        def __init__(self, real: object) -> None:
            super().__init__()
            self.real = real
            self.calls = 0

        def getChildWithDefault(self, path, request):
            self.calls += 1
            if self.calls == 1:
                return Canned((503, None, b""))
            return self.real.getChildWithDefault(path, request)

    root = FlakyFirst(build_resource(kms.engine, clock=kms.clock))
    agent = RequestTraversalAgent(root)
    client = make_client(agent, kms.clock)
    results = outcome(client.request_ticket(initiator=ALICE, responders=[BOB]))
    pump(agent, kms.clock, results)
    assert root.calls == 2
    assert isinstance(results[0], TicketGrant), results[0]


def test_5xx_every_time_is_kms_unavailable_with_the_status() -> None:
    """A KMS that keeps answering 500 makes the client give up with KmsUnavailable(500)."""
    clock = clock_at_now()
    resource = Canned((500, None, b"oops"))
    agent = RequestTraversalAgent(resource)
    results = outcome(make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB]))
    pump(agent, clock, results)
    failure = results[0]
    assert isinstance(failure, Failure) and failure.check(KmsUnavailable)
    assert failure.value.http_status == 500
    assert len(resource.calls) == 3
    assert len(set(resource.calls)) == 3, "each retry must carry a fresh message"


def test_4xx_is_not_retried_and_carries_the_err_code() -> None:
    """A 403 with a MIKEY Error is KmsRejected(403, ERR 14) after a single attempt."""
    clock = clock_at_now()
    error = build_error(err_code=14, csb_id=1, now=NOW)
    resource = Canned((403, b"application/mikey", error))
    agent = RequestTraversalAgent(resource)
    results = outcome(make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB]))
    pump(agent, clock, results)
    failure = results[0]
    assert isinstance(failure, Failure) and failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (403, 14)
    assert len(resource.calls) == 1


def test_4xx_without_a_mikey_body_has_no_err_code() -> None:
    """A 404 from something that is not a KMS is KmsRejected with err_code None."""
    clock = clock_at_now()
    agent = RequestTraversalAgent(Canned((404, b"text/html", b"<h1>no</h1>")))
    results = outcome(make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB]))
    pump(agent, clock, results)
    failure = results[0]
    assert isinstance(failure, Failure) and failure.check(KmsRejected)
    assert failure.value.err_code is None


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((200, b"text/plain", b"hello"), "content type"),
        ((200, b"application/mikey", b"\x01garbage"), "not accepted"),
        ((200, b"application/mikey", b"\x00" * (64 * 1024 + 1)), "over"),
        ((302, b"text/plain", b""), "302"),
    ],
)
def test_unusable_answers_are_protocol_errors(answer: tuple, reason: str) -> None:
    """A 200 that is not MIKEY, does not verify or is too large, or a 3xx: KmsProtocolError."""
    clock = clock_at_now()
    resource = Canned(answer)
    agent = RequestTraversalAgent(resource)
    results = outcome(make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB]))
    pump(agent, clock, results)
    failure = results[0]
    assert isinstance(failure, Failure) and failure.check(KmsProtocolError), failure
    assert reason in str(failure.value)
    assert len(resource.calls) == 1


def test_caller_cancel_stops_the_attempt() -> None:
    """Cancelling the Deferred cancels the HTTP request and arms no retry."""
    clock, agent = clock_at_now(), NeverAnswers()
    d = make_client(agent, clock).request_ticket(initiator=ALICE, responders=[BOB])
    results = outcome(d)
    d.cancel()
    assert isinstance(results[0], Failure) and results[0].check(CancelledError)
    assert agent.cancelled == 1
    assert not clock.getDelayedCalls()


def test_caller_cancel_with_a_real_agent_is_not_retried() -> None:
    """Cancelling while twisted.web's Agent is connecting gives CancelledError, no retry."""
    reactor = MemoryReactorClock()
    reactor.advance(NOW)
    client = make_client(web_client.Agent(reactor), reactor)
    d = client.request_ticket(initiator=ALICE, responders=[BOB])
    results = outcome(d)
    assert len(reactor.tcpClients) == 1
    d.cancel()
    assert isinstance(results[0], Failure) and results[0].check(CancelledError)
    reactor.advance(60)
    assert len(reactor.tcpClients) == 1


def test_plain_http_needs_an_explicit_opt_in() -> None:
    """An http:// base URL is refused unless allow_plain_http is set."""
    with pytest.raises(ValueError, match="allow_plain_http"):
        make_client(NeverAnswers(), Clock(), allow_plain_http=False)


def test_malformed_ticket_is_refused_at_the_call() -> None:
    """A ticket that does not decode raises mikey's DecodeError before anything is sent."""
    agent = NeverAnswers()
    with pytest.raises(DecodeError):
        make_client(agent, clock_at_now()).resolve_ticket(responder=BOB, ticket=b"\x01\x02")
    assert agent.requests == []


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Delays are backoff * 2**(n-1), capped, scaled into [0.5, 1] by the jitter."""
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0)
    assert [policy.delay(n, 1.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(2, 0.0) == 0.5


def test_client_repr_holds_no_key() -> None:
    """The client's repr shows the KMS URL and identity, not the pre-shared key."""
    text = repr(make_client(NeverAnswers(), Clock()))
    assert KEYS[ALICE].hex() not in text and repr(KEYS[ALICE]) not in text
    assert "kms.test" in text
