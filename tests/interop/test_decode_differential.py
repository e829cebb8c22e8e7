"""Differential decoding: mutated messages are accepted or refused alike by both codecs."""

from __future__ import annotations

import itertools

import pytest

import mikey
from mikey.payloads import Message
from tests.interop import independent_mikey as im

pytestmark = pytest.mark.timeout(60)

NOW = 1_800_000_000.0
A, B, K = b"sip:alice@example.net", b"sip:bob@example.net", b"sip:kms@kms.example.net"


def _seeds() -> dict[str, bytes]:
    """One message of each type, from both implementations."""
    c = itertools.count(1)

    def rnd(n: int) -> bytes:
        return bytes((next(c) * 37 + i) & 0xFF for i in range(n))

    psk_a, psk_b = rnd(16), rnd(16)
    kms = im.MiniKms(
        identity=K,
        users={A: im.KmsUser(psk_a, (A,)), B: im.KmsUser(psk_b, (B,))},
        random=rnd,
        clock=lambda: NOW,
    )
    req = im.build_request_init(
        suite=im.SUITE_128,
        psk=psk_a,
        csb_id=7,
        now=NOW,
        randri=rnd(16),
        id_i=A,
        id_kms=K,
        id_rs=[B],
    )
    _, resp = kms.handle(req)
    ob = im.read_request_resp(resp, req, psk_a, NOW)
    ti = im.build_transfer_init(
        ob=ob, suite=im.SUITE_128, csb_id=8, now=NOW, randri=rnd(16), id_i=A, id_r=B
    )
    rr = rnd(16)
    ri = im.build_resolve_init(
        transfer_init=ti,
        suite=im.SUITE_128,
        psk=psk_b,
        csb_id=9,
        now=NOW,
        randrr=rr,
        id_r=B,
        id_kms=K,
    )
    _, rres = kms.handle(ri)
    tr = im.build_transfer_resp(
        transfer_init=ti, mpki=ob.mpki, spi=ob.spi, now=NOW, randrr=rr, id_r=B
    )
    grant = mikey.read_request_resp(resp, request_init=req, psk=psk_a, now=NOW)
    our_ti = mikey.build_transfer_init(
        grant=grant,
        initiator=A.decode(),
        responder=B.decode(),
        now=NOW,
        csb_id=5,
        rand=rnd(16),
    )
    our_tr = mikey.build_transfer_resp(
        transfer_init=our_ti, mpki=ob.mpki, responder=B.decode(), rand_r=rr, now=NOW
    )
    return {
        "RI": req,
        "RR": resp,
        "TI": ti,
        "RSI": ri,
        "RSR": rres,
        "TR": tr,
        "our-TI": our_ti,
        "our-TR": our_tr,
        "our-ERR": mikey.build_error(err_code=7, csb_id=1, now=NOW),
    }


SEEDS = _seeds()


def _mutants(s: bytes):
    for i in range(len(s)):
        yield f"trunc{i}", s[:i]
        for v in (0, 1, 0x7F, 0x80, 0xFF, s[i] ^ 1, 20):
            yield f"set{i}={v}", s[:i] + bytes([v]) + s[i + 1 :]
    yield "extra", s + b"\x00"


def _ours(x: bytes) -> bool:
    try:
        Message.decode(x)
    except mikey.MikeyError:
        return False
    return True


def _theirs(x: bytes) -> bool:
    try:
        im.decode(x)
    except im.PeerError:
        return False
    return True


def _known_difference(x: bytes, seed: bytes) -> bool:
    """Leniencies of our codec that the message verifiers handle (see the report).

    #CS != 0 with the Empty map (RFC 4563 §5 gives no map info; RFC 6043 §4.2.1.1 says
    #CS MUST be 0) and payload chains not ending in V (only Error messages may) are
    refused by the independent codec alone.
    """
    if len(x) > 1 and im.DT_ERROR in (x[1], seed[1]):
        return True
    return len(x) > 9 and x[9] == im.MAP_EMPTY and x[8] != 0


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_both_codecs_agree_on_mutants(name):
    """Truncations and byte substitutions are accepted/refused alike (no crash on ours)."""
    seed = SEEDS[name]
    assert _ours(seed) and _theirs(seed)
    disagree = [
        label
        for label, m in _mutants(seed)
        if _ours(m) != _theirs(m) and not _known_difference(m, seed)
    ]
    assert disagree == []
