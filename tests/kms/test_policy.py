"""The KMS decides the granted Ticket Policy (RFC 6043 sections 4.2.1.4-5, 6.10)."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mikey
from kms import Rejection
from mikey.ntp import from_ntp64, to_ntp32, to_ntp64
from mikey.payloads import (
    Idr,
    IdRole,
    IdType,
    Kemac,
    KeyData,
    KeyType,
    KvSpi,
    Message,
    Ticket,
    TicketFlags,
    TicketPolicy,
    TimestampR,
    TsRole,
    TsType,
    encode_key_data,
)

from .conftest import ALICE, BOB, KEYS, KMS_ID, NOW, Kms

K = TicketFlags.K
SETTINGS = settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
_csb = iter(range(1000, 10**6))


def desired(**changes: object) -> TicketPolicy:
    """The policy PROFILE.md section 4 requests, with *changes*."""
    tp = mikey.request_policy(initiator=ALICE, responders=[BOB], valid_until=NOW + 3600)
    return attrs.evolve(tp, **changes)


def ask(kms: Kms, policy: TicketPolicy, *, suite: mikey.Suite = mikey.SUITE_128) -> TicketPolicy:
    """Send a REQUEST_INIT_PSK with *policy* to the engine; return the granted policy."""
    body = mikey.build_request_init(
        psk=KEYS[ALICE],
        initiator=ALICE,
        kms=KMS_ID,
        responders=[BOB],
        now=NOW,
        csb_id=next(_csb),
        rand=bytes(range(suite.rand_len)),
        suite=suite,
        ticket_policy=policy,
    )
    reply = kms.engine.request(body, now=NOW)
    ticket = Message.decode(reply.body).first(Ticket)
    assert ticket is not None
    return ticket.policy


def test_profile_request_is_granted_unchanged(kms: Kms) -> None:
    """The PROFILE.md request gets exactly its flags back, K=0, type 1/1/1."""
    got = ask(kms, desired())
    assert got.flags == mikey.PROFILE_FLAGS
    assert (got.ticket_type, got.subtype, got.version) == (1, 1, 1)


def test_forking_is_not_granted(kms: Kms) -> None:
    """I=1 is granted as I=0 with K=1: this KMS sends no MPKr (section 4.2.1.5)."""
    got = ask(kms, desired(flags=mikey.PROFILE_FLAGS | TicketFlags.I))
    assert got.flags == mikey.PROFILE_FLAGS | K


@pytest.mark.parametrize(
    "flags",
    [
        TicketFlags.E
        | TicketFlags.F
        | TicketFlags.G
        | TicketFlags.H
        | TicketFlags.L
        | TicketFlags.N
        | TicketFlags.O,  # D=0, L=1
        (mikey.PROFILE_FLAGS & ~TicketFlags.G) | TicketFlags.J,  # G=0, J=1
        mikey.PROFILE_FLAGS | TicketFlags.M,
        TicketFlags(0),
    ],
    ids=["D0-L1", "G0-J1", "M1", "none"],
)
def test_other_flags_are_replaced_by_the_profile_flags_with_k(kms: Kms, flags: TicketFlags) -> None:
    """Requested flags other than D E F G H N O are granted as exactly those, with K=1."""
    assert ask(kms, desired(flags=flags)).flags == mikey.PROFILE_FLAGS | K


def test_requested_k_is_ignored(kms: Kms) -> None:
    """K in the desired policy is ignored (section 6.10): the grant is unchanged, K=0."""
    assert ask(kms, desired(flags=mikey.PROFILE_FLAGS | K)).flags == mikey.PROFILE_FLAGS


def test_other_ticket_type_is_granted_as_base_ticket_with_k(kms: Kms) -> None:
    """A request for ticket type 2 gets the MIKEY base ticket 1/1/1 and K=1."""
    got = ask(kms, desired(ticket_type=2, subtype=7, version=3))
    assert (got.ticket_type, got.subtype, got.version) == (1, 1, 1)
    assert got.flags == mikey.PROFILE_FLAGS | K


@SETTINGS
@given(bits=st.integers(0, 0xFFF))
def test_granted_flags_are_the_profile_flags_and_k_tells_a_change(kms: Kms, bits: int) -> None:
    """For any requested flags the grant is D E F G H N O, with K exactly when they differ."""
    requested = TicketFlags(bits << 5)
    got = ask(kms, desired(flags=requested))
    changed = (requested & ~K) != mikey.PROFILE_FLAGS
    assert got.flags == (mikey.PROFILE_FLAGS | K if changed else mikey.PROFILE_FLAGS)


@pytest.mark.parametrize("suite", [mikey.SUITE_128, mikey.SUITE_256], ids=["128", "256"])
def test_granted_prf_is_the_request_suite(kms: Kms, suite: mikey.Suite) -> None:
    """The TP PRF Func is granted as the request's suite PRF, K=1 when another was asked."""
    other = 1 - suite.prf
    assert ask(kms, desired(prf=suite.prf, payloads=_tp_data(suite)), suite=suite).flags == (
        mikey.PROFILE_FLAGS
    )
    got = ask(kms, desired(prf=other, payloads=_tp_data(suite)), suite=suite)
    assert (got.prf, got.flags) == (suite.prf, mikey.PROFILE_FLAGS | K)


