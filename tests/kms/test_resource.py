"""HTTP plumbing of the KMS (PROFILE.md section 3) with a stand-in MIKEY engine."""

from __future__ import annotations

import attrs
import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.test.requesthelper import DummyChannel

from kms import MAX_BODY_SIZE, Rejection, Reply, build_resource, build_site
from kms._resource import BoundedRequest

BASE = "http://kms.test/mikey-ticket/v1"
MIKEY = {"Content-Type": "application/mikey"}


@attrs.define
class FakeEngine:
    """Echoes bodies, rejects those starting with b'bad', records what it saw."""

    seen: list[tuple[str, bytes]] = attrs.Factory(list)

    def _answer(self, op: str, body: bytes, now: float) -> Reply:
        self.seen.append((op, body))
        if body.startswith(b"bad"):
            raise Rejection("bad", http_status=403, err_code=7, identity="sip:x@y")
        return Reply(body=op.encode() + b":" + body, identity="sip:a@b")

    def request(self, body: bytes, *, now: float) -> Reply:
        return self._answer("request", body, now)

    def resolve(self, body: bytes, *, now: float) -> Reply:
        return self._answer("resolve", body, now)

    def error_message(self, rejection: Rejection, *, failed: bytes, now: float) -> bytes:
        return b"ERR%d" % rejection.err_code


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def http(engine: FakeEngine) -> StubTreq:
    return StubTreq(build_resource(engine, clock=Clock()))


def post(http: StubTreq, path: str, body: bytes, headers: dict[str, str] | None = None):
    d = http.post(BASE + path, data=body, headers=MIKEY if headers is None else headers)
    http.flush()
    response = _result(d)
    return response, _result(http.content(response))


def _result(d):
    results: list[object] = []
    d.addBoth(results.append)
    assert results, "Deferred did not fire"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


@pytest.mark.parametrize("path", ["/request", "/resolve"])
def test_post_reaches_the_engine_and_answers_200_mikey(
    http: StubTreq, engine: FakeEngine, path: str
) -> None:
    """A POST with application/mikey is handed to the engine; 200 with its answer."""
    response, body = post(http, path, b"hello")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["application/mikey"]
    assert body == path[1:].encode() + b":hello"
    assert engine.seen == [(path[1:], b"hello")]


def test_rejection_maps_to_its_status_and_error_body(http: StubTreq) -> None:
    """A Rejection becomes its HTTP status with the engine's MIKEY Error body."""
    response, body = post(http, "/request", b"bad one")
    assert response.code == 403
    assert body == b"ERR7"
    assert response.headers.getRawHeaders("content-type") == ["application/mikey"]


def test_wrong_content_type_is_415(http: StubTreq, engine: FakeEngine) -> None:
    """Another content type is answered 415 without consulting the engine."""
    response, body = post(http, "/request", b"x", {"Content-Type": "text/plain"})
    assert response.code == 415
    assert body == b"ERR12"
    assert engine.seen == []


def test_missing_content_type_is_415(http: StubTreq) -> None:
    """No content type at all is answered 415."""
    response, _ = post(http, "/resolve", b"x", {})
    assert response.code == 415


def test_content_type_parameters_and_case_are_accepted(http: StubTreq) -> None:
    """The media type is compared case-insensitively, parameters ignored."""
    response, _ = post(http, "/resolve", b"x", {"Content-Type": "Application/MIKEY; v=1"})
    assert response.code == 200


def test_body_over_64k_is_413(http: StubTreq, engine: FakeEngine) -> None:
    """A body above 64 KiB is answered 413 and never reaches the engine."""
    response, _ = post(http, "/request", b"x" * (MAX_BODY_SIZE + 1))
    assert response.code == 413
    assert engine.seen == []


def test_body_of_exactly_64k_is_accepted(http: StubTreq) -> None:
    """A body of exactly 64 KiB is still served."""
    response, _ = post(http, "/request", b"x" * MAX_BODY_SIZE)
    assert response.code == 200


def test_get_is_not_allowed(http: StubTreq) -> None:
    """Only POST is served on the operation paths."""
    d = http.get(BASE + "/request")
    http.flush()
    response = _result(d)
    assert response.code == 405
    assert response.headers.getRawHeaders("allow") == ["POST"]


