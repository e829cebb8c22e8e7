"""Dialogs (RFC 3261 §12): identity, route set, remote target and CSeq rules.

A :class:`Dialog` is owned and mutated by the :class:`~focus.sip.ua.UserAgent` core;
applications read it and pass it back to the core to send in-dialog requests.
"""

from __future__ import annotations

import enum

import attrs

from .errors import ProtocolError
from .headers import Address
from .message import Headers, Request, Response
from .uri import URI, SipURI

__all__ = ["Dialog", "DialogId", "DialogState"]


@attrs.frozen
class DialogId:
    """Call-ID, local tag and remote tag (§12)."""

    call_id: str
    local_tag: str
    remote_tag: str


class DialogState(enum.Enum):
    """§12: early (after a 1xx with a tag), confirmed (after 2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Dialog:
    """Dialog state of one side.  Build with :meth:`from_uas` or :meth:`from_uac`."""

    def __init__(
        self,
        *,
        id: DialogId,
        local: Address,
        remote: Address,
        remote_target: URI,
        route_set: list[Address],
        local_seq: int,
        remote_seq: int | None,
        secure: bool,
        is_uas: bool,
        local_contact: Address,
        state: DialogState = DialogState.CONFIRMED,
    ) -> None:
        self.id = id
        self.local = local  # our From (UAC) / To (UAS), with our tag
        self.remote = remote
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.secure = secure
        self.is_uas = is_uas
        self.local_contact = local_contact
        self.state = state
        # The INVITE whose 2xx created the dialog (for ACK and 2xx bookkeeping).
        self.invite_cseq: int | None = None

    def __repr__(self) -> str:
        return f"<Dialog {self.id.call_id} {self.state.value} uas={self.is_uas}>"

    @classmethod
    def from_uas(cls, request: Request, response: Response, local_contact: Address) -> Dialog:
        """§12.1.1: the UAS side, from the request and the 2xx (or 1xx) we sent."""
        to = response.to
        if to.tag is None:
            raise ProtocolError("a dialog-creating response needs a To tag")
        from_ = request.from_
        contacts = request.contacts
        # §8.1.1.8 makes Contact mandatory in an INVITE; RFC 2543 peers (RFC 4475 §3.4.1)
        # may omit it, and then the From URI is the best remote target there is.
        remote_target = contacts[0].uri if contacts else from_.uri
        return cls(
            id=DialogId(request.call_id, to.tag, from_.tag or ""),
            local=to,
            remote=from_,
            remote_target=remote_target,
            route_set=request.record_routes,  # §12.1.1: in order, no reversal
            local_seq=0,  # §12.1.1: empty; we start at 0 and pick a random-free 1
            remote_seq=request.cseq.seq,
            secure=isinstance(request.uri, SipURI) and request.uri.secure,
            is_uas=True,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the UAC side, from our request and the 2xx (or 1xx with tag)."""
        to = response.to
        contacts = response.contacts
        return cls(
            id=DialogId(request.call_id, request.from_.tag or "", to.tag or ""),
            local=request.from_,
            remote=to,
            remote_target=contacts[0].uri if contacts else request.uri,
            route_set=list(reversed(response.record_routes)),  # §12.1.2: reversed
            local_seq=request.cseq.seq,
            remote_seq=None,
            secure=isinstance(request.uri, SipURI) and request.uri.secure,
            is_uas=False,
            local_contact=request.contacts[0] if request.contacts else request.from_,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )

    def next_cseq(self) -> int:
        """§12.2.1.1: the local sequence number increases by one per new request."""
        self.local_seq += 1
        return self.local_seq

    def request_uri_and_routes(self) -> tuple[URI, list[str]]:
        """§12.2.1.1: Request-URI and Route values for a new in-dialog request
        (loose routing when the first route has ``lr``; strict routing otherwise)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if isinstance(first.uri, SipURI) and first.uri.lr:
            return self.remote_target, [str(r) for r in self.route_set]
        uri = first.uri
        if isinstance(uri, SipURI):
            uri = attrs.evolve(uri, headers=(), params=uri.params.remove("method"))
        routes = [str(r) for r in self.route_set[1:]] + [f"<{self.remote_target}>"]
        return uri, routes

    def build_request(
        self, method: str, via: str, *, cseq: int | None = None, extra: Headers | None = None
    ) -> Request:
        """A new request within the dialog (§12.2.1.1).  ACK and CANCEL pass ``cseq``."""
        uri, routes = self.request_uri_and_routes()
        seq = cseq if cseq is not None else self.next_cseq()
        headers = Headers.of(
            [
                ("Via", via),
                ("Max-Forwards", 70),
                *[("Route", r) for r in routes],
                ("From", self.local),
                ("To", self.remote),
                ("Call-ID", self.id.call_id),
                ("CSeq", f"{seq} {method}"),
                ("Contact", f"<{self.local_contact.uri}>"),
            ]
        )
        if extra is not None:
            headers = Headers((*headers.fields, *extra.fields))
        return Request(method=method, uri=uri, headers=headers)

    def check_remote_cseq(self, request: Request) -> bool:
        """§12.2.2: a request with a lower CSeq than the last one is out of order (500);
        otherwise remember it.  ACK and CANCEL reuse the INVITE's number."""
        seq = request.cseq.seq
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq <= self.remote_seq:
            # Equal numbers are retransmissions, which the transaction layer absorbs;
            # a new transaction with the same number is out of order as well.
            return False
        self.remote_seq = seq
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """§12.2: target-refresh requests and their 2xx update the remote target."""
        contacts = message.contacts
        if contacts:
            self.remote_target = contacts[0].uri