def _tp_data(suite: mikey.Suite, kemac: Kemac | str | None = "default") -> tuple[object, ...]:
    """PROFILE TP Data for *suite*, with the announcing KEMAC replaced (None: left out)."""
    tp = mikey.request_policy(
        initiator=ALICE, responders=[BOB], valid_until=NOW + 3600, suite=suite
    )
    if kemac == "default":
        return tp.payloads
    return tuple(q for p in tp.payloads for q in ((kemac,) if isinstance(p, Kemac) else (p,)) if q)


def _announce(*keys: tuple[int, int]) -> Kemac:
    data = [KeyData(t, bytes(n), KvSpi(bytes(4))) for t, n in keys]
    return Kemac(0, encode_key_data(data))


@pytest.mark.parametrize(
    ("kemac", "changed"),
    [
        (None, False),
        (_announce((KeyType.TGK, 16)), False),
        (_announce((KeyType.TGK, 32)), True),
        (_announce((KeyType.TGK, 16), (KeyType.TGK, 16)), True),
        (_announce((KeyType.TEK, 16)), True),
        (Kemac(0, b"\x00\x01"), True),
    ],
    ids=["absent", "one-TGK", "long-TGK", "two-TGKs", "TEK", "garbled"],
)
def test_k_tells_a_changed_kemac(kms: Kms, kemac: Kemac | None, changed: bool) -> None:
    """K=1 when the desired KEMAC asks for keys other than the one TGK of the suite."""
    got = ask(kms, desired(payloads=_tp_data(mikey.SUITE_128, kemac)))
    assert got.flags == (mikey.PROFILE_FLAGS | K if changed else mikey.PROFILE_FLAGS)
    assert not [p for p in got.payloads if isinstance(p, Kemac)]


def test_granted_tickets_resolve(kms: Kms) -> None:
    """A ticket granted with a changed policy (K=1) still resolves for its responder."""
    body = mikey.build_request_init(
        psk=KEYS[ALICE],
        initiator=ALICE,
        kms=KMS_ID,
        responders=[BOB],
        now=NOW,
        csb_id=42,
        rand=bytes(16),
        ticket_policy=desired(flags=mikey.PROFILE_FLAGS | TicketFlags.I | TicketFlags.J),
    )
    grant = mikey.read_request_resp(
        kms.engine.request(body, now=NOW).body, request_init=body, psk=KEYS[ALICE], now=NOW
    )
    assert grant.ticket_policy.flags & K
    resolve = mikey.build_resolve_init(
        psk=KEYS[BOB],
        responder=BOB,
        kms=KMS_ID,
        ticket=grant.ticket,
        now=NOW,
        csb_id=43,
        rand_r=bytes(range(16)),
    )
    resolved = mikey.read_resolve_resp(
        kms.engine.resolve(resolve, now=NOW).body, resolve_init=resolve, psk=KEYS[BOB], now=NOW
    )
    assert (resolved.tgk, resolved.spi) == (grant.tgk, grant.spi)


