"""twisted.web plumbing of the KMS: PROFILE.md section 3 over HTTP.

`POST <base>/request` and `POST <base>/resolve` carry raw MIKEY messages with
`Content-Type: application/mikey` (RFC 3830 section 10.1). This module does only HTTP:
size limit (413), content type (415), status codes and the MIKEY Error body of a
rejection, and one structured log line per request. The MIKEY decisions live behind
the small `TicketEngine` seam (kms._engine implements it with the mikey library).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import attrs
from twisted.logger import Logger
from twisted.web import pages, server
from twisted.web.resource import IResource, Resource

from ._errors import Rejection

__all__ = [
    "MAX_BODY_SIZE",
    "MIKEY_CONTENT_TYPE",
    "BoundedRequest",
    "Reply",
    "TicketEngine",
    "build_resource",
    "build_site",
]

MIKEY_CONTENT_TYPE = b"application/mikey"  # RFC 3830 section 10.1
MAX_BODY_SIZE = 64 * 1024  # PROFILE.md section 3: 413 above 64 KiB

# PROFILE.md section 3: 400 malformed, ERR 12 (unspecified) unless a precise code exists.
_ERR_UNSPECIFIED = 12


@attrs.frozen
class Reply:
    """A successful exchange: the encoded REQUEST_RESP / RESOLVE_RESP and who asked."""

    body: bytes = attrs.field(repr=False)
    identity: str
    detail: str = ""  # short, key-free, for the log line (e.g. "responders=2")


class Clock(Protocol):
    """What the KMS needs of a reactor to read the time (any Clock provides it)."""

    def seconds(self) -> float: ...


class TicketEngine(Protocol):
    """The MIKEY side of the KMS, as the HTTP layer sees it.

    `request` and `resolve` take a request body and the current Unix time and return the
    response, or raise `Rejection` with the HTTP status and MIKEY ERR code to answer.
    `error_message` encodes the MIKEY Error (data type 6) answering the *failed* body
    (RFC 6043 section 5.4: same PRF and CSB ID when they can be read).
    """

    def request(self, body: bytes, *, now: float) -> Reply: ...

    def resolve(self, body: bytes, *, now: float) -> Reply: ...

    def error_message(self, rejection: Rejection, *, failed: bytes, now: float) -> bytes: ...


class BoundedRequest(server.Request):
    """A request that stops buffering its body past MAX_BODY_SIZE.

    twisted.web reads the whole body before rendering; without this a client could make
    the KMS spool any amount to a temporary file. The excess is dropped and the resource
    answers 413.
    """

    body_too_large = False
    _body_received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY_SIZE:
            self.body_too_large = True
            length = 0
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        self._body_received += len(data)
        if self._body_received > MAX_BODY_SIZE:
            self.body_too_large = True
        if not self.body_too_large:
            super().handleContentChunk(data)  # type: ignore[no-untyped-call]


def _media_type(request: server.Request) -> bytes | None:
    value = request.getHeader(b"content-type")
    if value is None:
        return None
    return value.split(b";", 1)[0].strip().lower()


class _Node(Resource):
    """A path segment on the way to the operations; anything else is 404."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def getChild(self, path: bytes, request: server.Request) -> IResource:
        return pages.notFound()

    def render(self, request: server.Request) -> bytes:
        page: Any = pages.notFound()  # an IResource; zope interfaces do not type-check
        return cast(bytes, page.render(request))


