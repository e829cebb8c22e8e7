"""The MIKEY-TICKET exchanges (RFC 6043 §4.2) as pure builders and verifiers.

Everything follows ``spec/PROFILE.md``; times are Unix seconds (``now``) and random
values and CSB IDs are parameters. Builders return the encoded message; verifiers
raise a :class:`~mikey.errors.MikeyError` subclass (never return False) and return a
frozen result. ``peek_*`` functions decode without verifying (the KMS needs the
identities to find the key). Every message carries a fresh T, TS type NTP-UTC 64-bit
(PROFILE §2). "Without MAC" below means: the message as sent minus the MAC field only
(V's Next and Auth alg bytes are covered), RFC 6043 §5.5.

Ticket Request (PROFILE §4, RFC 6043 §4.2.1)
    REQUEST_INIT_PSK (11): HDR(V=1, #CS=0, Empty map), T, RANDRi, IDRi, IDRkms, TP,
    [IDRpsk], V. Keys from the PSK, label type 0x01 with RANDRi, no RANDRr (§5.1.2).
    MAC over: message without MAC || ID Data(IDRi) || ID Data(IDRkms). Received without
    IDRkms (§4.2.1.1 MAY) the KMS's configured identity takes its place in the MAC input.
    TP: ticket type 1/1/1, PRF of the suite, flags D E F G H N O, TP Data =
    IDRi, TRe (NTP-UTC), KEMAC(NULL/NULL: one zero TGK of the suite's key length, KV SPI
    0x00000000), IDRr per responder (§6.10).

    REQUEST_RESP (13): HDR(copied, V=0), T, IDRkms, TICKET, KEMAC, V. Keys from the PSK,
    label type 0x02 with RANDRi of the request. KEMAC (AES-CM, NULL MAC) = E(encr_key,
    MPKi (type 6) || TGK (type 0)), both with KV SPI = the TGK's SPI; IV from salt_key,
    CSB ID and the T of the REQUEST_RESP (RFC 3830 §4.2.3).
    MAC over: message without MAC || the complete REQUEST_INIT.

Ticket Transfer (PROFILE §5, RFC 6043 §4.2.2)
    TRANSFER_INIT (14): HDR(V = the ticket's F flag, fresh CSB ID, GENERIC-ID map: per
    CS ID, Prot type TLS (241), S=0, #P=0, no session data, SPI = TGK SPI), T, RANDRi,
    IDRi, IDRr, TICKET, GEN_EXT(type 1 "SDP IDs"), V. Keys from MPKi, label type 0x01
    with RANDRi. MAC over: message without MAC and without the TICKET's Initiator Data
    length and Initiator Data || ID Data(IDRi) || ID Data(IDRr).

    TRANSFER_RESP (15): HDR(V=0, same CSB ID, same CSs with #P=1 naming policy 0 and the
    SPI), T, RANDRr, IDRr, SP(policy 0, Prot type TLS, no parameters), GEN_EXT("SDP
    IDs"), V. Keys from MPKi, label type 0x02 with RANDRi and RANDRr (G=1).
    MAC over: message without MAC || the complete TRANSFER_INIT.

Ticket Resolve (PROFILE §6, RFC 6043 §4.2.3)
    RESOLVE_INIT_PSK (16): HDR(V=1, #CS=0, Empty map), T, RANDRr, IDRr, IDRkms, TICKET
    (unchanged from TRANSFER_INIT), [IDRpsk], V. Keys from the PSK, label type 0x01
    with RANDRr only (§5.1.2: RANDRi is not part of the resolve exchange).
    MAC over: message without MAC || ID Data(IDRr) || ID Data(IDRkms) (the configured KMS
    identity when IDRkms was left out, §4.2.3.1).

    RESOLVE_RESP (18): HDR(copied, V=0), T, IDRkms, KEMAC, IDRr, V. Keys from the PSK,
    label type 0x02 with RANDRr only. KEMAC as in REQUEST_RESP (IV from the RESOLVE_RESP
    T). MAC over: message without MAC || the complete RESOLVE_INIT.

Error (RFC 6043 §5.4): HDR(data type 6, V=0, version/PRF/CSB ID of the failed message,
#CS=0, Empty map), T (fresh), ERR... — unauthenticated (§5.4 and RFC 3830 §5.1.2: an
Error SHOULD NOT be authenticated after an authentication failure); receivers treat it
as a hint.

TLS PSK (PROFILE §7): TEK = PRF(TGK, 0x2AD01C64 || CS ID || 0xFFFFFFFF || 0x03 ||
len RANDRi || RANDRi || len RANDRr || RANDRr), 16 bytes (32 with the 256-bit suite).

Choices PROFILE.md leaves open, pinned here: TRe is TS type 0 (NTP-UTC 64-bit); MPKi
carries the TGK's SPI; the TP's announced TGK carries KV SPI with four zero bytes;
REQUEST_RESP and RESOLVE_RESP include IDRkms whenever the KMS passes its identity.

Where PROFILE.md and the RFCs read differently (PROFILE wins here, noted per place):

- HDR V flag: RFC 6043 §6.1 says V MUST be 0 except in CSB-update TRANSFER_INITs, while
  §4.2.1.1/§4.2.3.1 set V=1 in REQUEST_INIT/RESOLVE_INIT and §4.2.2.1 ties TRANSFER_INIT's
  V to the F flag. We send per §4 (PROFILE) and ignore V on receipt.
- AES-CM IV: RFC 3830 §4.2.3 says "T is the 64-bit timestamp sent by the Initiator";
  MIKEY-TICKET responses carry a fresh T (RFC 6043 §4.2.1.5), and PROFILE §7 pins the T
  of the message carrying the KEMAC (REQUEST_RESP/RESOLVE_RESP's own T).
- GEN_EXT "SDP IDs" is not in RFC 6043's message compositions (§4.2.2); RFC 3830 §6.15
  allows it in any message and RFC 4567 §4.1.4 asks for it. Receivers here accept up to
  four GEN_EXT payloads before V, and also none.
- TLS Prot type 241 is private use (no IANA value, DIGEST §5.4).

Verifiers follow RFC 3830 §5.3: timestamp window, MAC, then (optionally, with
``replay_cache``) the replay check, so only authenticated messages enter the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from mikey import _protection as prot
from mikey.crypto import (
    MAC_NULL,
    SUITE_128,
    SUITE_256,
    Suite,
    derive_message_keys,
    derive_mpki,
    derive_mpkr,
    derive_tek,
    suite_for_prf,
)
from mikey.errors import (
    AuthenticationError,
    DecodeError,
    ErrCode,
    MikeyError,
    PolicyError,
    ReplayError,
    TimestampError,
)
from mikey.ntp import to_ntp64
from mikey.payloads import (
    DataType,
    EmptyMap,
    ErrorPayload,
    GeneralExtension,
    GenericCs,
    GenericIdMap,
    Header,
    Idr,
    IdRole,
    IdType,
    Kemac,
    KeyData,
    KeyType,
    KvSpi,
    Message,
    RandR,
    RandRole,
    SecurityPolicy,
    Ticket,
    TicketFlags,
    TicketPolicy,
    Timestamp,
    TimestampR,
    TsRole,
    TsType,
    Verification,
    encode_key_data,
)
from mikey.replay import ReplayCache
from mikey.ticket import BaseTicketContents, open_base_ticket, seal_base_ticket

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
    "ReplayError",
    "RequestInit",
    "ResolveInit",
    "ResolvedTicket",
    "TicketGrant",
    "TimestampError",
    "TransferInit",
    "TransferResp",
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
    "request_policy",
    "seal_base_ticket",
    "verify_request_init",
    "verify_resolve_init",
    "verify_transfer_init",
    "verify_transfer_resp",
]

DEFAULT_MAX_SKEW = 300.0  # PROFILE §2 (config: mikey.max_clock_skew)
TLS_PROT_TYPE = 241  # PROFILE §5: no IANA value for TLS; private use (config)
SDP_IDS = 1  # GEN_EXT type "SDP IDs" (RFC 3830 Table 6.15, RFC 4567 §4.1.4)
PROFILE_FLAGS = (
    TicketFlags.D
    | TicketFlags.E
    | TicketFlags.F
    | TicketFlags.G
    | TicketFlags.H
    | TicketFlags.N
    | TicketFlags.O
)
_SPI_LEN = 4
_VALIDITY = 3600.0


# ------------------------------------------------------------------------ result types


@attrs.frozen
class RequestInit:
    """A decoded REQUEST_INIT_PSK (verified only when returned by ``verify_request_init``).

    ``kms`` is the IDRkms ID Data, None when IDRkms was left out (RFC 6043 §4.2.1.1).
    """

    initiator: str
    kms: str | None
    responders: tuple[str, ...]
    valid_until: float | None
    timestamp: float
    csb_id: int
    rand: bytes
    suite: Suite
    psk_id: bytes | None
    ticket_policy: TicketPolicy


@attrs.frozen
class TicketGrant:
    """What the initiator learns from REQUEST_RESP (RFC 6043 §4.2.1.6)."""

    ticket: bytes = attrs.field(repr=False)  # TICKET payload value (without Next), opaque
    ticket_policy: TicketPolicy
    mpki: bytes = attrs.field(repr=False)
    tgk: bytes = attrs.field(repr=False)
    spi: bytes
    suite: Suite
    responders: tuple[str, ...]
    valid_until: float | None
    kms: str | None
    timestamp: float


@attrs.frozen
class TransferInit:
    """A decoded TRANSFER_INIT (verified only when returned by ``verify_transfer_init``)."""

    initiator: str
    responder: str
    ticket: bytes = attrs.field(repr=False)
    ticket_policy: TicketPolicy
    crypto_sessions: tuple[GenericCs, ...]
    timestamp: float
    csb_id: int
    rand_i: bytes
    suite: Suite
    sdp_ids: str | None
    has_kemac: bool = False


@attrs.frozen
class ResolveInit:
    """A decoded RESOLVE_INIT_PSK; ``kms`` is None when IDRkms was left out (§4.2.3.1)."""

    responder: str
    kms: str | None
    ticket: bytes = attrs.field(repr=False)
    ticket_policy: TicketPolicy
    timestamp: float
    csb_id: int
    rand_r: bytes
    suite: Suite
    psk_id: bytes | None


@attrs.frozen
class ResolvedTicket:
    """What the responder learns from RESOLVE_RESP (RFC 6043 §4.2.3.6)."""

    mpki: bytes = attrs.field(repr=False)
    tgk: bytes = attrs.field(repr=False)
    spi: bytes
    responder: str | None
    suite: Suite
    timestamp: float


@attrs.frozen
class TransferResp:
    """A verified TRANSFER_RESP."""

    responder: str | None
    rand_r: bytes
    timestamp: float
    csb_id: int
    crypto_sessions: tuple[GenericCs, ...]
    sdp_ids: str | None
    suite: Suite


@attrs.frozen
class MikeyErrorMessage:
    """A decoded Error message (data type 6): a hint, never authenticated."""

    err_codes: tuple[int, ...]
    csb_id: int
    timestamp: float | None
    prf: int


# ----------------------------------------------------------------------------- helpers


def _idr(role: int, value: str) -> Idr:
    return Idr(role, IdType.URI, value.encode("utf-8"))


def _t(now: float) -> Timestamp:
    return Timestamp(TsType.NTP_UTC, to_ntp64(now))


def _v_placeholder(suite: Suite) -> Verification:
    return Verification(suite.auth_alg, bytes(suite.mac_len))


def _uri_of(p: object, what: str) -> str:
    assert isinstance(p, Idr)
    if p.id_type != IdType.URI:
        raise PolicyError(f"{what} identity must be a URI (ID type 1)", ErrCode.INVALID_ID)
    return prot.uri(p.data)


def _sdp_ids(ps: Sequence[object]) -> str | None:
    for p in ps:
        if isinstance(p, GeneralExtension) and p.ext_type == SDP_IDS:
            try:
                return p.data.decode("ascii")
            except UnicodeDecodeError as exc:
                raise DecodeError("SDP IDs are not ASCII") from exc
    return None


def _check_suite_fits(suite: Suite, key: bytes, what: str) -> None:
    if len(key) < 16:
        raise ValueError(f"{what} shorter than 128 bits (RFC 6043 §12.1)")


def _check_rand(rand: bytes) -> None:
    """RFC 3830 §6.11: RAND SHOULD be at least 16 bytes; its length field is 8 bits."""
    if not 16 <= len(rand) <= 255:
        raise ValueError("RAND must be 16..255 bytes (PROFILE §2: 16, or 32 with 256-bit keys)")


def _ticket_value(msg: Message, index: int) -> bytes:
    """The TICKET payload value exactly as received (without its Next field)."""
    start, end = msg.spans[index]
    return msg.raw[start + 1 : end]


def _ticket_index(msg: Message) -> int:
    for i, p in enumerate(msg.payloads):
        if isinstance(p, Ticket):
            return i
    raise PolicyError("TICKET payload missing", ErrCode.INVALID_TICKET)


def _kms_identity(expected: str | None, got: str | None) -> bytes:
    """The KMS identity the MAC of a REQUEST_INIT/RESOLVE_INIT covers (RFC 6043 §5.5).

    IDRkms "MAY be left out when it can be expected that the KMS has a single identity"
    (§4.2.1.1, §4.2.3.1); the identity known by other means — this KMS's configured one,
    ``expected`` — is then still appended to the MAC input (DIGEST §2.19).
    """
    if got is None:
        if expected is None:
            raise PolicyError(
                "IDRkms left out and no KMS identity given to verify with", ErrCode.INVALID_ID
            )
        return expected.encode()
    if expected is not None and expected != got:
        raise PolicyError("the message is addressed to another KMS", ErrCode.INVALID_ID)
    return got.encode()


def _check_initial_header(msg: Message) -> None:
    """REQUEST_INIT / RESOLVE_INIT: "#CS MUST be set to '0' and the CS ID map type SHALL be
    the 'Empty map'" (RFC 6043 §4.2.1.1, §4.2.3.1)."""
    if not isinstance(msg.header.cs_map, EmptyMap) or msg.header.cs_map.cs_count != 0:
        raise PolicyError("#CS must be 0 with the Empty map", ErrCode.UNSPECIFIED)


