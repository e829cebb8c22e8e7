"""Sans-IO SIP (RFC 3261): grammar, messages, framing, transactions, dialogs, a UA core.

Nothing here does I/O, reads the clock or draws random bytes: time (``now``, seconds as a
float) and a random byte source are parameters.  The Twisted transports live in
:mod:`focus.adapters.sip_transport`.

Layers, bottom to top
---------------------
``uri``          :class:`SipURI` / :class:`TelURI` / :class:`AbsoluteURI`, :func:`parse_uri`,
                 :func:`uri_equal` (§19.1.4), :class:`Parameters`.
``headers``      :class:`Address` (name-addr/addr-spec), :class:`Via`, :class:`CSeq`;
                 each with ``parse()`` and ``__str__`` as inverses.
``message``      :class:`Request`, :class:`Response` (frozen attrs, change with
                 ``attrs.evolve`` or ``with_headers``/``with_body``), :class:`Headers`,
                 :func:`parse_message` (one datagram), :func:`check_request` (§8.1.1), limits.
``framing``      :class:`StreamParser` (TCP/TLS, Content-Length framing, bounded),
                 :func:`parse_datagram`.
``transaction``  :class:`ClientTransaction`, :class:`ServerTransaction` (§17 + RFC 6026)
                 as state tables; timers A-M are deadlines (``tx.deadline``, ``on_timer``).
``dialog``       :class:`Dialog` (§12): route set, remote target, CSeq rules.
``resolve``      RFC 3263 basics: :func:`plan_resolution`, :class:`Resolve`, SRV ordering.
``ua``           :class:`UserAgent`, the endpoint core, and :class:`Application`, the
                 interface the conference logic implements.
``errors``       :class:`SipError` and subclasses; each carries ``status``/``reason``.

Plugging an application in
--------------------------
Subclass :class:`Application`::

    class Room(Application):
        methods = frozenset({"MESSAGE"})          # handled besides INVITE/ACK/BYE/CANCEL/OPTIONS

        def serves(self, uri):                    # Request-URIs we answer (else 404)
            return uri.user == "lobby"

        def on_request(self, incoming, now):      # INVITE, re-INVITE, MESSAGE, ...
            incoming.respond(180, now=now)
            incoming.respond(200, now=now, body=answer_sdp, content_type="application/sdp")
            # incoming.dialog is now the confirmed Dialog; the 2xx is retransmitted
            # until the ACK (§13.3.1.4); after 64*T1 without ACK the core sends BYE.

        def on_ack(self, dialog, ack, now): ...
        def on_cancel(self, incoming, now): ...   # 487 already sent
        def on_dialog_terminated(self, dialog, reason, now): ...   # "bye", "no-ack", ...

``respond`` may also be called later (after a KMS lookup): the adapter is woken up and
sends.  The core answers by itself: OPTIONS (200 + Allow/Accept/Supported), CANCEL,
BYE, and the §8.2 errors 400 (with Warning), 404, 405, 415, 416, 420, 481, 482, 483, 501.

Sending requests (UAC)
----------------------
::

    out = ua.invite("sip:alice@192.0.2.1", from_="<sip:lobby@conf.example.net>",
                    body=offer_sdp, now=now, handler=on_response)
    def on_response(out, response):   # every 1xx and the final response; a timeout or
        ...                           # transport error arrives as a synthesized 408/503
    # A 2xx creates out.dialog and is ACKed by the core (§13.2.2.4).
    out.cancel(now)                                  # §9.1 CANCEL
    ua.send_in_dialog(out.dialog, "NOTIFY", now, handler, body=b"...", content_type="...")
    ua.bye(out.dialog, now)
    ua.send_request(ua.new_request("OPTIONS", "sip:x@y", from_="<sip:f@z>"), now, handler)

Requests arriving inside a dialog the UAC created (re-INVITE, NOTIFY, ...) reach
``Application.on_request`` with ``incoming.dialog`` set.

Driving the core (what an adapter does)
---------------------------------------
``ua.datagram_received(data, source, now)``, ``ua.connection_data(conn, data, now)``,
``ua.connection_lost(conn, now)``, ``ua.transport_error(target, now)``,
``ua.resolved(query_id, targets, now)``, ``ua.on_timer(now)``; then ``ua.drain()`` gives
``Send(data, target)``, ``CloseConnection(target)`` and ``Resolve(...)`` commands and
``ua.next_deadline()`` the time to call ``on_timer``.  See
:class:`focus.adapters.sip_transport.SipStack` for the Twisted version::

    stack = SipStack(reactor, UAConfig(host="192.0.2.10", listen=()), Room(), os.urandom)
    stack.listen_udp(5060, "192.0.2.10")
    yield stack.listen_tcp(5060, "192.0.2.10")
    yield stack.listen_tls(5061, "192.0.2.10", cert_path="focus.pem", key_path="focus.key")
    stack.ua.invite(...)      # use the core through stack.ua with now=stack.now()
    yield stack.stop()

Known limits (deliberate): no NAPTR (transport from the URI, §4.1 fallback), no failover
to a second SRV target, no early dialogs on the UAC side (dialogs start at the 2xx), no
PRACK/100rel, no authentication, Date is never interpreted (RFC 4475 §3.1.2.12).
"""

from .dialog import Dialog, DialogId, DialogState
from .errors import (
    BadRequest,
    MessageTooLarge,
    ProtocolError,
    ServiceUnavailable,
    SipError,
    SipParseError,
    UnsupportedScheme,
    VersionNotSupported,
)
from .framing import StreamError, StreamParser, parse_datagram
from .headers import Address, CSeq, Via
from .message import Headers, Limits, Request, Response, check_request, parse_message
from .resolve import Resolve, plan_resolution
from .transaction import ClientTransaction, ServerTransaction, Target, TimerConfig
from .ua import (
    Application,
    CloseConnection,
    IncomingRequest,
    OutgoingRequest,
    Send,
    UAConfig,
    UserAgent,
    make_response,
)
from .uri import AbsoluteURI, Parameters, SipURI, TelURI, parse_uri, uri_equal

__all__ = [
    "AbsoluteURI",
    "Address",
    "Application",
    "BadRequest",
    "CSeq",
    "ClientTransaction",
    "CloseConnection",
    "Dialog",
    "DialogId",
    "DialogState",
    "Headers",
    "IncomingRequest",
    "Limits",
    "MessageTooLarge",
    "OutgoingRequest",
    "Parameters",
    "ProtocolError",
    "Request",
    "Resolve",
    "Response",
    "Send",
    "ServerTransaction",
    "ServiceUnavailable",
    "SipError",
    "SipParseError",
    "SipURI",
    "StreamError",
    "StreamParser",
    "Target",
    "TelURI",
    "TimerConfig",
    "UAConfig",
    "UnsupportedScheme",
    "UserAgent",
    "VersionNotSupported",
    "Via",
    "check_request",
    "make_response",
    "parse_datagram",
    "parse_message",
    "parse_uri",
    "plan_resolution",
    "uri_equal",
]
