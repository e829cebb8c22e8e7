"""The MIKEY side of the KMS: ticket requests and resolves (RFC 6043, PROFILE.md 4 and 6).

Order of checks, RFC 3830 section 5.3 as refined by RFC 6043 section 5.3/5.4:

1. decode (400 + the decode ERR, usually 12);
2. find the key: by IDRpsk when present, else by IDRi / IDRr (PROFILE.md section 3);
3. timestamp within the clock skew (409, ERR 1), MAC (403, ERR 0), then the replay
   cache, which remembers only authenticated messages (409, ERR 1);
4. authorisation: the message is for this KMS (IDRkms; when it is left out, RFC 6043
   sections 4.2.1.1 and 4.2.3.1, the MAC covered our identity), the key may act as
   IDRi / IDRr (`may_act_as`, PROFILE.md section 6) (403, ERR 7);
5. request: a usable policy can be granted (400, ERR 15); the granted policy is the
   one ``_policy`` describes, with K=1 when it differs from the desired one (RFC 6043
   sections 4.2.1.4-5, 6.10); resolve: the ticket is ours and intact (403, ERR 14),
   valid now (TRs..TRe, 403 ERR 14) and names a responder the key may act as (403,
   ERR 7).

Authorisation comes after authentication on purpose: an unauthenticated sender learns
nothing about who may act as whom.
"""

from __future__ import annotations

from collections.abc import Callable

from mikey import (
    AuthenticationError,
    ErrCode,
    MikeyError,
    ReplayCache,
    TimestampError,
    build_error,
    build_error_for,
    build_request_resp,
    build_resolve_resp,
    derive_mpki,
    open_base_ticket,
    peek_request_init,
    peek_resolve_init,
    seal_base_ticket,
    verify_request_init,
    verify_resolve_init,
)
from mikey.ntp import from_ntp64
from mikey.payloads import IdRole, TicketFlags, TicketPolicy, TsRole, TsType

from ._accounts import Account, AccountStore, AmbiguousIdentity
from ._errors import Rejection
from ._identity import normalise_uri
from ._policy import NoUsableGrant, grant_policy
from ._resource import Reply

__all__ = ["MikeyTicketEngine"]

_SPI_LEN = 4  # PROFILE.md section 2: every key carries a 4-byte SPI


def _status_for(error: MikeyError) -> int:
    """PROFILE.md section 3: 409 for replay / time window, 403 for authentication, 400 else."""
    if isinstance(error, TimestampError):
        return 409
    if isinstance(error, AuthenticationError):
        return 403
    return 400


