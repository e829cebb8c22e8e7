"""The initiator checks the granted Ticket Policy before using a ticket (RFC 6043 §4.2.1.6)."""

from __future__ import annotations

import attrs
import pytest

import mikey
from mikey.payloads import TicketFlags, TimestampR, TsRole, TsType

from ._kms import MiniKms
from .conftest import ALICE, BOB, KMS, NOW

PSK_I, PSK_R, TPK = bytes([0xA1]) * 16, bytes([0xB2]) * 16, bytes([0x77]) * 16


def granted(policy: mikey.TicketPolicy, *, read_at: float = NOW + 2) -> mikey.TicketGrant:
    """A REQUEST_RESP from a KMS that grants *policy* exactly, read by our initiator."""
    kms = MiniKms(KMS, {ALICE: PSK_I, BOB: PSK_R}, TPK)
    ri = mikey.build_request_init(
        psk=PSK_I,
        initiator=ALICE,
        kms=KMS,
        responders=[BOB],
        now=NOW,
        csb_id=7,
        rand=bytes(16),
        ticket_policy=policy,
    )
    rr = kms.request(
        ri, now=NOW + 1, mpk=bytes(16), tgk=bytes(range(16)), spi=b"\0\0\0\1", rand=bytes(16)
    )
    return mikey.read_request_resp(rr, request_init=ri, psk=PSK_I, now=read_at)


def policy(
    flags: TicketFlags = mikey.PROFILE_FLAGS, *, valid_until: float = NOW + 3600
) -> mikey.TicketPolicy:
    tp = mikey.request_policy(initiator=ALICE, responders=[BOB], valid_until=valid_until)
    return attrs.evolve(tp, flags=flags)


def transfer_init(grant: mikey.TicketGrant, *, responder: str = BOB, now: float = NOW + 3) -> bytes:
    return mikey.build_transfer_init(
        grant=grant, initiator=ALICE, responder=responder, now=now, csb_id=9, rand=bytes(16)
    )


@pytest.mark.parametrize("flag", ["F", "G", "H", "N", "O"])
def test_grant_lacking_a_profile_flag_is_refused_with_err_15(flag: str) -> None:
    """Without F, G, H, N or O the grant cannot be used by our initiator: PolicyError ERR 15."""
    with pytest.raises(mikey.PolicyError) as info:
        granted(policy(mikey.PROFILE_FLAGS & ~TicketFlags[flag]))
    assert info.value.err_code == mikey.ErrCode.INVALID_TPPAR


def test_forking_grant_is_refused_with_err_15() -> None:
    """A grant with I=1 (key forking) is refused: ERR 15."""
    with pytest.raises(mikey.PolicyError) as info:
        granted(policy(mikey.PROFILE_FLAGS | TicketFlags.I))
    assert info.value.err_code == mikey.ErrCode.INVALID_TPPAR


@pytest.mark.parametrize(
    "extra",
    [TicketFlags.K, TicketFlags.K | TicketFlags.J, TicketFlags.L | TicketFlags.M],
    ids=["K", "KJ", "LM"],
)
def test_changed_but_usable_grant_is_accepted(extra: TicketFlags) -> None:
    """K=1 (the KMS changed the policy) and permissions we do not use are accepted."""
    grant = granted(policy(mikey.PROFILE_FLAGS | extra))
    assert grant.ticket_policy.flags & extra == extra
    assert mikey.peek_transfer_init(transfer_init(grant)).responder == BOB


def test_grant_expired_on_arrival_is_refused() -> None:
    """A TRe further in the past than the clock skew is refused when the grant is read."""
    with pytest.raises(mikey.PolicyError) as info:
        granted(policy(valid_until=NOW - 301), read_at=NOW)
    assert info.value.err_code == mikey.ErrCode.INVALID_TPPAR


def test_grant_expiring_within_the_skew_is_read_but_not_used_after_tre() -> None:
    """A TRe within the skew is read; building a TRANSFER_INIT after TRe is refused (ERR 1)."""
    grant = granted(policy(valid_until=NOW - 10), read_at=NOW)
    with pytest.raises(mikey.TimestampError):
        transfer_init(grant, now=NOW)


def test_ticket_not_yet_valid_is_not_used() -> None:
    """Before the ticket's TRs no TRANSFER_INIT is built (the responder would refuse it)."""
    tp = policy()
    trs = TimestampR(TsRole.VALID_FROM, TsType.NTP_UTC, mikey.ntp.to_ntp64(NOW + 600))
    grant = granted(attrs.evolve(tp, payloads=(tp.payloads[0], trs, *tp.payloads[1:])))
    with pytest.raises(mikey.TimestampError):
        transfer_init(grant, now=NOW + 3)
    assert transfer_init(grant, now=NOW + 601)


def test_transfer_resp_without_spi_is_refused() -> None:
    """A TRANSFER_RESP whose CS map leaves the SPI empty is refused (RFC 6043 §6.1.1: the
    SPI MUST be provided in the response), although its MAC verifies."""
    grant = attrs.evolve(granted(policy()), spi=b"")
    ti = transfer_init(grant)
    tr = mikey.build_transfer_resp(
        transfer_init=ti, mpki=grant.mpki, responder=BOB, rand_r=bytes(16), now=NOW + 4
    )
    with pytest.raises(mikey.PolicyError) as info:
        mikey.verify_transfer_resp(tr, transfer_init=ti, mpki=grant.mpki, now=NOW + 5)
    assert info.value.err_code == mikey.ErrCode.INVALID_SPPAR
