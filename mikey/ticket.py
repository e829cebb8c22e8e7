"""The MIKEY base ticket (RFC 6043 Appendix A, Ticket Type 1, subtype 1, version 1).

Ticket Data = THDR, T, RAND, KEMAC, [IDRpsk], V (A.1), all protected with keys derived
from the KMS's Ticket Protection Key (TPK) with label type 0x05 (A.2.1):

- KEMAC = E(encr_key, MPK || TGK), AES-CM with IV from salt_key, CSB ID 0xFFFFFFFF
  (A.1: "If CSB ID is needed in the IV creation it SHALL be set to '0xFFFFFFFF'") and
  the ticket's own T; NULL MAC.
- V = MAC over the entire TICKET payload except its Next Payload field, the Initiator
  Data length, the Initiator Data and the MAC field itself (A.1).
- The PRF is the one the Ticket Policy names (A.2.1); MPKi/MPKr are derived from the MPK
  and the ticket's RAND with label type 0x06 (A.2.2).

Only the KMS seals and opens base tickets; everyone else treats Ticket Data as opaque.
"""

from __future__ import annotations

import attrs

from mikey import _protection as prot
from mikey._buffer import Buffer, Writer
from mikey.crypto import (
    MAC_NULL,
    Suite,
    aes_cm,
    compute_mac,
    derive_mpki,
    derive_mpkr,
    derive_tpk_keys,
    suite_for_prf,
    verify_mac,
)
from mikey.errors import DecodeError, ErrCode, PolicyError
from mikey.ntp import to_ntp64
from mikey.payloads import (
    Idr,
    IdRole,
    IdType,
    Kemac,
    KeyData,
    KeyType,
    KvSpi,
    Payload,
    Rand,
    Ticket,
    TicketPolicy,
    Timestamp,
    TsType,
    Verification,
    _pull_chain,
    encode_key_data,
    encode_payload_chain,
)

__all__ = [
    "BaseTicketContents",
    "base_ticket_psk_id",
    "open_base_ticket",
    "seal_base_ticket",
]

_CSB_TICKET = 0xFFFFFFFF
BASE_TICKET_TYPE = (1, 1, 1)  # Ticket Type, Subtype, Version (RFC 6043 §6.10)


@attrs.frozen
class BaseTicketContents:
    """What the KMS finds in a base ticket it opened."""

    policy: TicketPolicy
    mpk: bytes = attrs.field(repr=False)
    tgk: bytes = attrs.field(repr=False)
    spi: bytes
    rand: bytes
    timestamp: float
    psk_id: bytes | None
    suite: Suite

    @property
    def mpki(self) -> bytes:
        return derive_mpki(mpk=self.mpk, rand=self.rand, suite=self.suite)

    @property
    def mpkr(self) -> bytes:
        return derive_mpkr(mpk=self.mpk, rand=self.rand, suite=self.suite)


def _ticket_data(thdr_data: bytes, payloads: tuple[Payload, ...]) -> bytes:
    chain = encode_payload_chain(payloads)  # first-payload byte + chain
    w = Writer()
    w.push_uint8(chain[0])  # THDR's Next Payload (A.3)
    w.push_block16(thdr_data)
    w.push_bytes(chain[1:])
    return w.getvalue()


def seal_base_ticket(
    *,
    tpk: bytes,
    ticket_policy: TicketPolicy,
    mpk: bytes,
    tgk: bytes,
    spi: bytes,
    now: float,
    rand: bytes,
    suite: Suite,
    psk_id: bytes | None = None,
    thdr_data: bytes = b"",
) -> bytes:
    """Make the TICKET payload value (without Next) of a MIKEY base ticket.

    The granted policy is ``ticket_policy`` with the suite's PRF, type 1/1/1 and no KEMAC
    in its TP Data (RFC 6043 §6.10: the KEMAC "SHALL NOT be present in the granted
    Ticket Policy").
    """
    policy = attrs.evolve(
        ticket_policy,
        ticket_type=BASE_TICKET_TYPE[0],
        subtype=BASE_TICKET_TYPE[1],
        version=BASE_TICKET_TYPE[2],
        prf=suite.prf,
        payloads=tuple(p for p in ticket_policy.payloads if not isinstance(p, Kemac)),
    )
    keys = derive_tpk_keys(tpk, rand=rand, suite=suite)
    t = Timestamp(TsType.NTP_UTC, to_ntp64(now))
    plain = encode_key_data(
        [KeyData(KeyType.MPK, mpk, KvSpi(spi)), KeyData(KeyType.TGK, tgk, KvSpi(spi))]
    )
    kemac = Kemac(
        suite.encr_alg,
        aes_cm(keys.encr_key, keys.salt_key, _CSB_TICKET, t.as_64bit(), plain),
        MAC_NULL,
        b"",
    )
    payloads: tuple[Payload, ...] = (
        t,
        Rand(rand),
        kemac,
        *((Idr(IdRole.PSK, IdType.BYTE_STRING, psk_id),) if psk_id is not None else ()),
        Verification(suite.auth_alg, bytes(suite.mac_len)),
    )
    data = _ticket_data(thdr_data, payloads)
    value = Ticket(policy, data, b"").encode_value()
    covered = value[: len(value) - 2 - suite.mac_len]  # minus Initiator Data length, MAC
    mac = compute_mac(suite.auth_alg, keys.auth_key, covered)
    return Ticket(policy, data[: -suite.mac_len] + mac, b"").encode_value()


