"""The operator's admin API: a small JSON-over-HTTP ``twisted.web`` resource tree.

It listens on loopback by default (the service binds it where ``[admin]`` says) and
every request under ``/api/`` needs ``Authorization: Bearer <token>`` with the token
from the configuration; without it, or with another token, the answer is 401 with
``WWW-Authenticate: Bearer`` (RFC 6750 §3).  The token is compared in constant time and
never logged.  ``/metrics`` (when a :class:`~focus.metrics.FocusMetrics` is given) is
served without the token unless ``metrics_need_token`` is set, the way Prometheus
scrapers are usually deployed next to a loopback-only listener.

Routes (``{room}`` is the room URI, URL-encoded, or ``user@host`` meaning ``sip:user@host``;
``{who}`` a participant's leg id or URI):

==========  =====================================  =========================================
GET         ``/api/v1/rooms``                      rooms and their participants
GET         ``/api/v1/rooms/{room}``               one room (404 if not live)
POST        ``/api/v1/rooms/{room}/dial-out``      body ``{"uri": "sip:…"}``: invite (202)
DELETE      ``/api/v1/rooms/{room}/participants/{who}``  BYE to that participant (200)
POST        ``/api/v1/reload``                     reload the policy file (200, or 422 with
                                                   the file:line error; the old one stays)
POST        ``/api/v1/drain``                      refuse new joins, let calls end (202)
GET         ``/metrics``                           Prometheus text exposition
==========  =====================================  =========================================

The settings are ``[admin]`` of focus.toml (:class:`focus.config.AdminConfig`).  The
service implements :class:`AdminBackend`; this module only parses, authenticates,
bounds (request bodies at most 64 KiB) and renders.  Backend failures are
:class:`AdminError` with their HTTP status.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import unquote

import attrs
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from focus.metrics import FocusMetrics

__all__ = [
    "MAX_BODY",
    "AdminBackend",
    "AdminError",
    "AdminResource",
    "ParticipantView",
    "ReloadResult",
    "RoomView",
    "admin_site",
    "room_uri_of",
]

MAX_BODY = 64 * 1024


class AdminError(Exception):
    """A request the backend cannot carry out; ``http_status`` is the answer (400 bad
    request, 404 no such room/participant, 409 conflict, 422 invalid policy, 503
    draining)."""

    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.reason = reason


@attrs.frozen
class ParticipantView:
    leg_id: str
    uri: str
    state: str
    direction: str
    display_name: str | None = None
    nickname: str | None = None


@attrs.frozen
class RoomView:
    uri: str
    subject: str | None
    participants: tuple[ParticipantView, ...] = ()


@attrs.frozen
class ReloadResult:
    """A reload that took effect: the policy ``source`` and the legs it ended."""

    source: str | None
    removed: tuple[str, ...] = ()
    dialing: tuple[str, ...] = ()


class AdminBackend(Protocol):
    """What the service offers the admin API."""

    def rooms(self) -> Sequence[RoomView]: ...

    def dial_out(self, room: str, uri: str) -> None:
        """Start inviting ``uri`` into ``room`` (progress goes to the log)."""

    def remove(self, room: str, who: str, reason: str) -> int:
        """End the legs of ``who`` (leg id or URI) in ``room``; return how many."""

    def reload(self) -> ReloadResult:
        """Reload the policy file; raise :class:`AdminError` 422 when it is invalid."""

    def drain(self) -> None:
        """Stop admitting; existing calls go on until they end."""


def _token(_inst: object, _attribute: object, value: str) -> None:
    if len(value) < 16 or not value.isprintable() or " " in value:
        raise ValueError("the admin token must be at least 16 printable characters, no spaces")


def room_uri_of(segment: str) -> str:
    """A room path segment: URL-decoded; ``user@host`` gets the ``sip:`` scheme."""
    text = unquote(segment)
    if not text or len(text) > 512:
        raise AdminError(400, "bad room in the path")
    if ":" not in text.split("@", 1)[0]:
        text = f"sip:{text}"
    return text


def _view(room: RoomView) -> dict[str, Any]:
    return {
        "uri": room.uri,
        "subject": room.subject,
        "participants": [attrs.asdict(p) for p in room.participants],
    }


class AdminResource(Resource):
    """The whole admin tree as one leaf resource (routing on ``request.postpath``)."""

    isLeaf = True
    log = Logger()

    def __init__(
        self,
        backend: AdminBackend,
        token: str,
        *,
        metrics: FocusMetrics | None = None,
        metrics_need_token: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        _token(None, None, token)
        self._backend = backend
        self._token = token.encode("ascii")
        self._metrics = metrics
        self._metrics_need_token = metrics_need_token

    # -- plumbing -------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        header: bytes = request.getHeader(b"authorization") or b""
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(credentials.strip(), self._token)

    @staticmethod
    def _json(request: Request, status: int, payload: object) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")  # type: ignore[no-untyped-call]
        request.setHeader(b"Cache-Control", b"no-store")  # type: ignore[no-untyped-call]
        return json.dumps(payload, sort_keys=True).encode("utf-8") + b"\n"

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        content = request.content
        data = content.read(MAX_BODY + 1) if content is not None else b""
        if len(data) > MAX_BODY:
            raise AdminError(413, "request body too large")
        if not data.strip():
            return {}
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AdminError(400, "the body is not JSON") from exc
        if not isinstance(value, dict):
            raise AdminError(400, "the body must be a JSON object")
        return value

    def render(self, request: Request) -> bytes:
        path = [p.decode("utf-8", "replace") for p in request.postpath or []]
        while path and path[-1] == "":
            path.pop()
        method = (request.method or b"GET").decode("ascii", "replace")
        if path == ["metrics"] and self._metrics is not None:
            if self._metrics_need_token and not self._authorised(request):
                return self._unauthorised(request)
            if method != "GET":
                return self._json(request, 405, {"error": "method not allowed"})
            request.setHeader(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8")  # type: ignore[no-untyped-call]
            return self._metrics.exposition()
        if not self._authorised(request):
            return self._unauthorised(request)
        try:
            return self._route(request, method, path)
        except AdminError as exc:
            return self._json(request, exc.http_status, {"error": exc.reason})

    def _unauthorised(self, request: Request) -> bytes:
        request.setHeader(b"WWW-Authenticate", b'Bearer realm="focus-admin"')  # type: ignore[no-untyped-call]
        return self._json(request, 401, {"error": "a valid bearer token is required"})

    # -- routes ---------------------------------------------------------------------------

    def _route(self, request: Request, method: str, path: list[str]) -> bytes:
        if path[:2] != ["api", "v1"] or len(path) < 3:
            raise AdminError(404, "no such resource")
        rest = path[2:]
        route = (method, rest[0], len(rest))
        if route == ("GET", "rooms", 1):
            rooms = [_view(r) for r in self._backend.rooms()]
            return self._json(request, 200, {"rooms": rooms})
        if route == ("GET", "rooms", 2):
            uri = room_uri_of(rest[1])
            for room in self._backend.rooms():
                if room.uri == uri:
                    return self._json(request, 200, _view(room))
            raise AdminError(404, "no such live room")
        if route == ("POST", "rooms", 3) and rest[2] == "dial-out":
            return self._dial_out(request, room_uri_of(rest[1]))
        if route == ("DELETE", "rooms", 4) and rest[2] == "participants":
            return self._remove(request, room_uri_of(rest[1]), unquote(rest[3]))
        if route == ("POST", "reload", 1):
            result = self._backend.reload()
            self.log.info(
                "admin: policy reloaded from {source}, {n} leg(s) removed",
                source=result.source,
                n=len(result.removed),
            )
            return self._json(
                request,
                200,
                {"source": result.source, "removed": list(result.removed),
                 "dialing": list(result.dialing)},
            )  # fmt: skip
        if route == ("POST", "drain", 1):
            self._backend.drain()
            self.log.info("admin: draining, new joins refused")
            return self._json(request, 202, {"draining": True})
        if rest[0] in ("rooms", "reload", "drain"):
            raise AdminError(405, "method not allowed")
        raise AdminError(404, "no such resource")

    def _dial_out(self, request: Request, room: str) -> bytes:
        body = self._body(request)
        uri = body.get("uri")
        if not isinstance(uri, str) or not uri.startswith(("sip:", "sips:")) or len(uri) > 512:
            raise AdminError(400, 'the body needs "uri": a sip: or sips: URI')
        self._backend.dial_out(room, uri)
        self.log.info("admin: dial-out of {uri} into {room}", uri=uri, room=room)
        return self._json(request, 202, {"room": room, "uri": uri, "status": "dialing"})

    def _remove(self, request: Request, room: str, who: str) -> bytes:
        args = request.args or {}
        reason_values = args.get(b"reason") or [b"removed by the operator"]
        reason = reason_values[0].decode("utf-8", "replace")[:100]
        removed = self._backend.remove(room, who, reason)
        if not removed:
            raise AdminError(404, "no such participant in the room")
        self.log.info("admin: removed {who} from {room}", who=who, room=room)
        return self._json(request, 200, {"room": room, "removed": removed})


def admin_site(
    backend: AdminBackend,
    token: str,
    *,
    metrics: FocusMetrics | None = None,
    metrics_need_token: bool = False,
) -> Site:
    """The admin API as a ``Site`` for ``reactor.listenTCP(port, site, interface=host)``.
    Requests are not logged by twisted.web's access log (it would show paths only, but
    the admin resource logs its actions itself)."""
    resource = AdminResource(backend, token, metrics=metrics, metrics_need_token=metrics_need_token)
    site = Site(resource)  # type: ignore[no-untyped-call]
    site.displayTracebacks = False
    site.noisy = False
    return site