def test_policy_without_responder_is_refused_with_err_15(kms: Kms) -> None:
    """No IDRr means no usable grant: 400 with ERR 15."""
    tp = desired()
    tp = attrs.evolve(tp, payloads=tuple(p for p in tp.payloads[:-1]))
    with pytest.raises(Rejection) as info:
        ask(kms, tp)
    assert (info.value.http_status, info.value.err_code) == (400, 15)


def test_request_and_resolve_without_idrkms_are_answered(kms: Kms) -> None:
    """IDRkms left out (RFC 6043 §4.2.1.1, §4.2.3.1): the MAC over our identity is accepted."""
    body = mikey.build_request_init(
        psk=KEYS[ALICE],
        initiator=ALICE,
        kms=KMS_ID,
        responders=[BOB],
        now=NOW,
        csb_id=44,
        rand=bytes(16),
        send_kms_id=False,
    )
    grant = mikey.read_request_resp(
        kms.engine.request(body, now=NOW).body, request_init=body, psk=KEYS[ALICE], now=NOW
    )
    resolve = mikey.build_resolve_init(
        psk=KEYS[BOB],
        responder=BOB,
        kms=KMS_ID,
        ticket=grant.ticket,
        now=NOW,
        csb_id=45,
        rand_r=bytes(range(16)),
        send_kms_id=False,
    )
    resolved = mikey.read_resolve_resp(
        kms.engine.resolve(resolve, now=NOW).body, resolve_init=resolve, psk=KEYS[BOB], now=NOW
    )
    assert resolved.tgk == grant.tgk


def test_request_without_idrkms_for_another_kms_fails_authentication(kms: Kms) -> None:
    """A request MACed over another KMS identity, IDRkms left out, is 403 with ERR 0."""
    body = mikey.build_request_init(
        psk=KEYS[ALICE],
        initiator=ALICE,
        kms="sip:kms@elsewhere.example",
        responders=[BOB],
        now=NOW,
        csb_id=46,
        rand=bytes(16),
        send_kms_id=False,
    )
    with pytest.raises(Rejection) as info:
        kms.engine.request(body, now=NOW)
    assert (info.value.http_status, info.value.err_code) == (403, 0)


# --- validity (TRs, TRe): capped, never refused unless nothing usable is left -------------

DAY = 86400.0


def _times(tp: TicketPolicy) -> tuple[TimestampR | None, TimestampR | None]:
    return tp.time(TsRole.VALID_FROM), tp.time(TsRole.VALID_TO)


def _with_times(*times: TimestampR) -> TicketPolicy:
    """The PROFILE TP with its TRe replaced by *times* (none: open-ended)."""
    tp = desired()
    rest = tuple(p for p in tp.payloads if not isinstance(p, TimestampR))
    return attrs.evolve(tp, payloads=(rest[0], *times, *rest[1:]))


def _tr(role: TsRole, at: float, ts_type: TsType = TsType.NTP_UTC) -> TimestampR:
    value = to_ntp32(at) if ts_type == TsType.NTP_UTC_32 else to_ntp64(at)
    return TimestampR(role, ts_type, value)


@pytest.mark.parametrize("tre", [None, NOW + 2 * DAY], ids=["open-ended", "too-long"])
def test_missing_or_overlong_tre_is_capped_with_k(kms: Kms, tre: float | None) -> None:
    """No TRe, or one beyond max_ticket_lifetime, is granted as now + the maximum, K=1."""
    times = () if tre is None else (_tr(TsRole.VALID_TO, tre),)
    got = ask(kms, _with_times(*times))
    _, end = _times(got)
    assert end is not None and end.ts_type == TsType.NTP_UTC
    assert from_ntp64(end.value) == pytest.approx(NOW + DAY, abs=1e-6)
    assert got.flags == mikey.PROFILE_FLAGS | K
    # Section 6.10 order: IDRi, TRe, then the rest.
    assert [type(p).__name__ for p in got.payloads] == ["Idr", "TimestampR", "Idr"]


