"""The MIKEY base ticket of RFC 6043 Appendix A (seal and open for the KMS)."""

from __future__ import annotations

import attrs
import pytest

import mikey
from mikey import crypto
from mikey.payloads import Kemac, Message, Rand, Ticket, Timestamp, decode_key_data

from .conftest import ALICE, BOB, NOW

TPK = bytes(range(0x40, 0x50))
MPK, TGK, SPI, RAND = b"M" * 16, b"G" * 16, b"\x00\x00\x01\x00", bytes(range(16))


def policy(suite: mikey.Suite = mikey.SUITE_128) -> mikey.TicketPolicy:
    return mikey.request_policy(
        initiator=ALICE, responders=[BOB], valid_until=NOW + 3600, suite=suite
    )


def seal(**kw: object) -> bytes:
    args: dict[str, object] = {
        "tpk": TPK,
        "ticket_policy": policy(),
        "mpk": MPK,
        "tgk": TGK,
        "spi": SPI,
        "now": NOW,
        "rand": RAND,
        "suite": mikey.SUITE_128,
    }
    args.update(kw)
    return mikey.seal_base_ticket(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("suite", [mikey.SUITE_128, mikey.SUITE_256])
def test_sealed_ticket_opens_with_the_tpk(suite: mikey.Suite) -> None:
    """open_base_ticket returns the MPK, TGK, SPI, RAND and time that were sealed."""
    n = suite.key_len
    ticket = seal(
        tpk=TPK * (n // 16),
        mpk=MPK * (n // 16),
        tgk=TGK * (n // 16),
        suite=suite,
        ticket_policy=policy(suite),
    )
    opened = mikey.open_base_ticket(ticket, tpk=TPK * (n // 16))
    assert (opened.mpk, opened.tgk, opened.spi, opened.rand) == (
        MPK * (n // 16),
        TGK * (n // 16),
        SPI,
        RAND,
    )
    assert opened.timestamp == NOW and opened.suite == suite
    assert opened.mpki == mikey.derive_mpki(mpk=opened.mpk, rand=RAND, suite=suite)
    assert opened.mpkr == mikey.derive_mpkr(mpk=opened.mpk, rand=RAND, suite=suite)
    assert opened.mpki != opened.mpkr
    assert MPK.hex() not in repr(opened) and "mpk=" not in repr(opened)


def test_granted_policy_drops_the_kemac() -> None:
    """The granted policy keeps IDRi, TRe and IDRr but not the TP KEMAC (RFC 6043 §6.10)."""
    opened = mikey.open_base_ticket(seal(), tpk=TPK)
    assert not any(isinstance(p, Kemac) for p in opened.policy.payloads)
    assert opened.policy.identities(2) == (BOB.encode(),)
    assert (opened.policy.ticket_type, opened.policy.subtype, opened.policy.version) == (1, 1, 1)


def test_ticket_data_layout_is_thdr_t_rand_kemac_v() -> None:
    """Ticket Data = THDR, T, RAND, KEMAC, [IDRpsk], V (RFC 6043 A.1, A.3)."""
    t = Ticket.decode_value(seal(psk_id=b"tpk-1", thdr_data=b"xyz"))
    data = t.ticket_data
    assert data[:6] == bytes([5, 0, 3]) + b"xyz"  # THDR: Next = T, length 3, data
    assert t.initiator_data == b""
    assert mikey.base_ticket_psk_id(t.encode_value()) == b"tpk-1"
    assert mikey.base_ticket_psk_id(seal()) is None
    assert mikey.open_base_ticket(t.encode_value(), tpk=TPK).psk_id == b"tpk-1"


def test_kemac_iv_uses_csb_id_all_ones_and_the_ticket_t() -> None:
    """The ticket KEMAC decrypts with TPK keys (label 0x05), CSB ID 0xFFFFFFFF and its T."""
    t = Ticket.decode_value(seal())
    # Re-parse the ticket data as a message body: skip THDR (3 bytes, no data).
    body = Message.decode(bytes([1, 0, 5, 0, 0, 0, 0, 0, 0, 1]) + t.ticket_data[3:])
    ts, rand, kemac = body.first(Timestamp), body.first(Rand), body.first(Kemac)
    assert ts is not None and rand is not None and kemac is not None
    keys = crypto.derive_tpk_keys(TPK, rand=rand.rand, suite=mikey.SUITE_128)
    plain = crypto.aes_cm(keys.encr_key, keys.salt_key, 0xFFFFFFFF, ts.value, kemac.encr_data)
    mpk, tgk = decode_key_data(plain)
    assert (mpk.key_type, mpk.key, tgk.key_type, tgk.key, tgk.spi) == (6, MPK, 0, TGK, SPI)


def test_wrong_tpk_fails() -> None:
    """Another TPK gives AuthenticationError (ERR 0)."""
    with pytest.raises(mikey.AuthenticationError):
        mikey.open_base_ticket(seal(), tpk=bytes(16))


def test_other_ticket_types_are_refused() -> None:
    """Ticket type 2 (3GPP) is not a MIKEY base ticket: PolicyError with ERR 14."""
    t = Ticket.decode_value(seal())
    other = attrs.evolve(t, policy=attrs.evolve(t.policy, ticket_type=2)).encode_value()
    with pytest.raises(mikey.PolicyError) as info:
        mikey.open_base_ticket(other, tpk=TPK)
    assert info.value.err_code == mikey.ErrCode.INVALID_TICKET


def test_garbage_ticket_data_is_a_decode_error() -> None:
    """Malformed Ticket Data raises DecodeError with ERR 14."""
    t = Ticket.decode_value(seal())
    bad = attrs.evolve(t, ticket_data=b"\x05\x00").encode_value()
    with pytest.raises(mikey.DecodeError) as info:
        mikey.open_base_ticket(bad, tpk=TPK)
    assert info.value.err_code == mikey.ErrCode.INVALID_TICKET
