"""Sans-IO MSRP (RFC 4975), CPIM (RFC 3862) and chat-room rules (RFC 7701).

Nothing here does I/O, reads the clock or draws random bytes: bytes, ``now`` (seconds,
any monotonic origin) and a ``random(n) -> bytes`` source are passed in; commands come out.

Values and codecs
-----------------
``MsrpUri.parse(text)`` / ``str(uri)``
    ``msrp[s]://[userinfo@]host[:port][/session-id];transport[;params]``; ``==``/``hash``
    follow RFC 4975 §6.1 (scheme, host case-insensitive; ports, session-id exact;
    transport case-insensitive; userinfo and other params ignored).
``parse_path(text) -> tuple[MsrpUri, ...]`` / ``format_path(path) -> str``
    To-Path/From-Path values and SDP ``a=path`` values.
``Request`` / ``Response`` (frozen attrs, ``.encode() -> bytes``)
    ``Request(transaction_id, method, to_path, from_path, message_id=None, byte_range=None,
    success_report=None, failure_report=None, status=None, content_type=None, headers=(),
    body=None, continuation=Continuation.COMPLETE)``; ``body=None`` is body-less,
    ``b""`` an empty body.  ``Response(transaction_id, code, to_path, from_path,
    comment=None, headers=())``.  ``ByteRange(start, end|None, total|None)``,
    ``Status(code, comment=None, namespace=0)``, ``FailureReport.YES/NO/PARTIAL``,
    ``Continuation.COMPLETE/MORE/ABORT`` (``$``/``+``/``#``).
``FrameParser(config=MsrpConfig()).feed(data) -> list[Request | Response | BadFrame]``
    Incremental, bounded, split-anywhere safe.  Raises ``MsrpError`` with
    ``close_connection=True`` when framing is lost (then stays broken); if frames were
    completed earlier in the same call they are returned and the error is in
    ``parser.error`` (check it after each ``feed``; the next call raises it).  A ``BadFrame``
    (``transaction_id``, ``method`` or ``None`` for a response, ``error``, recovered
    ``to_path``/``from_path``/``failure_report``/``message_id``) is a frame skipped up to
    its end-line.
``MsrpConfig(...)``
    Every bound and timer (start line, header line/count/bytes, chunk size, message size,
    pending messages, transaction timeout 30 s, chunk reception timeout 540 s, outgoing
    chunk size, send window, id randomness, extension methods such as NICKNAME).
``new_ident(random)``, ``pick_transaction_id(body, random)``, ``split_message(body,
chunk_size)``, ``Reassembly(message_id, limit).add(byte_range, body, flag, content_type)``
    Identifiers, chunking (``a-*/total`` above 2048 octets) and last-received-wins
    reassembly (RFC 4975 §7.1.1, §7.3.1).

Sessions and the connection core
--------------------------------
``SessionParams(local_uri, peer_path, accept_types=("*",), accept_wrapped_types=(),
peer_accept_types=("*",), peer_accept_wrapped_types=(), peer_max_size=None)``
    One negotiated session (from SDP).  ``SessionRegistry`` (shared by every connection of
    an endpoint): ``add(params)``, ``remove(local_uri)``, ``lookup(uri)``,
    ``bind(uri, connection_id)`` (481/506), ``unbind_connection(connection_id)``.
``MsrpConnection(registry=, random=, connection_id=None, config=None, auto_accept=False,
expected=None)``
    One per transport connection; ``expected`` = the session URIs this connection may
    bind (a passive TLS-PSK leg passes its one session: no connection sharing, 481).
    Inputs, each returning ``list[Command]``:
    ``open_session(params, now)`` (active side: bind + empty SEND, RFC 4975 §5.4),
    ``receive_data(data, now)``, ``handle_timeout(now)``, ``connection_lost(now)``,
    ``send_message(local_uri, content_type, body, now, *, message_id=None,
    success_report=False, failure_report=FailureReport.YES, headers=(), notify_sent=True)
    -> (message_id, commands)``, ``abort_message(message_id, now)``,
    ``send_request(local_uri, method, now, *, headers=(), content_type=None, body=None)
    -> (transaction_id, commands)``
    (NICKNAME), ``respond(transaction_id, code, now, comment=None)`` (answer a
    ``MessageReceived``/``RequestReceived`` with ``needs_answer``), ``report(message,
    code, now, *, comment=None, content_type=None, body=None)`` (success/failure REPORT
    when the message's report headers allow).  ``next_deadline()``, ``sessions``,
    ``closed``.
    Commands for the adapter: ``SendBytes(data)``, ``CloseConnection(error)``,
    ``ArmTimer(deadline | None)``.  Events for the application: ``SessionBound``,
    ``MessageReceived`` (``local_uri, message_id, content_type, body, transaction_id,
    from_path, success_report, failure_report, needs_answer, headers``),
    ``RequestReceived(local_uri, request)``, ``MessageAborted``, ``ReportReceived``,
    ``TransactionCompleted``, ``TransactionFailed`` (408 on timeout or lost connection),
    ``MessageSent``, ``MessageFailed``, ``FrameRejected`` (log only).
    Adapter loop: feed bytes → write every ``SendBytes`` in order → on
    ``CloseConnection`` close the transport → keep one timer at the last ``ArmTimer``
    deadline and call ``handle_timeout(now)`` when it fires → on connectionLost call
    ``connection_lost(now)``.
``MediaType.parse``, ``accepts(format_list, content_type)``, ``is_cpim(content_type)``
    accept-types matching with ``*`` and ``type/*`` (RFC 4975 §8.6).

CPIM (RFC 3862)
---------------
``CpimMessage.parse(body)`` / ``.encode()`` (exact bytes kept: ``header_block``,
``entity_header_block``, ``content``); views ``headers`` (``CpimHeader(name, value,
params)``), ``from_``/``to``/``cc`` (``CpimAddress(uri, formal_name)``), ``datetime``,
``subjects``, ``namespaces``, ``required``, ``content_type`` (the wrapped type),
``values(name)``.  ``CpimMessage.build(from_=, to=, content_type=, content=, cc=(),
datetime=None, subject=None, ns=(), require=(), extra_headers=(), entity_headers=())``.
``CpimAddress.named(uri, name)`` quotes a human name when needed (``display_name`` reads
it back); ``quote(text)`` / ``unescape(value)`` apply / undo RFC 3862 §2.3 escapes.

RFC 7701 switch decisions (pure; raise the MsrpError to answer with)
--------------------------------------------------------------------
``ChatRoom(uri, max_message_size=None, private_messages=True, nicknames=True,
reserved_nicknames=frozenset())``, ``Participant(key, uris, accept_types=("message/cpim",),
accept_wrapped_types=(), private_messages=False, nickname=None)``.
``route_message(room, sender, participants, content_type, body, *, equal=same_uri) ->
Route(private, cpim, deliveries: tuple[Delivery(key, content_type, body, unwrapped)],
skipped)``: 413/415/400/403/404/428 as RFC 7701 §6 says.
``decide_nickname(room, user, use_nickname_header_value, in_use: {nickname_key: owner},
*, equal=same_uri) -> NicknameDecision(nickname | None, key | None)``: 403/424/425.
``report_wrapper(original_cpim) -> (content_type, body)`` for REPORTs about private
messages (§6.2).  ``parse_use_nickname(value)``, ``nickname_key(nickname)`` (NFC + casefold + space
trimming: simplified RFC 7700), ``same_uri(a, b)``.

Relay flow for the conference (RFC 7701 §6)
-------------------------------------------
On ``MessageReceived`` from a participant's connection: ``route = route_message(room,
sender, roster, ev.content_type, ev.body)``; for each ``Delivery`` call the recipient
connection's ``send_message(its_local_uri, d.content_type, d.body, now,
failure_report=FailureReport.PARTIAL, notify_sent=False)`` (new Message-ID and
transaction ids per copy; §6.3 lets the switch pick the copies' report model: partial
means recipients answer errors only, so no 200 is parsed per copy, and a one-chunk
copy takes the pre-encoded fast path; recipients' REPORTs are not forwarded); then
``conn.respond(ev.transaction_id, 200, now)``.  If ``route_message`` raises
``MsrpError`` as ``exc``: ``conn.respond(ev.transaction_id, exc.status, now,
exc.reason)`` (Failure-Report decides whether anything is sent).  On
``RequestReceived`` with method NICKNAME: ``decide_nickname(...)`` → 200 or the error's
status.

Errors
------
``MsrpError(reason, status=..., close_connection=...)`` is the root; subclasses carry their
status: ``MsrpParseError`` 400, ``MsrpForbidden`` 403, ``MsrpRecipientNotFound`` 404,
``MsrpTimeout`` 408, ``MsrpLimitExceeded`` 413, ``MsrpUnsupportedMediaType`` 415,
``MsrpNicknameMalformed`` 424, ``MsrpNicknameInUse`` 425,
``MsrpPrivateMessagesUnsupported`` 428, ``MsrpSessionUnknown`` 481,
``MsrpMethodNotSupported`` 501, ``MsrpSessionBoundElsewhere`` 506.
"""