_SPECS: list[prot.Spec] = [
    (Timestamp, None, 1, 1),
    (Rand, None, 1, 1),
    (Kemac, None, 1, 1),
    (Idr, IdRole.PSK, 0, 1),
    (Verification, None, 1, 1),
]


def _parse(ticket: bytes) -> tuple[Ticket, tuple[Payload, ...]]:
    t = Ticket.decode_value(ticket)
    if (t.policy.ticket_type, t.policy.subtype, t.policy.version) != BASE_TICKET_TYPE:
        raise PolicyError("not a MIKEY base ticket", ErrCode.INVALID_TICKET)
    try:
        buf = Buffer(t.ticket_data)
        first = buf.pull_uint8()
        buf.pull_bytes(buf.pull_uint16())  # THDR Data: implementation specific, ignored
        payloads, _ = _pull_chain(buf, first, nested=True)
        buf.expect_end("Ticket Data")
    except DecodeError as exc:
        raise DecodeError(f"malformed base ticket: {exc}", ErrCode.INVALID_TICKET) from exc
    return t, payloads


def base_ticket_psk_id(ticket: bytes) -> bytes | None:
    """The IDRpsk naming the TPK, if the ticket carries one (unverified)."""
    _, payloads = _parse(ticket)
    for p in payloads:
        if isinstance(p, Idr) and p.role == IdRole.PSK:
            return p.data
    return None


def open_base_ticket(ticket: bytes, *, tpk: bytes) -> BaseTicketContents:
    """Verify the ticket's V with the TPK and decrypt its KEMAC; raises on any fault."""
    t, payloads = _parse(ticket)
    suite = suite_for_prf(t.policy.prf)
    groups = prot.match_payloads(payloads, _SPECS)
    ts, rand, kemac, idrpsk, v = (g[0] if g else None for g in groups)
    assert isinstance(ts, Timestamp) and isinstance(rand, Rand)
    assert isinstance(kemac, Kemac) and isinstance(v, Verification)
    if v.auth_alg != suite.auth_alg:
        raise PolicyError("ticket V alg does not match its PRF", ErrCode.INVALID_MAC)
    keys = derive_tpk_keys(tpk, rand=rand.rand, suite=suite)
    covered = ticket[: len(ticket) - t.initiator_data_size - len(v.mac)]
    verify_mac(v.auth_alg, keys.auth_key, covered, v.mac)
    keydata = prot.open_kemac(kemac, keys, suite, _CSB_TICKET, ts.as_64bit())
    if (
        len(keydata) != 2
        or keydata[0].key_type != KeyType.MPK
        or keydata[1].key_type
        not in (
            KeyType.TGK,
            KeyType.GTGK,
        )
    ):
        raise PolicyError("base ticket must hold MPK then a TGK", ErrCode.INVALID_TICKET)
    spi = keydata[1].spi
    if not spi:
        raise PolicyError("base ticket TGK has no SPI", ErrCode.INVALID_TICKET)
    return BaseTicketContents(
        policy=t.policy,
        mpk=keydata[0].key,
        tgk=keydata[1].key,
        spi=spi,
        rand=rand.rand,
        timestamp=prot.seconds(ts),
        psk_id=idrpsk.data if isinstance(idrpsk, Idr) else None,
        suite=suite,
    )