# The granted flags our initiator needs (PROFILE §4): a TRANSFER_RESP is awaited (F), its
# RANDRr and our RANDRi both enter the TEK (G, H; RFC 6043 §5.1.3, PROFILE §7), and neither
# side needs ticket-type-specific processing (N, O). Key forking (I) is not supported.
_NEEDED_FLAGS = (TicketFlags.F, TicketFlags.G, TicketFlags.H, TicketFlags.N, TicketFlags.O)


def _check_granted_flags(policy: TicketPolicy) -> None:
    """RFC 6043 §4.2.1.6: "the Initiator MUST check that the granted Ticket Policy is
    acceptable". K=1 (the KMS changed the policy) is fine when the result is usable; the
    other flags (D, E, J, L, M) permit things we simply do not do."""
    if policy.flags & TicketFlags.I:
        raise PolicyError("granted ticket requires key forking", ErrCode.INVALID_TPPAR)
    missing = [f.name for f in _NEEDED_FLAGS if not policy.flags & f]
    if missing:
        raise PolicyError(
            f"granted ticket policy lacks flag(s) {', '.join(str(m) for m in missing)} "
            "that the profile needs",
            ErrCode.INVALID_TPPAR,
        )


def _check_granted_policy(policy: TicketPolicy, *, now: float, max_skew: float) -> None:
    """The flags, and a validity end (TRe) not already past when the grant arrives: the
    KMS clock may differ from ours by up to ``max_skew``."""
    _check_granted_flags(policy)
    _, valid_until = _policy_view(policy)
    if valid_until is not None and valid_until < now - max_skew:
        raise PolicyError("granted ticket has already expired (TRe)", ErrCode.INVALID_TPPAR)


