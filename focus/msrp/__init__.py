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
    ``close_connection=True`` when framing is lost (then stays broken).  A ``BadFrame``
    (``transaction_id``, ``method`` or ``None`` for a response, ``error``, recovered
    ``to_path``/``from_path``/``failure_report``) is a frame skipped up to its end-line.
``MsrpConfig(...)``
    Every bound and timer (start line, header line/count/bytes, chunk size, message size,
    pending messages, transaction timeout 30 s, chunk reception timeout 540 s, outgoing
    chunk size, send window, id randomness, extension methods such as NICKNAME).
``new_ident(random)``, ``pick_transaction_id(body, random)``, ``split_message(body,
chunk_size)``, ``Reassembly(message_id, limit).add(byte_range, body, flag, content_type)``
    Identifiers, chunking (``a-*/total`` above 2048 octets) and last-received-wins
    reassembly (RFC 4975 §7.1.1, §7.3.1).

Errors
------
``MsrpError(reason, status=..., close_connection=...)`` is the root; subclasses carry their
status: ``MsrpParseError`` 400, ``MsrpForbidden`` 403, ``MsrpRecipientNotFound`` 404,
``MsrpTimeout`` 408, ``MsrpLimitExceeded`` 413, ``MsrpUnsupportedMediaType`` 415,
``MsrpNicknameMalformed`` 424, ``MsrpNicknameInUse`` 425,
``MsrpPrivateMessagesUnsupported`` 428, ``MsrpSessionUnknown`` 481,
``MsrpMethodNotSupported`` 501, ``MsrpSessionBoundElsewhere`` 506.
"""

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
)
from .parser import BadFrame, FrameParser
from .uri import MsrpUri, format_path, parse_path

__all__ = [
    "INTERRUPTIBLE_THRESHOLD",
    "NON_SEND_BODY_LIMIT",
    "BadFrame",
    "ByteRange",
    "Chunk",
    "Continuation",
    "FailureReport",
    "Frame",
    "FrameParser",
    "Header",
    "MsrpConfig",
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
    "RandomSource",
    "Reassembly",
    "Request",
    "Response",
    "Status",
    "end_line",
    "format_path",
    "is_ident",
    "new_ident",
    "parse_path",
    "pick_transaction_id",
    "split_message",
]
