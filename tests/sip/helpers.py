"""Shared builders for SIP tests."""

from __future__ import annotations

from focus.sip.message import Headers, Request, Response
from focus.sip.uri import SipURI


def make_request(
    method: str = "INVITE",
    branch: str = "z9hG4bKabc",
    *,
    via_host: str = "192.0.2.1:5060",
    to_tag: str | None = None,
    cseq: int = 1,
    call_id: str = "call-1@192.0.2.1",
    uri: str = "sip:room@127.0.0.1",
    body: bytes = b"",
) -> Request:
    to = "<sip:room@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers.of(
        [
            ("Via", f"SIP/2.0/UDP {via_host};branch={branch}"),
            ("Max-Forwards", 70),
            ("From", "<sip:alice@example.net>;tag=from1"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", "<sip:alice@192.0.2.1:5060>"),
        ]
    )
    return Request(method=method, uri=SipURI.parse(uri), headers=headers, body=body)


def make_response(
    request: Request, status: int, reason: str = "X", to_tag: str | None = None
) -> Response:
    h = request.headers
    to = h.get("To") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    headers = Headers.of(
        [
            *[("Via", v) for v in h.lines("Via")],
            ("From", h.get("From")),
            ("To", to),
            ("Call-ID", h.get("Call-ID")),
            ("CSeq", h.get("CSeq")),
        ]
    )
    return Response(status=status, reason=reason, headers=headers)
