"""Limits and timers of the MSRP core, one frozen object with sensible defaults.

Every buffer of the parser and of the reassembly is bounded by a value here; every wait
(transaction response, chunk reception) has a timeout here.  The service layer builds one
from the operator's configuration; tests build small ones to exercise the bounds.
"""

from __future__ import annotations

import attrs

__all__ = ["MsrpConfig"]


_positive = attrs.validators.gt(0)


@attrs.frozen
class MsrpConfig:
    """Bounds and timers for :class:`FrameParser` and :class:`MsrpConnection`."""

    #: longest start line, CRLF excluded (``MSRP <32-char id> <code> <comment>``).
    max_start_line: int = attrs.field(default=512, validator=_positive)
    #: longest header line, CRLF excluded (a To-Path may list a few relays).
    max_header_line: int = attrs.field(default=4096, validator=_positive)
    #: most header fields in one request or response, To-Path and From-Path included.
    max_headers: int = attrs.field(default=32, validator=_positive)
    #: total octets of one header section.
    max_header_bytes: int = attrs.field(default=16384, validator=_positive)
    #: largest body of one SEND chunk we accept (larger chunks get 413, RFC 4975 §10.5).
    max_chunk_size: int = attrs.field(default=256 * 1024, validator=_positive)
    #: largest complete message we reassemble (413 above it).
    max_message_size: int = attrs.field(default=1024 * 1024, validator=_positive)
    #: messages being reassembled at the same time on one connection.
    max_pending_messages: int = attrs.field(default=16, validator=_positive)
    #: Message-IDs remembered after a 413 so their later chunks get 413 too.
    max_rejected_remembered: int = attrs.field(default=64, validator=_positive)
    #: requests waiting for the application's ``respond`` (oldest forgotten beyond).
    max_unanswered: int = attrs.field(default=64, validator=_positive)
    #: Message-IDs we sent that later REPORTs may refer to (older REPORTs are ignored).
    max_sent_remembered: int = attrs.field(default=256, validator=_positive)
    #: RFC 4975 §7.1.1: a sender waits 30 s for the response before it gives up (408).
    transaction_timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0.0))
    #: RFC 7701 §6.1 chunk reception timer ("around 540 seconds"), restarted per chunk.
    chunk_reception_timeout: float = attrs.field(default=540.0, validator=attrs.validators.gt(0.0))
    #: body octets per outgoing SEND chunk; chunks above 2048 are sent interruptible.
    chunk_size: int = attrs.field(default=16 * 1024, validator=_positive)
    #: outgoing SEND body octets awaiting a response before we pause a message.
    send_window: int = attrs.field(default=64 * 1024, validator=_positive)
    #: message octets accepted by ``send_message`` but not yet sent (behind the window);
    #: beyond, the connection fails (413): a peer that never answers cannot make us
    #: queue a busy room's messages for ever.
    max_send_queue: int = attrs.field(default=1024 * 1024, validator=_positive)
    #: bytes of randomness in a transaction id or Message-ID (RFC 4975 §7.1: ≥ 64 bits).
    id_random_bytes: int = attrs.field(default=12)
    #: request methods answered by the application rather than with 501 (RFC 7701 §7.1).
    extension_methods: frozenset[str] = frozenset({"NICKNAME"})

    @id_random_bytes.validator
    def _check_id_bytes(self, _attribute: attrs.Attribute[int], value: int) -> None:
        # 8 bytes = 64 bits (RFC 4975 §7.1); 16 bytes hex → 32 chars, the ident maximum.
        if not 8 <= value <= 16:
            raise ValueError("id_random_bytes must be between 8 and 16")
