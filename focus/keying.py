"""Per-leg MIKEY-TICKET keying for the focus (RFC 6043 §4.2, PROFILE §1, §5–§8).

Pure: builds on :mod:`mikey` and :mod:`policies` only; time (``now``, Unix seconds),
random values and CSB IDs are parameters, the replay cache is passed in.

Responder (dial-in: the focus answers an INVITE carrying a TRANSFER_INIT), two steps
around the KMS round trip the caller performs:

1. :func:`check_transfer_init` (before the KMS, RFC 6043 §4.2.2.2 and RFC 3830 §5.3
   order: cheap checks first) decodes the TRANSFER_INIT of the offer and checks that
   IDRr is the room URI and is named by the ticket, that the ticket policy and the crypto
   session fit PROFILE §4/§5, that T is inside the clock-skew window and not a replay,
   and compares the GEN_EXT "SDP IDs" with the KMPIDs of the SDP (RFC 4567 §4.3; a
   missing list is only a warning, PROFILE §5).  It returns a :class:`TicketToResolve`:
   which ticket to resolve, as which responder identity.
2. :func:`complete_responder` (after the KMS answered with MPKi, the TGK, its SPI and
   the RANDRr it was sent) verifies the TRANSFER_INIT MAC with MPKi, requires the
   verified IDRi to equal the caller's SIP identity (PROFILE §1, RFC 3261 §19.1.4
   comparison), derives the TLS PSK (PROFILE §7) and builds the TRANSFER_RESP for the
   answer.

Initiator (dial-out by the focus, and the UE's dial-in):

1. :func:`start_initiator` turns a :class:`mikey.TicketGrant` into a TRANSFER_INIT;
2. :func:`complete_initiator` verifies the TRANSFER_RESP of the answer, including the
   responder's identity, and derives the same PSK.

Every failure raises :class:`KeyingError`, which knows its SIP answer: 488 Not
Acceptable Here with ``Warning: 399 <host> "MIKEY: <reason>"`` (RFC 4567 §4.1.2,
PROFILE §8), or 403 Forbidden when the peer is not who it claims to be.  Reasons never
carry key material; results keep the PSK and the MIKEY bytes out of their reprs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from mikey import (
    DEFAULT_MAX_SKEW,
    SUITE_128,
    TLS_PROT_TYPE,
    AuthenticationError,
    DecodeError,
    ErrCode,
    MikeyError,
    ReplayCache,
    ReplayError,
    Suite,
    TicketFlags,
    TicketGrant,
    TimestampError,
    build_transfer_init,
    build_transfer_resp,
    check_transfer_init_profile,
    derive_tls_psk,
    peek_transfer_init,
    replay_key,
    verify_transfer_init,
    verify_transfer_resp,
)
from mikey.payloads import GenericCs, IdRole
from policies import PolicyError as UriError
from policies import normalize_uri

__all__ = [
    "KeyingError",
    "KeyingSettings",
    "LegKey",
    "ResolvedKeys",
    "ResponderResult",
    "TicketToResolve",
    "TransferOffer",
    "check_transfer_init",
    "complete_initiator",
    "complete_responder",
    "kms_refusal",
    "same_identity",
    "start_initiator",
]

MIKEY_PROTOCOL_ID = "mikey"


# ------------------------------------------------------------------------------ errors


def _quotable(text: str) -> str:
    """Printable ASCII without DQUOTE or backslash, bounded (RFC 3261 §25.1 quoted-string)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:200]