def _grant_keys(keys: tuple[KeyData, ...], suite: Suite) -> tuple[bytes, bytes, bytes]:
    """MPKi then the TGK with its SPI (PROFILE §4/§6)."""
    if len(keys) != 2 or keys[0].key_type != KeyType.MPK or keys[1].key_type != KeyType.TGK:
        raise PolicyError("KEMAC must hold MPKi then one TGK", ErrCode.INVALID_TPPAR)
    mpki, tgk = keys
    spi = tgk.spi
    if spi is None or not spi:
        raise PolicyError("TGK without an SPI (RFC 6043 §6.2.1)", ErrCode.INVALID_TPPAR)
    if len(mpki.key) < 16 or len(tgk.key) < 16:
        raise PolicyError("keys shorter than 128 bits (RFC 6043 §12.1)", ErrCode.INVALID_TPPAR)
    return mpki.key, tgk.key, spi


def _key_data(mpki: bytes, tgk: bytes, spi: bytes) -> tuple[KeyData, KeyData]:
    return (KeyData(KeyType.MPK, mpki, KvSpi(spi)), KeyData(KeyType.TGK, tgk, KvSpi(spi)))


def request_policy(
    *, initiator: str, responders: Sequence[str], valid_until: float, suite: Suite = SUITE_128
) -> TicketPolicy:
    """The TP our initiators request (PROFILE §4)."""
    announced = KeyData(KeyType.TGK, bytes(suite.key_len), KvSpi(bytes(_SPI_LEN)))
    return TicketPolicy(
        ticket_type=1,
        subtype=1,
        version=1,
        prf=suite.prf,
        flags=PROFILE_FLAGS,
        payloads=(
            _idr(IdRole.INITIATOR, initiator),
            TimestampR(TsRole.VALID_TO, TsType.NTP_UTC, to_ntp64(valid_until)),
            Kemac(0, encode_key_data([announced]), MAC_NULL, b""),
            *(_idr(IdRole.RESPONDER, r) for r in responders),
        ),
    )