from .chatroom import (
    ChatRoom,
    Delivery,
    NicknameDecision,
    Participant,
    Route,
    decide_nickname,
    nickname_key,
    parse_use_nickname,
    report_wrapper,
    route_message,
    same_uri,
)
from .chunking import (
    INTERRUPTIBLE_THRESHOLD,
    Chunk,
    RandomSource,
    Reassembly,
    new_ident,
    pick_transaction_id,
    split_message,
)
from .config import MsrpConfig
from .connection import (
    ArmTimer,
    CloseConnection,
    Command,
    FrameRejected,
    MessageAborted,
    MessageFailed,
    MessageReceived,
    MessageSent,
    MsrpConnection,
    ReportReceived,
    RequestReceived,
    SendBytes,
    SessionBound,
    TransactionCompleted,
    TransactionFailed,
)
from .cpim import CpimAddress, CpimHeader, CpimMessage, quote, unescape
from .errors import (
    MsrpError,
    MsrpForbidden,
    MsrpLimitExceeded,
    MsrpMethodNotSupported,
    MsrpNicknameInUse,
    MsrpNicknameMalformed,
    MsrpParseError,
    MsrpPrivateMessagesUnsupported,
    MsrpRecipientNotFound,
    MsrpSessionBoundElsewhere,
    MsrpSessionUnknown,
    MsrpTimeout,
    MsrpUnsupportedMediaType,
)
from .frame import (
    NON_SEND_BODY_LIMIT,
    ByteRange,
    Continuation,
    FailureReport,
    Frame,
    Header,
    Request,
    Response,
    Status,
    end_line,
    is_ident,
    reason_phrase,
)
from .media import MediaType, accepts, is_cpim
from .parser import BadFrame, FrameParser
from .session import SessionParams, SessionRegistry
from .uri import MsrpUri, format_path, parse_path