def test_tre_within_the_maximum_is_kept_to_the_bit(kms: Kms) -> None:
    """A TRe with a fraction of a second is granted unchanged, K=0 (no float round trip)."""
    tre = _tr(TsRole.VALID_TO, NOW + 1234.56789)
    got = ask(kms, _with_times(tre))
    assert _times(got) == (None, tre) and got.flags == mikey.PROFILE_FLAGS


def test_other_ntp_types_are_granted_as_ntp_utc_with_k(kms: Kms) -> None:
    """A TRe in NTP-UTC-32 is granted as the same instant in NTP-UTC (TS type 0), K=1."""
    got = ask(kms, _with_times(_tr(TsRole.VALID_TO, NOW + 600, TsType.NTP_UTC_32)))
    assert _times(got)[1] == _tr(TsRole.VALID_TO, NOW + 600)
    assert got.flags == mikey.PROFILE_FLAGS | K


def test_trs_before_tre_is_kept(kms: Kms) -> None:
    """A TRs before the granted TRe is granted unchanged with the TRe, K=0."""
    start, end = _tr(TsRole.VALID_FROM, NOW + 60), _tr(TsRole.VALID_TO, NOW + 600)
    got = ask(kms, _with_times(start, end))
    assert _times(got) == (start, end) and got.flags == mikey.PROFILE_FLAGS


@pytest.mark.parametrize(
    "times",
    [
        (_tr(TsRole.VALID_TO, NOW - 1),),
        (_tr(TsRole.VALID_FROM, NOW + 700), _tr(TsRole.VALID_TO, NOW + 600)),
        (_tr(TsRole.VALID_FROM, NOW + 2 * DAY),),
    ],
    ids=["TRe-past", "TRs-after-TRe", "TRs-after-cap"],
)
def test_no_usable_validity_is_refused_with_err_15(kms: Kms, times: tuple[TimestampR]) -> None:
    """Only when no validity period is left (TRe past, TRs at/after TRe) is it 400 + ERR 15."""
    with pytest.raises(Rejection) as info:
        ask(kms, _with_times(*times))
    assert (info.value.http_status, info.value.err_code) == (400, 15)


def test_request_with_crypto_sessions_is_400_err_12(kms: Kms) -> None:
    """#CS must be 0 in REQUEST_INIT (RFC 6043 §4.2.1.1): 400 with ERR 12 before any key use."""
    body = bytearray(
        mikey.build_request_init(
            psk=KEYS[ALICE],
            initiator=ALICE,
            kms=KMS_ID,
            responders=[BOB],
            now=NOW,
            csb_id=47,
            rand=bytes(16),
        )
    )
    body[8] = 1  # #CS (RFC 3830 §6.1); the Empty map has no map info to follow
    with pytest.raises(Rejection) as info:
        kms.engine.request(bytes(body), now=NOW)
    assert (info.value.http_status, info.value.err_code) == (400, 12)


# --- IDRi: the authenticated requester, nobody else -----------------------------------------


def _idri(tp: TicketPolicy) -> tuple[bytes, ...]:
    return tp.identities(IdRole.INITIATOR)


@pytest.mark.parametrize(
    "initiators",
    [(BOB,), (), (ALICE, BOB), ("sip:ALICE@example.net",)],
    ids=["other", "none", "two", "other-user-case"],
)
def test_granted_idri_is_the_authenticated_requester(kms: Kms, initiators: tuple[str]) -> None:
    """Whatever IDRi the desired TP names, the grant names exactly the requester, K=1."""
    tp = desired()
    rest = tuple(p for p in tp.payloads if not (isinstance(p, Idr) and p.role == IdRole.INITIATOR))
    others = tuple(Idr(IdRole.INITIATOR, IdType.URI, i.encode()) for i in initiators)
    got = ask(kms, attrs.evolve(tp, payloads=(*others, *rest)))
    assert _idri(got) == (ALICE.encode(),)
    assert isinstance(got.payloads[0], Idr) and got.payloads[0].role == IdRole.INITIATOR
    assert got.flags == mikey.PROFILE_FLAGS | K
