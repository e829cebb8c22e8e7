"""Test tickets built from mikey's public functions: a grant as the KMS would give the
initiator, and the resolution it would give the responder."""

from __future__ import annotations

import attrs

import mikey
from mikey import _protection
from mikey.crypto import derive_message_keys
from mikey.payloads import GeneralExtension, Idr, IdRole, Message

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
    """A TRANSFER_INIT from ``initiator`` to ``responder``, MAC'd with the grant's MPKi.

    mikey refuses to address a responder the ticket does not name (RFC 6043 §4.2.1.6); the
    focus's own refusal of such messages is under test here, so for those this builds the
    message for a named responder, then swaps IDRr and seals it again, as a forger would.
    """
    named = grant.ticket_policy.identities(IdRole.RESPONDER)
    addressed = responder if responder.encode() in named else named[0].decode()
    data = mikey.build_transfer_init(
        grant=grant,
        initiator=initiator,
        responder=addressed,
        now=now,
        csb_id=0xCAFEBABE,
        rand=rand if rand is not None else bytes(range(grant.suite.rand_len)),
        **more,  # type: ignore[arg-type]
    )
    if addressed == responder:
        return data
    msg = Message.decode(data)
    payloads = tuple(
        Idr(IdRole.RESPONDER, p.id_type, responder.encode())
        if isinstance(p, Idr) and p.role == IdRole.RESPONDER
        else p
        for p in msg.payloads
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
    sealed_for = initiator.encode() + responder.encode()
    return _protection.seal(
        attrs.evolve(msg, payloads=payloads), keys, grant.suite, sealed_for, exclude=True
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