def _policy_view(tp: TicketPolicy) -> tuple[tuple[str, ...], float | None]:
    responders = tuple(prot.uri(d) for d in tp.identities(IdRole.RESPONDER))
    tre = tp.time(TsRole.VALID_TO)
    return responders, (prot.seconds(tre) if tre is not None else None)


# ---------------------------------------------------------------------- Ticket Request

_REQUEST_INIT_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (RandR, RandRole.INITIATOR, 1, 1),
    (Idr, IdRole.INITIATOR, 1, 1),
    (Idr, IdRole.KMS, 0, 1),  # RFC 6043 §4.2.1.1: MAY be left out
    (TicketPolicy, None, 1, 1),
    (Idr, IdRole.PSK, 0, 1),
    (Verification, None, 1, 1),
]


def build_request_init(
    *,
    psk: bytes,
    initiator: str,
    kms: str,
    responders: Sequence[str],
    valid_until: float | None = None,
    now: float,
    csb_id: int,
    rand: bytes,
    suite: Suite = SUITE_128,
    psk_id: bytes | None = None,
    ticket_policy: TicketPolicy | None = None,
    send_kms_id: bool = True,
) -> bytes:
    """REQUEST_INIT_PSK (PROFILE §4). ``valid_until`` defaults to now + 1 h.

    PROFILE §4 always sends IDRkms; ``send_kms_id=False`` leaves it out as RFC 6043
    §4.2.1.1 allows, the MAC still covering ``kms`` (§5.5).
    """
    _check_suite_fits(suite, psk, "PSK")
    _check_rand(rand)
    if ticket_policy is None:
        ticket_policy = request_policy(
            initiator=initiator,
            responders=responders,
            valid_until=now + _VALIDITY if valid_until is None else valid_until,
            suite=suite,
        )
    msg = Message(
        Header(DataType.REQUEST_INIT_PSK, csb_id, EmptyMap(), suite.prf, v=True),
        (
            _t(now),
            RandR(RandRole.INITIATOR, rand),
            _idr(IdRole.INITIATOR, initiator),
            *((_idr(IdRole.KMS, kms),) if send_kms_id else ()),
            ticket_policy,
            *((Idr(IdRole.PSK, IdType.BYTE_STRING, psk_id),) if psk_id is not None else ()),
            _v_placeholder(suite),
        ),
    )
    keys = derive_message_keys(
        psk, csb_id=csb_id, response=False, rand_i=rand, rand_r=None, suite=suite
    )
    return prot.seal(msg, keys, suite, initiator.encode() + kms.encode())


def _read_request_init(data: bytes) -> tuple[Message, RequestInit]:
    msg = prot.decode(data, DataType.REQUEST_INIT_PSK)
    _check_initial_header(msg)
    suite = suite_for_prf(msg.header.prf)
    t, rand, idri, idrkms, tp, idrpsk, _v = prot.match(msg, _REQUEST_INIT_SPECS)
    tpol = tp[0]
    assert isinstance(tpol, TicketPolicy) and isinstance(t[0], Timestamp)
    assert isinstance(rand[0], RandR)
    responders, valid_until = _policy_view(tpol)
    psk_id = idrpsk[0].data if idrpsk else None  # type: ignore[union-attr]
    return msg, RequestInit(
        initiator=_uri_of(idri[0], "initiator"),
        kms=_uri_of(idrkms[0], "KMS") if idrkms else None,
        responders=responders,
        valid_until=valid_until,
        timestamp=prot.seconds(t[0]),
        csb_id=msg.header.csb_id,
        rand=rand[0].rand,
        suite=suite,
        psk_id=psk_id,
        ticket_policy=tpol,
    )


def peek_request_init(data: bytes) -> RequestInit:
    """Decode a REQUEST_INIT_PSK without verifying it (the KMS looks up the PSK)."""
    return _read_request_init(data)[1]


def verify_request_init(
    data: bytes,
    *,
    psk: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
    replay_cache: ReplayCache | None = None,
    kms: str | None = None,
) -> RequestInit:
    """KMS side: check T, the MAC (PSK, label 0x01, RANDRi) and, optionally, replay.

    ``kms`` is this KMS's identity: IDRkms, when present, must equal it (ERR 7 otherwise);
    when IDRkms was left out (RFC 6043 §4.2.1.1) the MAC is checked over ``kms`` instead,
    and without ``kms`` such a message cannot be verified (PolicyError, ERR 7).
    """
    msg, req = _read_request_init(data)
    kms_id = _kms_identity(kms, req.kms)
    t = msg.first(Timestamp)
    assert t is not None
    prot.check_time(t, now, max_skew)
    keys = derive_message_keys(
        psk, csb_id=req.csb_id, response=False, rand_i=req.rand, rand_r=None, suite=req.suite
    )
    prot.check_mac(msg, keys, req.suite, req.initiator.encode() + kms_id)
    prot.remember(replay_cache, msg.raw, req.timestamp, now)
    return req


def build_request_resp(
    *,
    request_init: bytes,
    psk: bytes,
    kms: str | None,
    ticket: bytes,
    mpki: bytes,
    tgk: bytes,
    spi: bytes,
    now: float,
) -> bytes:
    """REQUEST_RESP (PROFILE §4): ``ticket`` is the TICKET payload value the KMS made."""
    req_msg, req = _read_request_init(request_init)
    suite = req.suite
    ticket_payload = Ticket.decode_value(ticket)
    h = req_msg.header
    header = Header(DataType.REQUEST_RESP, h.csb_id, h.cs_map, h.prf, v=False)
    t = _t(now)
    keys = derive_message_keys(
        psk, csb_id=h.csb_id, response=True, rand_i=req.rand, rand_r=None, suite=suite
    )
    kemac = prot.make_kemac(keys, suite, h.csb_id, t.as_64bit(), _key_data(mpki, tgk, spi))
    msg = Message(
        header,
        (
            t,
            *((_idr(IdRole.KMS, kms),) if kms is not None else ()),
            ticket_payload,
            kemac,
            _v_placeholder(suite),
        ),
    )
    return prot.seal(msg, keys, suite, request_init)


