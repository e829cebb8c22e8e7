"""The admin API (focus.admin) and /metrics (focus.metrics), in memory with StubTreq."""

from __future__ import annotations

import json
from typing import Any

import pytest
from treq.testing import StubTreq

from focus.admin import (
    AdminError,
    AdminResource,
    ParticipantView,
    ReloadResult,
    RoomView,
    admin_site,
    room_uri_of,
)
from focus.metrics import FocusMetrics

TOKEN = "s3cret-token-0123456789"
AUTH = {b"Authorization": [f"Bearer {TOKEN}".encode()]}
BASE = "http://127.0.0.1:8089"
LOBBY = "sip:lobby@conf.example.net"


class Backend:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reload_error: str | None = None

    def rooms(self) -> list[RoomView]:
        alice = ParticipantView("leg-1", "sip:alice@example.net", "bound", "dial-in", "Alice")
        return [RoomView(LOBBY, "Lobby", (alice,))]

    def dial_out(self, room: str, uri: str) -> None:
        if room != LOBBY:
            raise AdminError(404, "no such room")
        self.calls.append(("dial_out", room, uri))

    def remove(self, room: str, who: str, reason: str) -> int:
        self.calls.append(("remove", room, who, reason))
        return 1 if who in ("leg-1", "sip:alice@example.net") else 0

    def reload(self) -> ReloadResult:
        if self.reload_error:
            raise AdminError(422, self.reload_error)
        self.calls.append(("reload",))
        return ReloadResult("policy.toml", ("leg-9",))

    def drain(self) -> None:
        self.calls.append(("drain",))


def client(backend: Backend, metrics: FocusMetrics | None = None, **kw: Any) -> StubTreq:
    return StubTreq(AdminResource(backend, TOKEN, metrics=metrics, **kw))


def call(treq: StubTreq, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
    d = treq.request(method, BASE + path, **kw)
    treq.flush()
    response = d.result if hasattr(d, "result") else None
    assert response is not None, "the request did not complete in memory"
    body_d = response.content()
    treq.flush()
    body = body_d.result
    return response.code, response.headers, body


def as_json(body: bytes) -> Any:
    return json.loads(body)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {b"Authorization": [b"Bearer wrong-token-0123456789"]},
        {b"Authorization": [b"Basic x"]},
    ],
)
def test_without_the_token_every_api_call_is_401(headers: Any) -> None:
    """No token, a wrong token or another scheme: 401 with WWW-Authenticate: Bearer."""
    backend = Backend()
    treq = client(backend)
    for method, path in [("GET", "/api/v1/rooms"), ("POST", "/api/v1/reload"),
                         ("POST", "/api/v1/drain")]:  # fmt: skip
        code, resp_headers, body = call(treq, method, path, headers=headers)
        assert code == 401
        assert resp_headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="focus-admin"']
        assert TOKEN.encode() not in body
    assert backend.calls == []


def test_list_rooms_and_one_room() -> None:
    """GET rooms lists rooms and participants; a room by user@host or encoded URI."""
    treq = client(Backend())
    code, _, body = call(treq, "GET", "/api/v1/rooms", headers=AUTH)
    assert code == 200
    (room,) = as_json(body)["rooms"]
    assert room["uri"] == LOBBY
    assert room["participants"][0]["uri"] == "sip:alice@example.net"
    code, _, body = call(treq, "GET", "/api/v1/rooms/lobby@conf.example.net", headers=AUTH)
    assert (code, as_json(body)["uri"]) == (200, LOBBY)
    code, _, _ = call(treq, "GET", "/api/v1/rooms/sip%3Anone%40conf.example.net", headers=AUTH)
    assert code == 404


def test_dial_out_remove_reload_drain_reach_the_backend() -> None:
    """The write routes call the backend and answer 202/200 with JSON."""
    backend = Backend()
    treq = client(backend)
    code, _, body = call(treq, "POST", "/api/v1/rooms/lobby@conf.example.net/dial-out",
                         headers=AUTH, data=b'{"uri": "sip:carol@example.net"}')  # fmt: skip
    assert code == 202 and as_json(body)["status"] == "dialing"
    path = "/api/v1/rooms/lobby@conf.example.net/participants/sip%3Aalice%40example.net"
    code, _, body = call(treq, "DELETE", path + "?reason=spam", headers=AUTH)
    assert (code, as_json(body)["removed"]) == (200, 1)
    code, _, body = call(treq, "POST", "/api/v1/reload", headers=AUTH)
    assert (code, as_json(body)["removed"]) == (200, ["leg-9"])
    code, _, _ = call(treq, "POST", "/api/v1/drain", headers=AUTH)
    assert code == 202
    assert backend.calls == [
        ("dial_out", LOBBY, "sip:carol@example.net"),
        ("remove", LOBBY, "sip:alice@example.net", "spam"),
        ("reload",),
        ("drain",),
    ]


