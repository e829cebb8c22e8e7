"""Shared fixtures: identities, a mini KMS, and a complete exchange run."""

from __future__ import annotations

import attrs
import pytest

import mikey

from ._kms import MiniKms

ALICE = "sip:alice@example.net"
BOB = "sip:bob@example.net"
KMS = "sip:kms@kms.example.net"
NOW = 1_800_000_000.0


@attrs.frozen
class Run:
    """Every message and result of one complete MIKEY-TICKET run."""

    suite: mikey.Suite
    psk_i: bytes
    psk_r: bytes
    kms: MiniKms
    request_init: bytes
    request_resp: bytes
    grant: mikey.TicketGrant
    transfer_init: bytes
    resolve_init: bytes
    resolve_resp: bytes
    resolved: mikey.ResolvedTicket
    transfer_resp: bytes
    rand_i: bytes
    rand_r: bytes


def run_exchange(suite: mikey.Suite) -> Run:
    n = suite.key_len
    psk_i, psk_r = bytes([0xA1]) * n, bytes([0xB2]) * n
    kms = MiniKms(KMS, {ALICE: psk_i, BOB: psk_r}, bytes([0x77]) * n, suite)
    rand_i, rand_r = bytes(range(suite.rand_len)), bytes(range(100, 100 + suite.rand_len))
    ri = mikey.build_request_init(
        psk=psk_i,
        initiator=ALICE,
        kms=KMS,
        responders=[BOB],
        now=NOW,
        csb_id=0x01020304,
        rand=bytes(range(50, 50 + suite.rand_len)),
        suite=suite,
    )
    rr = kms.request(
        ri,
        now=NOW + 1,
        mpk=bytes([0x4D]) * n,
        tgk=bytes([0x47]) * n,
        spi=b"\x00\x00\x00\x2a",
        rand=bytes([0x52]) * suite.rand_len,
    )
    grant = mikey.read_request_resp(rr, request_init=ri, psk=psk_i, now=NOW + 2)
    ti = mikey.build_transfer_init(
        grant=grant,
        initiator=ALICE,
        responder=BOB,
        now=NOW + 3,
        csb_id=0xCAFEBABE,
        rand=rand_i,
    )
    peek = mikey.peek_transfer_init(ti)
    rs = mikey.build_resolve_init(
        psk=psk_r,
        responder=BOB,
        kms=KMS,
        ticket=peek.ticket,
        now=NOW + 4,
        csb_id=0x0BADF00D,
        rand_r=rand_r,
        suite=suite,
    )
    rsr = kms.resolve(rs, now=NOW + 5)
    resolved = mikey.read_resolve_resp(rsr, resolve_init=rs, psk=psk_r, now=NOW + 6)
    tr = mikey.build_transfer_resp(
        transfer_init=ti, mpki=resolved.mpki, responder=BOB, rand_r=rand_r, now=NOW + 7
    )
    return Run(suite, psk_i, psk_r, kms, ri, rr, grant, ti, rs, rsr, resolved, tr, rand_i, rand_r)


@pytest.fixture(scope="session", params=["128", "256"])
def run(request: pytest.FixtureRequest) -> Run:
    return run_exchange(mikey.SUITE_128 if request.param == "128" else mikey.SUITE_256)


@pytest.fixture(scope="session")
def run128() -> Run:
    return run_exchange(mikey.SUITE_128)