_REQUEST_RESP_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (Idr, IdRole.KMS, 0, 1),
    (Ticket, None, 1, 1),
    (Kemac, None, 1, 1),
    (Verification, None, 1, 1),
]


def _check_response_header(msg: Message, request: Message) -> None:
    if msg.header.csb_id != request.header.csb_id or msg.header.prf != request.header.prf:
        raise PolicyError("response does not match the request's CSB ID/PRF", ErrCode.UNSPECIFIED)


def read_request_resp(
    data: bytes,
    *,
    request_init: bytes,
    psk: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
) -> TicketGrant:
    """Initiator side: verify REQUEST_RESP against our REQUEST_INIT and open the KEMAC.

    The granted policy must be one our initiator can use (RFC 6043 §4.2.1.6): flags F, G,
    H, N and O set, I clear (PolicyError, ERR 15 otherwise; K=1 is accepted), and TRe not
    before ``now - max_skew``.
    """
    req_msg, req = _read_request_init(request_init)
    msg = prot.decode(data, DataType.REQUEST_RESP)
    _check_response_header(msg, req_msg)
    suite = req.suite
    t, idrkms, ticket, kemac, _v = prot.match(msg, _REQUEST_RESP_SPECS)
    assert isinstance(t[0], Timestamp) and isinstance(kemac[0], Kemac)
    assert isinstance(ticket[0], Ticket)
    ts = prot.check_time(t[0], now, max_skew)
    keys = derive_message_keys(
        psk, csb_id=req.csb_id, response=True, rand_i=req.rand, rand_r=None, suite=suite
    )
    prot.check_mac(msg, keys, suite, request_init)
    mpki, tgk, spi = _grant_keys(
        prot.open_kemac(kemac[0], keys, suite, req.csb_id, t[0].as_64bit()), suite
    )
    policy = ticket[0].policy
    _check_granted_policy(policy, now=now, max_skew=max_skew)
    responders, valid_until = _policy_view(policy)
    return TicketGrant(
        ticket=_ticket_value(msg, msg.payloads.index(ticket[0])),
        ticket_policy=policy,
        mpki=mpki,
        tgk=tgk,
        spi=spi,
        suite=suite,
        responders=responders,
        valid_until=valid_until,
        kms=_uri_of(idrkms[0], "KMS") if idrkms else None,
        timestamp=ts,
    )


# --------------------------------------------------------------------- Ticket Transfer


def build_transfer_init(
    *,
    grant: TicketGrant,
    initiator: str,
    responder: str,
    now: float,
    csb_id: int,
    rand: bytes,
    cs_ids: Sequence[int] = (1,),
    sdp_ids: str = "mikey",
    tls_prot_type: int = TLS_PROT_TYPE,
) -> bytes:
    """TRANSFER_INIT (PROFILE §5); ``rand`` is RANDRi.

    RFC 6043 §4.2.1.6 (check the granted policy before using the ticket): ``now`` must lie
    within the ticket's TRs..TRe (TimestampError, ERR 1), as the responder will check
    (``check_transfer_init_profile``), and ``responder`` must be one of the ticket's IDRr,
    byte for byte (PolicyError, ERR 7). The flags were checked by ``read_request_resp``.
    """
    _check_rand(rand)
    suite = grant.suite
    ticket = Ticket.decode_value(grant.ticket)
    _, valid_until = _policy_view(ticket.policy)
    if valid_until is not None and now > valid_until:
        raise TimestampError("ticket expired (TRe)")
    trs = ticket.policy.time(TsRole.VALID_FROM)
    if trs is not None and now < prot.seconds(trs):
        raise TimestampError("ticket not yet valid (TRs)")
    # RFC 6043 §4.2.1.6: the granted policy names the responders the ticket is for; a
    # transfer to anyone else would only fail later, at the responder's KMS.
    named = ticket.policy.identities(IdRole.RESPONDER)
    if named and responder.encode("utf-8") not in named:
        raise PolicyError("the ticket does not name the responder", err_code=ErrCode.INVALID_ID)
    cs_map = GenericIdMap(
        tuple(GenericCs(cs_id, tls_prot_type, False, (), b"", grant.spi) for cs_id in cs_ids)
    )
    v_flag = bool(ticket.policy.flags & TicketFlags.F)  # RFC 6043 §4.2.2.1
    msg = Message(
        Header(DataType.TRANSFER_INIT, csb_id, cs_map, suite.prf, v=v_flag),
        (
            _t(now),
            RandR(RandRole.INITIATOR, rand),
            _idr(IdRole.INITIATOR, initiator),
            _idr(IdRole.RESPONDER, responder),
            ticket,
            GeneralExtension(SDP_IDS, sdp_ids.encode("ascii")),
            _v_placeholder(suite),
        ),
    )
    keys = derive_message_keys(
        grant.mpki, csb_id=csb_id, response=False, rand_i=rand, rand_r=None, suite=suite
    )
    return prot.seal(msg, keys, suite, initiator.encode() + responder.encode(), exclude=True)


_TRANSFER_INIT_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (RandR, RandRole.INITIATOR, 1, 1),
    (Idr, IdRole.INITIATOR, 1, 1),
    (Idr, IdRole.RESPONDER, 1, 1),
    (SecurityPolicy, None, 0, 255),
    (Ticket, None, 1, 1),
    (Kemac, None, 0, 1),
    (GeneralExtension, None, 0, 4),
    (Verification, None, 1, 1),
]


