"""Test tickets built from mikey's public functions: a grant as the KMS would give the
initiator, and the resolution it would give the responder."""

from __future__ import annotations

import attrs

import mikey
from mikey import _protection
from mikey.crypto import derive_message_keys
from mikey.payloads import GeneralExtension, Message

ALICE = "sip:alice@example.net"
ROOM = "sip:lobby@conf.example.net"
KMS = "sip:kms@kms.example.net"
NOW = 1_800_000_000.0
SPI = b"\x00\x00\x00\x2a"


@attrs.frozen
class Resolution:
    """Structurally a kms_client.TicketResolution."""

    mpki: bytes = attrs.field(repr=False)
    tgk: bytes = attrs.field(repr=False)
    spi: bytes
    rand_r: bytes


def make_grant(
    *,
    initiator: str = ALICE,
    responders: tuple[str, ...] = (ROOM,),
    suite: mikey.Suite = mikey.SUITE_128,
    now: float = NOW,
    flags: mikey.TicketFlags | None = None,
) -> mikey.TicketGrant:
    n = suite.key_len
    policy = mikey.request_policy(
        initiator=initiator, responders=responders, valid_until=now + 3600, suite=suite
    )
    if flags is not None:
        policy = attrs.evolve(policy, flags=flags)
    rand = bytes([0x52]) * suite.rand_len
    mpk = bytes([0x4D]) * n
    ticket = mikey.seal_base_ticket(
        tpk=bytes([0x77]) * n,
        ticket_policy=policy,
        mpk=mpk,
        tgk=bytes([0x47]) * n,
        spi=SPI,
        now=now,
        rand=rand,
        suite=suite,
    )
    return mikey.TicketGrant(
        ticket=ticket,
        ticket_policy=policy,
        mpki=mikey.derive_mpki(mpk, rand, suite),
        tgk=bytes([0x47]) * n,
        spi=SPI,
        suite=suite,
        responders=responders,
        valid_until=now + 3600,
        kms=KMS,
        timestamp=now,
    )


def resolution_of(grant: mikey.TicketGrant, *, rand_r: bytes | None = None) -> Resolution:
    return Resolution(
        mpki=grant.mpki,
        tgk=grant.tgk,
        spi=grant.spi,
        rand_r=rand_r if rand_r is not None else bytes(range(100, 100 + grant.suite.rand_len)),
    )


def transfer_init(
    grant: mikey.TicketGrant,
    *,
    initiator: str = ALICE,
    responder: str = ROOM,
    now: float = NOW,
    rand: bytes | None = None,
    **more: object,
) -> bytes:
    return mikey.build_transfer_init(
        grant=grant,
        initiator=initiator,
        responder=responder,
        now=now,
        csb_id=0xCAFEBABE,
        rand=rand if rand is not None else bytes(range(grant.suite.rand_len)),
        **more,  # type: ignore[arg-type]
    )


def without_sdp_ids(data: bytes, grant: mikey.TicketGrant) -> bytes:
    """The TRANSFER_INIT re-sealed without its GEN_EXT "SDP IDs" (a 3GPP-style peer)."""
    msg = Message.decode(data)
    msg = attrs.evolve(
        msg, payloads=tuple(p for p in msg.payloads if not isinstance(p, GeneralExtension))
    )
    ti = mikey.peek_transfer_init(data)
    keys = derive_message_keys(
        grant.mpki,
        csb_id=ti.csb_id,
        response=False,
        rand_i=ti.rand_i,
        rand_r=None,
        suite=grant.suite,
    )
    initiator, responder = ti.initiator.encode(), ti.responder.encode()
    return _protection.seal(msg, keys, grant.suite, initiator + responder, exclude=True)