class MikeyTicketEngine:
    """Issues base tickets (RFC 6043 Appendix A) and resolves them; owns the replay cache.

    The ticket protection key (TPK) seals every ticket; tickets issued under another TPK
    (for example before a restart with a generated TPK) do not resolve (ERR 14).
    """

    def __init__(
        self,
        *,
        identity: str,
        accounts: AccountStore,
        ticket_protection_key: bytes,
        random_bytes: Callable[[int], bytes],
        max_clock_skew: float = 300.0,
        max_ticket_lifetime: float = 86400.0,
        replay_cache_size: int = 100_000,
    ) -> None:
        self.identity = identity
        self._kms_uri = normalise_uri(identity)
        self._accounts = accounts
        self._tpk = ticket_protection_key
        self._random = random_bytes
        self._skew = max_clock_skew
        self._lifetime = max_ticket_lifetime
        self._replay = ReplayCache(max_entries=replay_cache_size, max_skew=max_clock_skew)

    def replace_accounts(self, accounts: AccountStore) -> None:
        self._accounts = accounts

    # ------------------------------------------------------------------ common checks

    def _account(self, psk_id: bytes | None, uri: str) -> Account:
        if psk_id is not None:
            account = self._accounts.by_psk_id(psk_id)
            if account is None:
                raise Rejection(
                    "IDRpsk names no account", http_status=403, err_code=ErrCode.AUTH_FAILURE
                )
            return account
        try:
            account = self._accounts.for_identity(uri)
        except AmbiguousIdentity:
            raise Rejection(
                "several accounts may act as this identity; send IDRpsk",
                http_status=403,
                err_code=ErrCode.INVALID_ID,
                identity=uri,
            ) from None
        if account is None:
            raise Rejection(
                "no account for this identity",
                http_status=403,
                err_code=ErrCode.AUTH_FAILURE,
                identity=uri,
            )
        return account

    def _assumed_kms(self, sent: str | None) -> str | None:
        """The identity to verify the MAC with when IDRkms was left out (RFC 6043
        sections 4.2.1.1 and 4.2.3.1 "MAY be left out when it can be expected that the
        KMS has a single identity"): ours, as configured, appended to the MAC input
        (section 5.5). When IDRkms is present the MAC covers it as sent and `_for_us`
        compares it with ours after authentication."""
        return self.identity if sent is None else None

    def _for_us(self, kms: str | None, who: str) -> None:
        if kms is None:
            return  # left out: the MAC was checked over our own identity
        try:
            ours = normalise_uri(kms) == self._kms_uri
        except ValueError:
            ours = False
        if not ours:
            raise Rejection(
                "IDRkms names another KMS",
                http_status=403,
                err_code=ErrCode.INVALID_ID,
                identity=who,
            )

    def _may_act_as(self, account: Account, uri: str, role: str) -> None:
        if not account.may_act_as_uri(uri):
            raise Rejection(
                f"key of {account.identity} may not act as {role} {uri}",
                http_status=403,
                err_code=ErrCode.INVALID_ID,
                identity=uri,
            )

    @staticmethod
    def _rejected(error: MikeyError, what: str, identity: str | None) -> Rejection:
        return Rejection(
            f"{what}: {error}",
            http_status=_status_for(error),
            err_code=int(error.err_code),
            identity=identity,
        )

    # ---------------------------------------------------------------- ticket request

    def request(self, body: bytes, *, now: float) -> Reply:
        """REQUEST_INIT_PSK -> REQUEST_RESP with a fresh base ticket (RFC 6043 section 4.2.1)."""
        try:
            peeked = peek_request_init(body)
        except MikeyError as e:
            raise self._rejected(e, "malformed REQUEST_INIT", None) from None
        account = self._account(peeked.psk_id, peeked.initiator)
        try:
            init = verify_request_init(
                body,
                psk=account.key,
                now=now,
                max_skew=self._skew,
                replay_cache=self._replay,
                kms=self._assumed_kms(peeked.kms),
            )
        except MikeyError as e:
            raise self._rejected(e, "REQUEST_INIT refused", peeked.initiator) from None
        self._for_us(init.kms, init.initiator)
        self._may_act_as(account, init.initiator, "initiator")
        try:
            granted = grant_policy(init, now=now, max_lifetime=self._lifetime)
        except NoUsableGrant as e:
            raise Rejection(
                str(e), http_status=400, err_code=ErrCode.INVALID_TPPAR, identity=init.initiator
            ) from None
        suite = init.suite
        # RFC 6043 Appendix A.2: MPK and TGK of the suite's key length, RAND at least
        # 16 bytes and as long as the longest key (section 12.1, PROFILE.md section 2).
        mpk = self._random(suite.key_len)
        tgk = self._random(suite.key_len)
        spi = self._random(_SPI_LEN)
        rand = self._random(max(16, suite.key_len))
        try:
            ticket = seal_base_ticket(
                tpk=self._tpk,
                ticket_policy=granted,
                mpk=mpk,
                tgk=tgk,
                spi=spi,
                now=now,
                rand=rand,
                suite=suite,
            )
            response = build_request_resp(
                request_init=body,
                psk=account.key,
                kms=self.identity,
                ticket=ticket,
                mpki=derive_mpki(mpk=mpk, rand=rand, suite=suite),
                tgk=tgk,
                spi=spi,
                now=now,
            )
        except MikeyError as e:
            raise self._rejected(
                e, "cannot issue a ticket for this policy", init.initiator
            ) from None
        return Reply(
            body=response,
            identity=init.initiator,
            detail=f"responders={len(init.responders)} valid_for={_valid_for(granted, now)}"
            + (" policy_changed" if granted.flags & TicketFlags.K else ""),
        )

    # ---------------------------------------------------------------- ticket resolve

    def resolve(self, body: bytes, *, now: float) -> Reply:
        """RESOLVE_INIT_PSK -> RESOLVE_RESP (RFC 6043 section 4.2.3, PROFILE.md section 6)."""
        try:
            peeked = peek_resolve_init(body)
        except MikeyError as e:
            raise self._rejected(e, "malformed RESOLVE_INIT", None) from None
        account = self._account(peeked.psk_id, peeked.responder)
        try:
            init = verify_resolve_init(
                body,
                psk=account.key,
                now=now,
                max_skew=self._skew,
                replay_cache=self._replay,
                kms=self._assumed_kms(peeked.kms),
            )
        except MikeyError as e:
            raise self._rejected(e, "RESOLVE_INIT refused", peeked.responder) from None
        who = init.responder
        self._for_us(init.kms, who)
        self._may_act_as(account, who, "responder")
        try:
            contents = open_base_ticket(init.ticket, tpk=self._tpk)
        except MikeyError as e:
            # Not sealed by us, altered, or of a type we do not issue: RFC 6043 section 6.9.
            raise Rejection(
                f"ticket not valid here: {e}",
                http_status=403,
                err_code=ErrCode.INVALID_TICKET,
                identity=who,
            ) from None
        try:
            responders, valid_from, valid_until = _validity(contents.policy)
        except ValueError as e:
            raise Rejection(
                str(e), http_status=403, err_code=ErrCode.INVALID_TICKET, identity=who
            ) from None
        if valid_until is not None and now > valid_until:
            raise Rejection(
                "ticket expired (TRe)",
                http_status=403,
                err_code=ErrCode.INVALID_TICKET,
                identity=who,
            )
        if valid_from is not None and now < valid_from:
            raise Rejection(
                "ticket not yet valid (TRs)",
                http_status=403,
                err_code=ErrCode.INVALID_TICKET,
                identity=who,
            )
        # PROFILE.md section 6: only a key authorised for one of the ticket's IDRr.
        if not any(account.may_act_as_uri(r) for r in responders):
            raise Rejection(
                f"key of {account.identity} is not authorised for any responder of the ticket",
                http_status=403,
                err_code=ErrCode.INVALID_ID,
                identity=who,
            )
        try:
            response = build_resolve_resp(
                resolve_init=body,
                psk=account.key,
                kms=self.identity,
                responder=who,
                mpki=contents.mpki,
                tgk=contents.tgk,
                spi=contents.spi,
                now=now,
            )
        except MikeyError as e:
            raise self._rejected(e, "cannot answer this resolve", who) from None
        return Reply(body=response, identity=who, detail="")

    # ------------------------------------------------------------------------- errors

    def error_message(self, rejection: Rejection, *, failed: bytes, now: float) -> bytes:
        """The MIKEY Error (RFC 6043 section 5.4) for the HTTP 4xx body (PROFILE.md 3).

        It copies the PRF and CSB ID of the failed message when its header is readable,
        else uses CSB ID 0. It is not authenticated (RFC 3830 section 5.1.2).
        """
        error = build_error_for(failed, err_code=rejection.err_code, now=now)
        if error is None:
            error = build_error(err_code=rejection.err_code, csb_id=0, prf=0, now=now)
        return error


def _valid_for(policy: TicketPolicy, now: float) -> str:
    tre = policy.time(TsRole.VALID_TO)
    return "unbounded" if tre is None else f"{from_ntp64(tre.value) - now:.0f}s"


def _validity(policy: TicketPolicy) -> tuple[tuple[str, ...], float | None, float | None]:
    """The granted policy's responders (IDRr) and validity window (TRs, TRe).

    Only NTP-UTC times are understood: that is what PROFILE.md section 4 requests and
    what this KMS seals; anything else cannot come from a ticket we issued (ERR 14).
    """
    responders = tuple(d.decode("utf-8", "replace") for d in policy.identities(IdRole.RESPONDER))
    times: list[float | None] = []
    for role in (TsRole.VALID_FROM, TsRole.VALID_TO):
        tr = policy.time(role)
        if tr is None:
            times.append(None)
        elif tr.ts_type == TsType.NTP_UTC:
            times.append(from_ntp64(tr.value))
        else:
            raise ValueError(f"ticket validity in TS type {tr.ts_type}, not NTP-UTC")
    return responders, times[0], times[1]