def _read_transfer_init(data: bytes) -> tuple[Message, TransferInit]:
    msg = prot.decode(data, DataType.TRANSFER_INIT)
    suite = suite_for_prf(msg.header.prf)
    if not isinstance(msg.header.cs_map, GenericIdMap):
        raise PolicyError("TRANSFER_INIT must use the GENERIC-ID map", ErrCode.UNSPECIFIED)
    t, rand, idri, idrr, _sp, ticket, kemac, gen, _v = prot.match(msg, _TRANSFER_INIT_SPECS)
    assert isinstance(t[0], Timestamp) and isinstance(rand[0], RandR)
    assert isinstance(ticket[0], Ticket)
    return msg, TransferInit(
        initiator=_uri_of(idri[0], "initiator"),
        responder=_uri_of(idrr[0], "responder"),
        ticket=_ticket_value(msg, msg.payloads.index(ticket[0])),
        ticket_policy=ticket[0].policy,
        crypto_sessions=msg.header.cs_map.entries,
        timestamp=prot.seconds(t[0]),
        csb_id=msg.header.csb_id,
        rand_i=rand[0].rand,
        suite=suite,
        sdp_ids=_sdp_ids(gen),
        has_kemac=bool(kemac),
    )


def peek_transfer_init(data: bytes) -> TransferInit:
    """Decode a TRANSFER_INIT without verifying it (the MAC needs MPKi from the KMS)."""
    return _read_transfer_init(data)[1]


def check_transfer_init_profile(
    ti: TransferInit,
    *,
    responder: str | None,
    tls_prot_type: int = TLS_PROT_TYPE,
    now: float | None = None,
) -> None:
    """Early checks before contacting the KMS (PROFILE §5, RFC 6043 §4.2.2.2).

    ``responder`` is compared exactly with IDRr and must be one of the ticket's IDRr
    (callers normalise URIs per PROFILE §1 first; pass None to skip). With ``now`` the
    ticket's validity period (TRs/TRe) is checked too. The ticket type is not checked:
    the KMS resolves the ticket (E=1) and knows its types.
    """
    flags = ti.ticket_policy.flags
    if flags & TicketFlags.I:
        raise PolicyError("key forking (I flag) is not supported", ErrCode.INVALID_TPPAR)
    for flag in (TicketFlags.F, TicketFlags.G, TicketFlags.H, TicketFlags.O):
        if not flags & flag:
            raise PolicyError(
                f"ticket policy lacks flag {flag.name} required by the profile",
                ErrCode.INVALID_TPPAR,
            )
    if ti.has_kemac:
        raise PolicyError("TRANSFER_INIT must not carry a KEMAC (L=0)", ErrCode.INVALID_TPPAR)
    if not ti.crypto_sessions:
        raise PolicyError("TRANSFER_INIT has no crypto session", ErrCode.INVALID_SP)
    for cs in ti.crypto_sessions:
        if cs.prot_type != tls_prot_type:
            raise PolicyError(f"CS {cs.cs_id}: Prot type is not TLS", ErrCode.INVALID_SP)
        if cs.session_data or len(cs.policies) > 1 or not cs.spi:
            raise PolicyError(f"CS {cs.cs_id}: not a TLS crypto session", ErrCode.INVALID_SPPAR)
    if len({cs.cs_id for cs in ti.crypto_sessions}) != len(ti.crypto_sessions):
        raise PolicyError("duplicate CS IDs", ErrCode.INVALID_SPPAR)
    responders, valid_until = _policy_view(ti.ticket_policy)
    if responder is not None:
        if ti.responder != responder:
            raise PolicyError("TRANSFER_INIT is addressed to someone else", ErrCode.INVALID_ID)
        if responder not in responders:
            raise PolicyError("the ticket does not name this responder", ErrCode.INVALID_ID)
    if now is not None:
        if valid_until is not None and now > valid_until:
            raise TimestampError("ticket expired")
        trs = ti.ticket_policy.time(TsRole.VALID_FROM)
        if trs is not None and now < prot.seconds(trs):
            raise TimestampError("ticket not yet valid")


def verify_transfer_init(
    data: bytes,
    *,
    mpki: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
    replay_cache: ReplayCache | None = None,
) -> TransferInit:
    """Responder side, after resolving: check T and the MAC (MPKi, label 0x01, RANDRi)."""
    msg, ti = _read_transfer_init(data)
    t = msg.first(Timestamp)
    assert t is not None
    prot.check_time(t, now, max_skew)
    keys = derive_message_keys(
        mpki, csb_id=ti.csb_id, response=False, rand_i=ti.rand_i, rand_r=None, suite=ti.suite
    )
    prot.check_mac(msg, keys, ti.suite, ti.initiator.encode() + ti.responder.encode(), exclude=True)
    prot.remember(replay_cache, msg.raw, ti.timestamp, now)
    return ti


def build_transfer_resp(
    *,
    transfer_init: bytes,
    mpki: bytes,
    responder: str,
    rand_r: bytes,
    now: float,
    sdp_ids: str = "mikey",
    tls_prot_type: int = TLS_PROT_TYPE,
) -> bytes:
    """TRANSFER_RESP (PROFILE §5): #P=1 naming SP policy 0 of Prot type TLS."""
    _check_rand(rand_r)
    ti_msg, ti = _read_transfer_init(transfer_init)
    suite = ti.suite
    cs_map = GenericIdMap(
        tuple(
            GenericCs(cs.cs_id, tls_prot_type, False, (0,), b"", cs.spi)
            for cs in ti.crypto_sessions
        )
    )
    msg = Message(
        Header(DataType.TRANSFER_RESP, ti.csb_id, cs_map, ti_msg.header.prf, v=False),
        (
            _t(now),
            RandR(RandRole.RESPONDER, rand_r),
            _idr(IdRole.RESPONDER, responder),
            SecurityPolicy(0, tls_prot_type, ()),
            GeneralExtension(SDP_IDS, sdp_ids.encode("ascii")),
            _v_placeholder(suite),
        ),
    )
    keys = derive_message_keys(
        mpki, csb_id=ti.csb_id, response=True, rand_i=ti.rand_i, rand_r=rand_r, suite=suite
    )
    return prot.seal(msg, keys, suite, transfer_init)


_TRANSFER_RESP_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (RandR, RandRole.RESPONDER, 1, 1),
    (Idr, IdRole.RESPONDER, 0, 1),
    (RandR, RandRole.KMS, 0, 1),
    (SecurityPolicy, None, 0, 255),
    (GeneralExtension, None, 0, 4),
    (Verification, None, 1, 1),
]


