"""MIKEY (RFC 3830) and MIKEY-TICKET (RFC 6043): codec, key derivation, exchanges.

Pure: depends on attrs and cryptography only. Time and random bytes are parameters.

Modules: :mod:`mikey.payloads` (binary codec of every payload and message; a decoded
``Message`` keeps its raw bytes and payload spans for MAC coverage),
:mod:`mikey.crypto` (PRF, derivations, AES-CM, AES-KW, MACs), :mod:`mikey.exchanges`
(the MIKEY-TICKET messages of PROFILE.md as builders and verifiers; its docstring lists
payload order and MAC coverage per message), :mod:`mikey.ticket` (RFC 6043 Appendix A
base ticket), :mod:`mikey.replay` (bounded replay cache, strict and keep-newest),
:mod:`mikey.forking` (Initiator Data, RFC 6043 §6.10), :mod:`mikey.ntp` (timestamps),
:mod:`mikey.errors` (one error family; ``err_code`` is the MIKEY ERR to answer with).

Everything re-exported here is the stable API other packages use (MIKEY-API.md).
"""

from mikey.crypto import SUITE_128, SUITE_256, Suite
from mikey.errors import (
    AuthenticationError,
    DecodeError,
    ErrCode,
    MikeyError,
    PolicyError,
    ReplayError,
    TimestampError,
)
from mikey.exchanges import (
    DEFAULT_MAX_SKEW,
    PROFILE_FLAGS,
    TLS_PROT_TYPE,
    MikeyErrorMessage,
    RequestInit,
    ResolvedTicket,
    ResolveInit,
    TicketGrant,
    TransferInit,
    TransferResp,
    build_error,
    build_error_for,
    build_request_init,
    build_request_resp,
    build_resolve_init,
    build_resolve_resp,
    build_transfer_init,
    build_transfer_resp,
    check_transfer_init_profile,
    derive_mpki,
    derive_mpkr,
    derive_tls_psk,
    peek_request_init,
    peek_resolve_init,
    peek_transfer_init,
    read_error,
    read_request_resp,
    read_resolve_resp,
    request_policy,
    verify_request_init,
    verify_resolve_init,
    verify_transfer_init,
    verify_transfer_resp,
)
from mikey.payloads import TicketFlags, TicketPolicy
from mikey.replay import ReplayCache, ReplayPolicy, replay_key
from mikey.ticket import BaseTicketContents, base_ticket_psk_id, open_base_ticket, seal_base_ticket

__all__ = [
    "DEFAULT_MAX_SKEW",
    "PROFILE_FLAGS",
    "SUITE_128",
    "SUITE_256",
    "TLS_PROT_TYPE",
    "AuthenticationError",
    "BaseTicketContents",
    "DecodeError",
    "ErrCode",
    "MikeyError",
    "MikeyErrorMessage",
    "PolicyError",
    "ReplayCache",
    "ReplayError",
    "ReplayPolicy",
    "RequestInit",
    "ResolveInit",
    "ResolvedTicket",
    "Suite",
    "TicketFlags",
    "TicketGrant",
    "TicketPolicy",
    "TimestampError",
    "TransferInit",
    "TransferResp",
    "base_ticket_psk_id",
    "build_error",
    "build_error_for",
    "build_request_init",
    "build_request_resp",
    "build_resolve_init",
    "build_resolve_resp",
    "build_transfer_init",
    "build_transfer_resp",
    "check_transfer_init_profile",
    "derive_mpki",
    "derive_mpkr",
    "derive_tls_psk",
    "open_base_ticket",
    "peek_request_init",
    "peek_resolve_init",
    "peek_transfer_init",
    "read_error",
    "read_request_resp",
    "read_resolve_resp",
    "replay_key",
    "request_policy",
    "seal_base_ticket",
    "verify_request_init",
    "verify_resolve_init",
    "verify_transfer_init",
    "verify_transfer_resp",
]