__all__ = [
    "INTERRUPTIBLE_THRESHOLD",
    "NON_SEND_BODY_LIMIT",
    "ArmTimer",
    "BadFrame",
    "ByteRange",
    "ChatRoom",
    "Chunk",
    "CloseConnection",
    "Command",
    "Continuation",
    "CpimAddress",
    "CpimHeader",
    "CpimMessage",
    "Delivery",
    "FailureReport",
    "Frame",
    "FrameParser",
    "FrameRejected",
    "Header",
    "MediaType",
    "MessageAborted",
    "MessageFailed",
    "MessageReceived",
    "MessageSent",
    "MsrpConfig",
    "MsrpConnection",
    "MsrpError",
    "MsrpForbidden",
    "MsrpLimitExceeded",
    "MsrpMethodNotSupported",
    "MsrpNicknameInUse",
    "MsrpNicknameMalformed",
    "MsrpParseError",
    "MsrpPrivateMessagesUnsupported",
    "MsrpRecipientNotFound",
    "MsrpSessionBoundElsewhere",
    "MsrpSessionUnknown",
    "MsrpTimeout",
    "MsrpUnsupportedMediaType",
    "MsrpUri",
    "NicknameDecision",
    "Participant",
    "RandomSource",
    "Reassembly",
    "ReportReceived",
    "Request",
    "RequestReceived",
    "Response",
    "Route",
    "SendBytes",
    "SessionBound",
    "SessionParams",
    "SessionRegistry",
    "Status",
    "TransactionCompleted",
    "TransactionFailed",
    "accepts",
    "decide_nickname",
    "end_line",
    "format_path",
    "is_cpim",
    "is_ident",
    "new_ident",
    "nickname_key",
    "parse_path",
    "parse_use_nickname",
    "pick_transaction_id",
    "quote",
    "reason_phrase",
    "report_wrapper",
    "route_message",
    "same_uri",
    "split_message",
    "unescape",
]