def verify_transfer_resp(
    data: bytes,
    *,
    transfer_init: bytes,
    mpki: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
    replay_cache: ReplayCache | None = None,
) -> TransferResp:
    """Initiator side: check T and the MAC (MPKi, label 0x02, RANDRi and RANDRr), then
    that every crypto session names at most one policy and carries an SPI (§6.1.1)."""
    ti_msg, ti = _read_transfer_init(transfer_init)
    msg = prot.decode(data, DataType.TRANSFER_RESP)
    _check_response_header(msg, ti_msg)
    if not isinstance(msg.header.cs_map, GenericIdMap):
        raise PolicyError("TRANSFER_RESP must use the GENERIC-ID map", ErrCode.UNSPECIFIED)
    t, rand, idrr, rkms, _sp, gen, _v = prot.match(msg, _TRANSFER_RESP_SPECS)
    assert isinstance(t[0], Timestamp) and isinstance(rand[0], RandR)
    if rkms:
        raise PolicyError("RANDRkms means key forking, not supported", ErrCode.INVALID_TPPAR)
    ts = prot.check_time(t[0], now, max_skew)
    keys = derive_message_keys(
        mpki,
        csb_id=ti.csb_id,
        response=True,
        rand_i=ti.rand_i,
        rand_r=rand[0].rand,
        suite=ti.suite,
    )
    prot.check_mac(msg, keys, ti.suite, transfer_init)
    prot.remember(replay_cache, msg.raw, ts, now)
    for cs in msg.header.cs_map.entries:
        if len(cs.policies) > 1:
            raise PolicyError(f"CS {cs.cs_id}: more than one policy", ErrCode.INVALID_SPPAR)
        if not cs.spi:
            # RFC 6043 §6.1.1: the SPI "MAY be omitted in the initial message (length = 0),
            # but it MUST be provided in the response message".
            raise PolicyError(f"CS {cs.cs_id}: no SPI in the response", ErrCode.INVALID_SPPAR)
    return TransferResp(
        responder=_uri_of(idrr[0], "responder") if idrr else None,
        rand_r=rand[0].rand,
        timestamp=ts,
        csb_id=ti.csb_id,
        crypto_sessions=msg.header.cs_map.entries,
        sdp_ids=_sdp_ids(gen),
        suite=ti.suite,
    )


def derive_tls_psk(
    *, tgk: bytes, cs_id: int, rand_i: bytes, rand_r: bytes, suite: Suite = SUITE_128
) -> bytes:
    """The TLS PSK of a crypto session = its TEK (PROFILE §7, RFC 6043 §5.1.3, H=G=1)."""
    return derive_tek(
        tgk, cs_id=cs_id, rand_i=rand_i, rand_r=rand_r, length=suite.key_len, suite=suite
    )


# ---------------------------------------------------------------------- Ticket Resolve

_RESOLVE_INIT_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (RandR, RandRole.RESPONDER, 1, 1),
    (Idr, IdRole.RESPONDER, 1, 1),
    (Idr, IdRole.KMS, 0, 1),  # RFC 6043 §4.2.3.1: MAY be left out
    (Ticket, None, 1, 1),
    (Idr, IdRole.PSK, 0, 1),
    (Verification, None, 1, 1),
]


def build_resolve_init(
    *,
    psk: bytes,
    responder: str,
    kms: str,
    ticket: bytes,
    now: float,
    csb_id: int,
    rand_r: bytes,
    suite: Suite = SUITE_128,
    psk_id: bytes | None = None,
    send_kms_id: bool = True,
) -> bytes:
    """RESOLVE_INIT_PSK (PROFILE §6); ``ticket`` is the TICKET value from TRANSFER_INIT.

    ``rand_r`` must be the RANDRr the responder will put in its TRANSFER_RESP (PROFILE §6).
    ``send_kms_id=False`` leaves IDRkms out (RFC 6043 §4.2.3.1 MAY; PROFILE always sends
    it); the MAC still covers ``kms``.
    """
    _check_suite_fits(suite, psk, "PSK")
    _check_rand(rand_r)
    msg = Message(
        Header(DataType.RESOLVE_INIT_PSK, csb_id, EmptyMap(), suite.prf, v=True),
        (
            _t(now),
            RandR(RandRole.RESPONDER, rand_r),
            _idr(IdRole.RESPONDER, responder),
            *((_idr(IdRole.KMS, kms),) if send_kms_id else ()),
            Ticket.decode_value(ticket),
            *((Idr(IdRole.PSK, IdType.BYTE_STRING, psk_id),) if psk_id is not None else ()),
            _v_placeholder(suite),
        ),
    )
    keys = derive_message_keys(
        psk, csb_id=csb_id, response=False, rand_i=None, rand_r=rand_r, suite=suite
    )
    return prot.seal(msg, keys, suite, responder.encode() + kms.encode())


def _read_resolve_init(data: bytes) -> tuple[Message, ResolveInit]:
    msg = prot.decode(data, DataType.RESOLVE_INIT_PSK)
    _check_initial_header(msg)
    suite = suite_for_prf(msg.header.prf)
    t, rand, idrr, idrkms, ticket, idrpsk, _v = prot.match(msg, _RESOLVE_INIT_SPECS)
    assert isinstance(t[0], Timestamp) and isinstance(rand[0], RandR)
    assert isinstance(ticket[0], Ticket)
    return msg, ResolveInit(
        responder=_uri_of(idrr[0], "responder"),
        kms=_uri_of(idrkms[0], "KMS") if idrkms else None,
        ticket=_ticket_value(msg, msg.payloads.index(ticket[0])),
        ticket_policy=ticket[0].policy,
        timestamp=prot.seconds(t[0]),
        csb_id=msg.header.csb_id,
        rand_r=rand[0].rand,
        suite=suite,
        psk_id=idrpsk[0].data if idrpsk else None,  # type: ignore[union-attr]
    )


