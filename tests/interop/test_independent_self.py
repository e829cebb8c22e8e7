"""Self-consistency of the independent peer (run before any cross-check against our code)."""

from __future__ import annotations

import itertools
import subprocess

import pytest

from tests.interop import independent_mikey as im

NOW = 1_800_000_000.0
A, B, KMS = b"sip:alice@example.net", b"sip:bob@example.net", b"sip:kms@kms.example.net"


def counter_random():
    c = itertools.count(1)

    def rnd(n: int) -> bytes:
        return bytes((next(c) * 37 + i) & 0xFF for i in range(n))

    return rnd


@pytest.mark.interop
def test_prf_matches_openssl_tls1_prf():
    """P() equals OpenSSL's TLS1-PRF for one inkey block (DIGEST §3.1 oracle)."""
    key, label = bytes(range(32)), bytes(range(40, 70))
    for digest, pf in (("SHA1", 0), ("SHA256", 1)):
        out = (
            subprocess.run(
                [
                    "openssl",
                    "kdf",
                    "-keylen",
                    "48",
                    "-kdfopt",
                    f"digest:{digest}",
                    "-kdfopt",
                    f"hexsecret:{key.hex()}",
                    "-kdfopt",
                    f"hexseed:{label.hex()}",
                    "TLS1-PRF",
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=10,
            )
            .stdout.strip()
            .replace(":", "")
            .lower()
        )
        assert im.prf(pf, key, label, 48).hex() == out


def test_digest_regression_vectors():
    """Label assembly reproduces DIGEST §3.5 V3/V4/V6."""
    key, rand = bytes(range(16)), bytes(range(0x20, 0x30))
    enc, auth, salt = im.message_keys(im.SUITE_128, key, 0x11223344, 1, rand, None)
    assert enc.hex() == "ea1fa39bae1d17daf0f132d3e390ec76"
    assert auth.hex() == "2db8e7063ec0b77e4f1afff7dd01c19cc71cfc01"
    assert salt.hex() == "1f7f79dff70782dd7a16ec662249"
    _, auth2, _ = im.message_keys(im.SUITE_128, key, 0x11223344, 2, rand, None)
    assert auth2.hex() == "703b211e9544660880d849f66765772c10a03f0b"
    assert im.derive_tek(0, key, 1, rand, None, 16).hex() == "8b3438e23ad143d9b20d87736bf35113"
    assert (
        im.derive_tek(1, bytes(range(32)), 1, rand, None, 32).hex()
        == "cb76ed3d7875197ca17bb8aa7550261171d8b426ebf57a85d19fea6b69dd57f7"
    )
    mlabel = bytes.fromhex("ffffffffff06") + im.lv(rand)
    assert im.prf(0, key, im.C_MPKI.to_bytes(4, "big") + mlabel, 16).hex() == (
        "fee30044c98710ccc8bd14a40d1fe38b"
    )
    v1 = bytes.fromhex("2ad01c640111223344202122232425262728292a2b2c2d2e2f")
    assert im.prf(0, bytes(range(48)), v1, 16).hex() == "bc927cda4c621283fa06930d7797dc13"


@pytest.mark.parametrize("suite", [im.SUITE_128, im.SUITE_256], ids=["128", "256"])
def test_full_exchange_with_own_kms(suite):
    """Own initiator + own KMS + own responder derive the same PSK."""
    rnd = counter_random()
    kms = im.MiniKms(
        identity=KMS,
        users={A: im.KmsUser(rnd(32), (A,)), B: im.KmsUser(rnd(32), (B,))},
        random=rnd,
        clock=lambda: NOW,
    )
    req = im.build_request_init(
        suite=suite,
        psk=kms.users[A].psk,
        csb_id=7,
        now=NOW,
        randri=rnd(suite.key_len),
        id_i=A,
        id_kms=KMS,
        id_rs=[B],
    )
    st, resp = kms.handle(req)
    assert st == 200
    ob = im.read_request_resp(resp, req, kms.users[A].psk, NOW)
    ti = im.build_transfer_init(
        ob=ob,
        suite=suite,
        csb_id=0x12345678,
        now=NOW,
        randri=rnd(suite.key_len),
        id_i=A,
        id_r=B,
    )
    randrr = rnd(suite.key_len)
    ri = im.build_resolve_init(
        transfer_init=ti,
        suite=suite,
        psk=kms.users[B].psk,
        csb_id=99,
        now=NOW,
        randrr=randrr,
        id_r=B,
        id_kms=KMS,
    )
    st, rr = kms.handle(ri)
    assert st == 200
    mpki, tgk, spi = im.read_resolve_resp(rr, ri, kms.users[B].psk, NOW)
    im.verify_transfer_init(ti, mpki, NOW)
    tr = im.build_transfer_resp(
        transfer_init=ti, mpki=mpki, spi=spi, now=NOW, randrr=randrr, id_r=B
    )
    im.verify_transfer_resp(tr, ti, ob.mpki, NOW)
    assert im.initiator_psk(ti, tr, ob.tgk) == im.responder_psk(ti, tgk, randrr)
    assert len(im.responder_psk(ti, tgk, randrr)) == suite.key_len
    # Tampering anywhere covered by the MAC is detected.
    bad = bytearray(ti)
    bad[12] ^= 1
    with pytest.raises(im.PeerError):
        im.verify_transfer_init(bytes(bad), mpki, NOW)
    # A replayed RESOLVE_INIT is answered 409 with ERR 1.
    st, err = kms.handle(ri)
    assert (st, im.read_error(err)) == (409, [1])


def test_error_roundtrip():
    """Error messages copy PRF/CSB ID and carry ERR."""
    req = im.build_request_init(
        suite=im.SUITE_128,
        psk=bytes(16),
        csb_id=0xAABBCCDD,
        now=NOW,
        randri=bytes(16),
        id_i=A,
        id_kms=KMS,
        id_rs=[B],
    )
    err = im.build_error(req, 7, NOW)
    m = im.decode(err)
    assert (m.dtype, m.csb_id, m.v) == (6, 0xAABBCCDD, 0)
    assert im.read_error(err) == [7]