class KeyingError(Exception):
    """A keying failure and its SIP answer.

    ``sip_status`` is 488 (the key management in the offer or answer is not acceptable,
    RFC 4567 §4.1.2) or 403 (the MIKEY identity is not the SIP identity, PROFILE §1).
    ``err_code`` is the MIKEY ERR that describes it (RFC 3830 §6.12) when there is one.
    """

    def __init__(
        self, reason: str, *, sip_status: int = 488, err_code: ErrCode | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sip_status = sip_status
        self.err_code = err_code

    @property
    def warning_text(self) -> str:
        """The quoted text of the SIP Warning (PROFILE §8)."""
        return _quotable(f"MIKEY: {self.reason}")

    def warning(self, host: str) -> str:
        """The complete ``Warning`` header value: ``399 <host> "MIKEY: <reason>"``."""
        return f'399 {host} "{self.warning_text}"'


def _from_mikey(exc: MikeyError, what: str) -> KeyingError:
    """Map a mikey error to a 488 with a reason naming the failed check, never a key."""
    if isinstance(exc, ReplayError):
        reason = f"{what} is a replay"
    elif isinstance(exc, TimestampError):
        reason = f"{what}: {exc}"
    elif isinstance(exc, AuthenticationError):
        reason = f"{what} does not authenticate"
    elif isinstance(exc, DecodeError):
        reason = f"{what} does not decode: {exc}"
    else:
        reason = f"{what}: {exc}"
    return KeyingError(reason, err_code=exc.err_code)


def kms_refusal(err_code: int | None, http_status: int | None = None) -> KeyingError:
    """The SIP answer when the KMS refuses to resolve the ticket (PROFILE §3).

    ERR 7 (invalid ID: the focus may not act as this room, or the ticket does not name
    it) and ERR 0 (authentication failure) are a refusal of this caller's ticket for
    this room: 403.  ERR 14 (invalid or expired ticket), ERR 1 (timestamp or replay) and
    anything else mean the offered key management is unusable: 488.
    """
    detail = f"ERR {err_code}" if err_code is not None else f"HTTP {http_status}"
    if err_code in (ErrCode.INVALID_ID, ErrCode.AUTH_FAILURE):
        return KeyingError(
            f"KMS refused to resolve the ticket ({detail})",
            sip_status=403,
            err_code=ErrCode(err_code),
        )
    code = ErrCode(err_code) if err_code in set(ErrCode) else None
    return KeyingError(f"KMS refused to resolve the ticket ({detail})", err_code=code)


# -------------------------------------------------------------------------- settings


@attrs.frozen
class KeyingSettings:
    """The MIKEY settings of PROFILE §2/§5 (config ``[mikey]``).

    ``suite`` is what the focus's own initiator messages use when it picks (the grant's
    suite wins for a transfer); ``max_clock_skew`` is the T window in seconds;
    ``tls_prot_type`` the Prot type value of the TLS crypto session.
    """

    suite: Suite = SUITE_128
    max_clock_skew: float = DEFAULT_MAX_SKEW
    tls_prot_type: int = attrs.field(default=TLS_PROT_TYPE)

    @tls_prot_type.validator
    def _check_prot(self, _attribute: object, value: int) -> None:
        if not 0 <= value <= 255:
            raise ValueError("tls_prot_type must be 0..255")


# --------------------------------------------------------------------------- results


@attrs.frozen
class LegKey:
    """The verified outcome of one leg's keying: the TLS PSK and who is at both ends."""

    psk: bytes = attrs.field(repr=False)
    cs_id: int
    spi: bytes
    suite: Suite
    initiator: str
    """Verified IDRi (the caller on dial-in, the focus on dial-out)."""
    responder: str
    """IDRr (the room on dial-in)."""
    warnings: tuple[str, ...] = ()


@attrs.frozen
class TicketToResolve:
    """What the responder must resolve at the KMS, and the checked TRANSFER_INIT.

    ``responder`` is the IDRr exactly as the initiator wrote it (the identity the KMS
    authorises the focus to act as); ``claimed_initiator`` is the unverified IDRi.
    """

    ticket: bytes = attrs.field(repr=False)
    responder: str
    claimed_initiator: str
    cs_id: int
    spi: bytes
    suite: Suite
    transfer_init: bytes = attrs.field(repr=False)
    timestamp: float
    warnings: tuple[str, ...] = ()


class ResolvedKeys(Protocol):
    """What resolving the ticket yields (``kms_client.TicketResolution`` fits)."""

    @property
    def mpki(self) -> bytes: ...
    @property
    def tgk(self) -> bytes: ...
    @property
    def spi(self) -> bytes: ...
    @property
    def rand_r(self) -> bytes: ...


@attrs.frozen
class ResponderResult:
    """The TRANSFER_RESP for the answer's ``a=key-mgmt:mikey`` and the leg's key."""

    transfer_resp: bytes = attrs.field(repr=False)
    key: LegKey


@attrs.frozen
class TransferOffer:
    """An initiator's TRANSFER_INIT and what it needs to check the answer."""

    transfer_init: bytes = attrs.field(repr=False)
    grant: TicketGrant = attrs.field(repr=False)
    initiator: str
    responder: str
    cs_id: int
    sdp_ids: str
    rand_i: bytes


# -------------------------------------------------------------------------- identity


def same_identity(a: str, b: str) -> bool:
    """PROFILE §1: RFC 3261 §19.1.4 comparison (scheme and host case-insensitive, user
    part case-sensitive, parameters ignored); unparseable URIs are never equal."""
    try:
        return normalize_uri(a) == normalize_uri(b)
    except UriError:
        return False


# ------------------------------------------------------------------------- responder


def _pick_cs(sessions: Sequence[GenericCs], cs_id: int | None) -> GenericCs:
    if cs_id is None:
        if len(sessions) != 1:
            raise KeyingError(
                f"TRANSFER_INIT has {len(sessions)} crypto sessions; one is expected",
                err_code=ErrCode.INVALID_SP,
            )
        return sessions[0]
    for cs in sessions:
        if cs.cs_id == cs_id:
            return cs
    raise KeyingError(f"TRANSFER_INIT has no crypto session {cs_id}", err_code=ErrCode.INVALID_SP)


def _sdp_ids_warnings(carried: str | None, offered: str, what: str) -> tuple[str, ...]:
    """RFC 4567 §4.3 bidding-down protection, PROFILE §5: compare, or warn if absent."""
    if carried is None:
        return (f"{what} carries no SDP IDs (RFC 4567 §4.3); accepted without the check",)
    if carried != offered:
        raise KeyingError(
            f"{what} SDP IDs do not match the offered key management protocols",
            err_code=ErrCode.UNSPECIFIED,
        )
    return ()


def check_transfer_init(
    data: bytes,
    *,
    room_uri: str,
    offered_ids: str,
    now: float,
    replay_cache: ReplayCache | None,
    settings: KeyingSettings = KeyingSettings(),
    cs_id: int | None = None,
) -> TicketToResolve:
    """Early checks on the TRANSFER_INIT of a dial-in offer, before the KMS.

    ``data`` is the decoded ``a=key-mgmt:mikey`` message, ``offered_ids`` the
    ``;``-separated KMPID list of the SDP (``focus.sdp.OfferedLine.key_mgmt_ids``).
    ``cs_id`` selects the crypto session of the accepted m-line; None requires exactly
    one.  Raises :class:`KeyingError` (488).
    """
    what = "TRANSFER_INIT"
    try:
        ti = peek_transfer_init(data)
    except MikeyError as exc:
        raise _from_mikey(exc, what) from None
    # IDRr must name the room (RFC 6043 §4.2.2.2: the responder checks it is the
    # intended recipient), and the ticket must name it too (else the KMS refuses anyway).
    if not same_identity(ti.responder, room_uri):
        raise KeyingError(
            "TRANSFER_INIT is addressed to another responder than this room",
            err_code=ErrCode.INVALID_ID,
        )
    named = ti.ticket_policy.identities(IdRole.RESPONDER)
    if not any(same_identity(_text(r), room_uri) for r in named):
        raise KeyingError("the ticket does not name this room", err_code=ErrCode.INVALID_ID)
    # The ticket's own IDRi is the requester the KMS authenticated (RFC 6043 §6.10: the
    # granted policy; our KMS writes exactly that identity). Any responder of the same
    # ticket knows MPKi after resolving it and could MAC a TRANSFER_INIT claiming another
    # IDRi; requiring the claimed IDRi to be the ticket's closes that. A ticket policy
    # without IDRi (allowed by §6.10) leaves the MAC and the SIP identity check.
    ticket_initiators = ti.ticket_policy.identities(IdRole.INITIATOR)
    if ticket_initiators and not any(
        same_identity(_text(i), ti.initiator) for i in ticket_initiators
    ):
        raise KeyingError(
            "the TRANSFER_INIT initiator is not the ticket's initiator",
            sip_status=403,
            err_code=ErrCode.INVALID_ID,
        )
    try:
        check_transfer_init_profile(
            ti, responder=None, tls_prot_type=settings.tls_prot_type, now=now
        )
    except MikeyError as exc:
        raise _from_mikey(exc, what) from None
    cs = _pick_cs(ti.crypto_sessions, cs_id)
    # RFC 3830 §5.3: timestamp window, then the replay cache (only looked at here: the
    # message enters it once its MAC verified, in complete_responder).
    try:
        if abs(ti.timestamp - now) > settings.max_clock_skew:
            raise TimestampError("timestamp outside the allowed clock skew")
        if replay_cache is not None:
            replay_cache.check(replay_key(data), ti.timestamp, now)
    except MikeyError as exc:
        raise _from_mikey(exc, what) from None
    warnings = _sdp_ids_warnings(ti.sdp_ids, offered_ids, what)
    return TicketToResolve(
        ticket=ti.ticket,
        responder=ti.responder,
        claimed_initiator=ti.initiator,
        cs_id=cs.cs_id,
        spi=cs.spi,
        suite=ti.suite,
        transfer_init=data,
        timestamp=ti.timestamp,
        warnings=warnings,
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def complete_responder(
    request: TicketToResolve,
    resolved: ResolvedKeys,
    *,
    caller: str,
    now: float,
    replay_cache: ReplayCache | None,
    settings: KeyingSettings = KeyingSettings(),
    sdp_ids: str = MIKEY_PROTOCOL_ID,
) -> ResponderResult:
    """After resolving: verify, check the caller, derive the PSK, build TRANSFER_RESP.

    ``caller`` is the participant's SIP identity (P-Asserted-Identity from a trusted
    peer, else From; PROFILE §1).  The verified IDRi must equal it, else 403.
    ``sdp_ids`` is the KMPID list the TRANSFER_RESP carries (PROFILE §5).
    """
    what = "TRANSFER_INIT"
    if resolved.spi != request.spi:
        raise KeyingError(
            "the resolved TGK does not belong to the offered crypto session (SPI differs)",
            err_code=ErrCode.INVALID_SPPAR,
        )
    try:
        ti = verify_transfer_init(
            request.transfer_init,
            mpki=resolved.mpki,
            now=now,
            max_skew=settings.max_clock_skew,
            replay_cache=replay_cache,
        )
    except MikeyError as exc:
        raise _from_mikey(exc, what) from None
    # PROFILE §1 and DESIGN: "if a peer is not who it should be, the setup is aborted".
    if not same_identity(ti.initiator, caller):
        raise KeyingError(
            "the MIKEY initiator identity is not the caller's SIP identity",
            sip_status=403,
            err_code=ErrCode.INVALID_ID,
        )
    try:
        psk = derive_tls_psk(
            tgk=resolved.tgk,
            cs_id=request.cs_id,
            rand_i=ti.rand_i,
            rand_r=resolved.rand_r,
            suite=ti.suite,
        )
        transfer_resp = build_transfer_resp(
            transfer_init=request.transfer_init,
            mpki=resolved.mpki,
            responder=request.responder,
            rand_r=resolved.rand_r,
            now=now,
            sdp_ids=sdp_ids,
            tls_prot_type=settings.tls_prot_type,
        )
    except (MikeyError, ValueError) as exc:
        raise KeyingError(
            "cannot derive the leg key from the resolved ticket", err_code=ErrCode.UNSPECIFIED
        ) from exc
    key = LegKey(
        psk=psk,
        cs_id=request.cs_id,
        spi=request.spi,
        suite=ti.suite,
        initiator=ti.initiator,
        responder=request.responder,
        warnings=request.warnings,
    )
    return ResponderResult(transfer_resp=transfer_resp, key=key)


# ------------------------------------------------------------------------- initiator


def start_initiator(
    grant: TicketGrant,
    *,
    initiator: str,
    responder: str,
    now: float,
    csb_id: int,
    rand: bytes,
    cs_id: int = 1,
    sdp_ids: str = MIKEY_PROTOCOL_ID,
    settings: KeyingSettings = KeyingSettings(),
) -> TransferOffer:
    """TRANSFER_INIT for an offer (PROFILE §5). ``rand`` is RANDRi (16 bytes, or the
    suite's key length when longer: PROFILE §2), ``csb_id`` a fresh random CSB ID."""
    if not any(same_identity(r, responder) for r in grant.responders):
        raise KeyingError("the ticket does not name the responder", err_code=ErrCode.INVALID_ID)
    # RFC 6043 §4.2.1.6: the initiator MUST check the granted policy. The PSK derivation
    # (PROFILE §7) uses RANDRi and RANDRr (G, H) and awaits a TRANSFER_RESP (F); forking
    # (I) is not part of the profile.
    flags = grant.ticket_policy.flags
    missing = [f.name for f in (TicketFlags.F, TicketFlags.G, TicketFlags.H) if not flags & f]
    if missing or flags & TicketFlags.I:
        what = f"lacks flag(s) {', '.join(str(m) for m in missing)}" if missing else "forks keys"
        raise KeyingError(
            f"the granted ticket policy {what} (PROFILE §4)", err_code=ErrCode.INVALID_TPPAR
        )
    try:
        transfer_init = build_transfer_init(
            grant=grant,
            initiator=initiator,
            responder=responder,
            now=now,
            csb_id=csb_id,
            rand=rand,
            cs_ids=(cs_id,),
            sdp_ids=sdp_ids,
            tls_prot_type=settings.tls_prot_type,
        )
    except MikeyError as exc:
        # Keep mikey's own ERR (e.g. 1 for a ticket outside its validity) for the log.
        raise KeyingError(
            f"cannot build a TRANSFER_INIT from the ticket: {exc}", err_code=exc.err_code
        ) from exc
    except ValueError as exc:
        raise KeyingError(
            "cannot build a TRANSFER_INIT from the ticket", err_code=ErrCode.UNSPECIFIED
        ) from exc
    return TransferOffer(
        transfer_init=transfer_init,
        grant=grant,
        initiator=initiator,
        responder=responder,
        cs_id=cs_id,
        sdp_ids=sdp_ids,
        rand_i=rand,
    )


def complete_initiator(
    offer: TransferOffer,
    transfer_resp: bytes,
    *,
    now: float,
    replay_cache: ReplayCache | None = None,
    settings: KeyingSettings = KeyingSettings(),
) -> LegKey:
    """Verify the TRANSFER_RESP of the answer and derive the leg's PSK.

    The MAC (MPKi, RFC 6043 §5.5) proves the answer came from a holder of the resolved
    ticket; IDRr, when present, must be the responder we called (PROFILE §1) — 403
    otherwise.  Without IDRr (RFC 6043 allows omitting it) the answer is accepted only
    when the ticket names that one responder, so the KMS vouched for who resolved it.
    """
    what = "TRANSFER_RESP"
    try:
        resp = verify_transfer_resp(
            transfer_resp,
            transfer_init=offer.transfer_init,
            mpki=offer.grant.mpki,
            now=now,
            max_skew=settings.max_clock_skew,
            replay_cache=replay_cache,
        )
    except MikeyError as exc:
        raise _from_mikey(exc, what) from None
    if resp.responder is None:
        if len(offer.grant.responders) != 1:
            raise KeyingError(
                "TRANSFER_RESP names no responder and the ticket names several",
                sip_status=403,
                err_code=ErrCode.INVALID_ID,
            )
        responder = offer.responder
    elif not same_identity(resp.responder, offer.responder):
        raise KeyingError(
            "the MIKEY responder identity is not the party called",
            sip_status=403,
            err_code=ErrCode.INVALID_ID,
        )
    else:
        responder = resp.responder
    cs = next((c for c in resp.crypto_sessions if c.cs_id == offer.cs_id), None)
    if cs is None or cs.spi != offer.grant.spi:
        raise KeyingError(
            "TRANSFER_RESP does not confirm the offered crypto session",
            err_code=ErrCode.INVALID_SPPAR,
        )
    if cs.prot_type != settings.tls_prot_type:
        raise KeyingError("TRANSFER_RESP crypto session is not TLS", err_code=ErrCode.INVALID_SP)
    warnings = _sdp_ids_warnings(resp.sdp_ids, offer.sdp_ids, what)
    psk = derive_tls_psk(
        tgk=offer.grant.tgk,
        cs_id=offer.cs_id,
        rand_i=offer.rand_i,
        rand_r=resp.rand_r,
        suite=offer.grant.suite,
    )
    return LegKey(
        psk=psk,
        cs_id=offer.cs_id,
        spi=offer.grant.spi,
        suite=offer.grant.suite,
        initiator=offer.initiator,
        responder=responder,
        warnings=warnings,
    )