def peek_resolve_init(data: bytes) -> ResolveInit:
    """Decode a RESOLVE_INIT_PSK without verifying it (the KMS looks up the PSK)."""
    return _read_resolve_init(data)[1]


def verify_resolve_init(
    data: bytes,
    *,
    psk: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
    replay_cache: ReplayCache | None = None,
    kms: str | None = None,
) -> ResolveInit:
    """KMS side: check T, the MAC (PSK, label 0x01, RANDRr only) and, optionally, replay.

    ``kms`` is this KMS's identity: IDRkms, when present, must equal it (ERR 7 otherwise);
    when IDRkms was left out (RFC 6043 §4.2.3.1) the MAC is checked over ``kms`` instead,
    and without ``kms`` such a message cannot be verified (PolicyError, ERR 7).
    """
    msg, res = _read_resolve_init(data)
    kms_id = _kms_identity(kms, res.kms)
    t = msg.first(Timestamp)
    assert t is not None
    prot.check_time(t, now, max_skew)
    keys = derive_message_keys(
        psk, csb_id=res.csb_id, response=False, rand_i=None, rand_r=res.rand_r, suite=res.suite
    )
    prot.check_mac(msg, keys, res.suite, res.responder.encode() + kms_id)
    prot.remember(replay_cache, msg.raw, res.timestamp, now)
    return res


def build_resolve_resp(
    *,
    resolve_init: bytes,
    psk: bytes,
    kms: str | None,
    responder: str | None,
    mpki: bytes,
    tgk: bytes,
    spi: bytes,
    now: float,
) -> bytes:
    """RESOLVE_RESP (PROFILE §6): KEMAC(MPKi, TGK) under the responder's PSK."""
    res_msg, res = _read_resolve_init(resolve_init)
    suite = res.suite
    h = res_msg.header
    t = _t(now)
    keys = derive_message_keys(
        psk, csb_id=h.csb_id, response=True, rand_i=None, rand_r=res.rand_r, suite=suite
    )
    kemac = prot.make_kemac(keys, suite, h.csb_id, t.as_64bit(), _key_data(mpki, tgk, spi))
    msg = Message(
        Header(DataType.RESOLVE_RESP, h.csb_id, h.cs_map, h.prf, v=False),
        (
            t,
            *((_idr(IdRole.KMS, kms),) if kms is not None else ()),
            kemac,
            *((_idr(IdRole.RESPONDER, responder),) if responder is not None else ()),
            _v_placeholder(suite),
        ),
    )
    return prot.seal(msg, keys, suite, resolve_init)


_RESOLVE_RESP_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (Idr, IdRole.KMS, 0, 1),
    (Kemac, None, 1, 1),
    (Idr, IdRole.RESPONDER, 0, 1),
    (RandR, RandRole.KMS, 0, 1),
    (Verification, None, 1, 1),
]


def read_resolve_resp(
    data: bytes,
    *,
    resolve_init: bytes,
    psk: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
) -> ResolvedTicket:
    """Responder side: verify RESOLVE_RESP against our RESOLVE_INIT and open the KEMAC."""
    res_msg, res = _read_resolve_init(resolve_init)
    msg = prot.decode(data, DataType.RESOLVE_RESP)
    _check_response_header(msg, res_msg)
    suite = res.suite
    t, _kms, kemac, idrr, rkms, _v = prot.match(msg, _RESOLVE_RESP_SPECS)
    assert isinstance(t[0], Timestamp) and isinstance(kemac[0], Kemac)
    if rkms:
        raise PolicyError("RANDRkms means key forking, not supported", ErrCode.INVALID_TPPAR)
    ts = prot.check_time(t[0], now, max_skew)
    keys = derive_message_keys(
        psk, csb_id=res.csb_id, response=True, rand_i=None, rand_r=res.rand_r, suite=suite
    )
    prot.check_mac(msg, keys, suite, resolve_init)
    mpki, tgk, spi = _grant_keys(
        prot.open_kemac(kemac[0], keys, suite, res.csb_id, t[0].as_64bit()), suite
    )
    return ResolvedTicket(
        mpki=mpki,
        tgk=tgk,
        spi=spi,
        responder=_uri_of(idrr[0], "responder") if idrr else None,
        suite=suite,
        timestamp=ts,
    )


# ------------------------------------------------------------------------------- Error


def build_error(*, err_code: int | Sequence[int], csb_id: int, prf: int = 0, now: float) -> bytes:
    """Error message (RFC 6043 §5.4): HDR(6, V=0), T, ERR..., unauthenticated."""
    codes = [err_code] if isinstance(err_code, int) else list(err_code)
    if not codes:
        raise ValueError("an Error message needs at least one ERR payload")
    return Message(
        Header(DataType.ERROR, csb_id, EmptyMap(), prf, v=False),
        (_t(now), *(ErrorPayload(int(c)) for c in codes)),
    ).encode()


def build_error_for(failed: bytes, *, err_code: int, now: float) -> bytes | None:
    """An Error answering ``failed``, copying its PRF and CSB ID (RFC 6043 §5.4), or
    None when not even its header can be read (then there is nothing to answer)."""
    if len(failed) < 8 or failed[0] != Header.VERSION or failed[1] == DataType.ERROR:
        return None  # never answer an Error with an Error (RFC 6043 §5.4)
    return build_error(
        err_code=err_code,
        csb_id=int.from_bytes(failed[4:8], "big"),
        prf=failed[3] & 0x7F,
        now=now,
    )


def read_error(data: bytes) -> MikeyErrorMessage:
    """Decode an Error message; V/SIGN/SP payloads are tolerated and ignored (a hint)."""
    msg = prot.decode(data, DataType.ERROR)
    errs = msg.all(ErrorPayload)
    if not errs:
        raise DecodeError("Error message without ERR payload")
    t = msg.first(Timestamp)
    ts: float | None
    try:
        ts = prot.seconds(t) if t is not None else None
    except TimestampError:
        ts = None
    return MikeyErrorMessage(tuple(e.err_no for e in errs), msg.header.csb_id, ts, msg.header.prf)