class _Operation(Resource):
    """One KMS operation (`request` or `resolve`); POST only."""

    isLeaf = True
    log = Logger()

    def __init__(self, operation: str, engine: TicketEngine, clock: Clock) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._operation = operation
        self._engine = engine
        self._clock = clock

    def render(self, request: server.Request) -> bytes:
        if request.method != b"POST":
            request.setResponseCode(405)
            request.setHeader(b"allow", b"POST")  # type: ignore[no-untyped-call]
            request.setHeader(b"content-type", b"text/plain")  # type: ignore[no-untyped-call]
            return b"POST only\n"
        return self.render_POST(request)

    def render_POST(self, request: server.Request) -> bytes:
        started = self._clock.seconds()
        identity = "-"
        rejection: Rejection | None = None
        body = data = b""
        try:
            data = self._read_body(request)
            reply = self._dispatch(data)
        except Rejection as e:
            rejection = e
            identity = e.identity or "-"
        except Exception:
            # A bug, not a client fault: 500 (PROFILE.md section 3: the client may retry),
            # the traceback to the log, nothing about it to the client.
            self.log.failure("kms {operation} failed", operation=self._operation)
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain")  # type: ignore[no-untyped-call]
            return b"internal error\n"
        else:
            identity = reply.identity
        if rejection is None:
            request.setResponseCode(200)
            body = reply.body
            outcome = "ok"
            detail = reply.detail
        else:
            request.setResponseCode(rejection.http_status)
            body = self._engine.error_message(rejection, failed=data, now=self._clock.seconds())
            outcome = "rejected"
            detail = rejection.reason
        request.setHeader(b"content-type", MIKEY_CONTENT_TYPE)  # type: ignore[no-untyped-call]
        request.setHeader(b"cache-control", b"no-store")  # type: ignore[no-untyped-call]
        self.log.info(
            "kms {operation} identity={identity} outcome={outcome} status={status} "
            "err={err} latency_ms={latency_ms} {detail}",
            operation=self._operation,
            identity=identity,
            outcome=outcome,
            status=200 if rejection is None else rejection.http_status,
            err="-" if rejection is None else rejection.err_code,
            latency_ms=round((self._clock.seconds() - started) * 1000.0, 1),
            detail=detail,
            peer=str(request.getClientAddress()),  # type: ignore[no-untyped-call]
        )
        return body

    def _read_body(self, request: server.Request) -> bytes:
        if getattr(request, "body_too_large", False):
            raise Rejection(
                f"body over {MAX_BODY_SIZE} bytes", http_status=413, err_code=_ERR_UNSPECIFIED
            )
        media_type = _media_type(request)
        if media_type != MIKEY_CONTENT_TYPE:
            shown = "none" if media_type is None else media_type.decode("latin-1")[:60]
            raise Rejection(
                f"content type {shown!r}, not application/mikey",
                http_status=415,
                err_code=_ERR_UNSPECIFIED,
            )
        assert request.content is not None
        request.content.seek(0)
        data: bytes = request.content.read(MAX_BODY_SIZE + 1)
        if len(data) > MAX_BODY_SIZE:
            raise Rejection(
                f"body over {MAX_BODY_SIZE} bytes", http_status=413, err_code=_ERR_UNSPECIFIED
            )
        return data

    def _dispatch(self, data: bytes) -> Reply:
        now = self._clock.seconds()
        if self._operation == "request":
            return self._engine.request(data, now=now)
        return self._engine.resolve(data, now=now)


def build_resource(
    engine: TicketEngine, *, clock: Clock, base_path: str = "/mikey-ticket/v1"
) -> IResource:
    """The resource tree: `<base_path>/request` and `<base_path>/resolve` under a root."""
    root = _Node()
    parent = root
    for segment in [s for s in base_path.split("/") if s]:
        child = _Node()
        parent.putChild(segment.encode("utf-8"), cast(IResource, child))
        parent = child
    parent.putChild(b"request", cast(IResource, _Operation("request", engine, clock)))
    parent.putChild(b"resolve", cast(IResource, _Operation("resolve", engine, clock)))
    return cast(IResource, root)


class _KmsSite(server.Site):
    """A Site without twisted.web's access log.

    Every request already logs one structured line (``_Operation.render``: operation,
    identity, outcome, status, latency, peer); the Common Log Format line on top of it
    cost ~6 % of the KMS's CPU per ticket request under load (bench/README.md).
    """

    def log(self, request: object) -> None:
        pass


def build_site(resource: IResource, *, reactor: object, timeout: float = 30.0) -> server.Site:
    """A Site that bounds request bodies and drops idle connections after *timeout*.

    Bodies are application/mikey (PROFILE.md section 3), never HTML forms: twisted.web's
    form parsing (``parsePOSTFormSubmission``) would only parse every request's
    Content-Type through the email package (~9 % of the KMS's CPU) to find no form.
    """
    site = _KmsSite(  # type: ignore[no-untyped-call]
        resource, timeout=timeout, reactor=reactor, parsePOSTFormSubmission=False
    )
    site.requestFactory = BoundedRequest
    site.displayTracebacks = False
    return site