def test_errors_carry_their_status() -> None:
    """Bad bodies are 400, unknown rooms/participants 404, a broken policy 422 with its
    file:line message, wrong methods 405."""
    backend = Backend()
    treq = client(backend)
    dial = "/api/v1/rooms/lobby@conf.example.net/dial-out"
    assert call(treq, "POST", dial, headers=AUTH, data=b"not json")[0] == 400
    assert call(treq, "POST", dial, headers=AUTH, data=b'{"uri": "http://x"}')[0] == 400
    assert call(treq, "POST", "/api/v1/rooms/other@x/dial-out", headers=AUTH,
                data=b'{"uri": "sip:c@x"}')[0] == 404  # fmt: skip
    assert call(treq, "DELETE", "/api/v1/rooms/lobby@conf.example.net/participants/nobody",
                headers=AUTH)[0] == 404  # fmt: skip
    backend.reload_error = "policy.toml:3: rooms[0].uri: not a SIP URI"
    code, _, body = call(treq, "POST", "/api/v1/reload", headers=AUTH)
    assert (code, as_json(body)["error"]) == (422, backend.reload_error)
    assert call(treq, "GET", "/api/v1/reload", headers=AUTH)[0] == 405
    assert call(treq, "GET", "/api/v2/rooms", headers=AUTH)[0] == 404
    big = b'{"uri": "' + b"a" * 70000 + b'"}'
    assert call(treq, "POST", dial, headers=AUTH, data=big)[0] == 413


def test_metrics_expose_the_join_counter_after_a_join() -> None:
    """/metrics serves the registry; a recorded join shows as focus_joins_total."""
    metrics = FocusMetrics()
    treq = client(Backend(), metrics)
    code, headers, body = call(treq, "GET", "/metrics")
    assert code == 200
    assert b'focus_joins_total{direction="dial-out"}' not in body
    metrics.joined("dial-out")
    metrics.join_failed("dial-in", "no such reason")
    metrics.kms_round_trip("request", 0.02)
    metrics.relayed(10, 3)
    _, headers, body = call(treq, "GET", "/metrics")
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    assert b'focus_joins_total{direction="dial-out"} 1.0' in body
    assert b'focus_join_failures_total{direction="dial-in",reason="other"} 1.0' in body
    assert b'focus_kms_request_seconds_count{operation="request"} 1.0' in body
    assert b"focus_bytes_relayed_total 30.0" in body


def test_metrics_may_require_the_token_and_gauges_track_state() -> None:
    """With metrics_need_token, /metrics is 401 without it; tracked gauges read live."""
    metrics = FocusMetrics()
    rooms = [1, 2]
    metrics.track(rooms=lambda: len(rooms))
    treq = client(Backend(), metrics, metrics_need_token=True)
    assert call(treq, "GET", "/metrics")[0] == 401
    _, _, body = call(treq, "GET", "/metrics", headers=AUTH)
    assert b"focus_rooms 2.0" in body
    rooms.append(3)
    assert b"focus_rooms 3.0" in metrics.exposition()


def test_two_metrics_objects_do_not_share_counters() -> None:
    """Each FocusMetrics has its own registry."""
    a, b = FocusMetrics(), FocusMetrics()
    a.joined("dial-in")
    assert b'focus_joins_total{direction="dial-in"} 1.0' in a.exposition()
    assert b"focus_joins_total{" not in b.exposition()


def test_settings_and_room_paths() -> None:
    """Tokens are at least 16 characters; room paths decode."""
    with pytest.raises(ValueError, match="at least 16"):
        AdminResource(Backend(), "short")
    assert room_uri_of("lobby@conf.example.net") == LOBBY
    assert room_uri_of("sips%3Alobby%40conf.example.net") == "sips:lobby@conf.example.net"
    with pytest.raises(AdminError):
        room_uri_of("")
    site = admin_site(Backend(), TOKEN)
    assert site.displayTracebacks is False