def test_base_path_itself_is_404(http: StubTreq) -> None:
    """The base path is not an operation."""
    d = http.get(BASE)
    http.flush()
    assert _result(d).code == 404


def test_other_paths_are_404(http: StubTreq) -> None:
    """Nothing is served outside the base path."""
    response, _ = post(http, "/../other", b"x")
    assert response.code == 404


def test_custom_base_path(engine: FakeEngine) -> None:
    """The base path comes from configuration."""
    http = StubTreq(build_resource(engine, clock=Clock(), base_path="/kms/x"))
    d = http.post("http://kms.test/kms/x/request", data=b"y", headers=MIKEY)
    http.flush()
    assert _result(d).code == 200


def test_bounded_request_stops_buffering_a_declared_large_body() -> None:
    """A Content-Length above the limit is not spooled: the request keeps no body."""
    request = BoundedRequest(DummyChannel(), False)
    request.gotLength(MAX_BODY_SIZE * 10)
    request.handleContentChunk(b"x" * 1000)
    assert request.body_too_large
    request.content.seek(0)
    assert request.content.read() == b""


def test_bounded_request_stops_buffering_a_chunked_large_body() -> None:
    """A body of unknown length stops being buffered once it passes the limit."""
    request = BoundedRequest(DummyChannel(), False)
    request.gotLength(None)
    for _ in range(MAX_BODY_SIZE // 1000 + 2):
        request.handleContentChunk(b"x" * 1000)
    assert request.body_too_large


def test_site_uses_bounded_requests(engine: FakeEngine) -> None:
    """The site built for the KMS creates BoundedRequest objects and 413s over-long bodies."""
    site = build_site(build_resource(engine, clock=Clock()), reactor=Clock())
    assert site.requestFactory is BoundedRequest
    protocol = site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(
        b"POST /mikey-ticket/v1/request HTTP/1.1\r\nHost: k\r\n"
        b"Content-Type: application/mikey\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000
    )
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert engine.seen == []


def test_engine_bug_is_500_and_the_service_goes_on(engine: FakeEngine) -> None:
    """An unexpected exception in the engine answers 500 and the next request is served."""

    class Broken(FakeEngine):
        def request(self, body: bytes, *, now: float) -> Reply:
            raise RuntimeError("boom")

    http = StubTreq(build_resource(Broken(), clock=Clock()))
    response, body = post(http, "/request", b"x")
    assert response.code == 500
    assert b"boom" not in body
    response, _ = post(http, "/resolve", b"x")
    assert response.code == 200


def test_one_structured_log_line_per_request(http: StubTreq) -> None:
    """Each request logs one event with operation, identity, outcome, status and latency."""
    from twisted.logger import globalLogPublisher

    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        post(http, "/request", b"hello")
        post(http, "/resolve", b"bad one")
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [e for e in events if "operation" in e]
    assert [(e["operation"], e["identity"], e["outcome"], e["status"]) for e in lines] == [
        ("request", "sip:a@b", "ok", 200),
        ("resolve", "sip:x@y", "rejected", 403),
    ]
    assert all(isinstance(e["latency_ms"], float) for e in lines)
    assert lines[1]["err"] == 7


def test_site_parses_no_forms_and_writes_no_access_log(engine: FakeEngine) -> None:
    """A form-typed body is not parsed into args, and no Common Log Format line is
    written (the resource's structured line is the one log line per request)."""
    from twisted.web import http as web_http

    site = build_site(build_resource(engine, clock=Clock()), reactor=Clock())
    written: list[str] = []
    site.logFile = type("F", (), {"write": lambda _self, line: written.append(line)})()
    protocol = site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    parsed: list[bytes] = []
    real = web_http._parseContentType

    def spy(line: bytes) -> bytes:
        parsed.append(line)
        return real(line)

    web_http._parseContentType = spy
    try:
        protocol.dataReceived(
            b"POST /mikey-ticket/v1/request HTTP/1.1\r\nHost: k\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"
        )
    finally:
        web_http._parseContentType = real
    assert transport.value().startswith(b"HTTP/1.1 415 ")
    assert parsed == []
    assert written == []
