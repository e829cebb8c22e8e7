"""PRF, key derivations, AES-CM, AES-KW and MACs against independent references."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from hypothesis import given, settings
from hypothesis import strategies as st

from mikey import crypto
from mikey.errors import AuthenticationError, PolicyError

KEY16 = bytes(range(16))
RAND16 = bytes(range(0x20, 0x30))
CSB = 0x11223344

pytestmark = pytest.mark.interop


def openssl_p_hash(secret: bytes, label: bytes, length: int, digest: str) -> bytes:
    """P_hash from `openssl kdf ... TLS1-PRF` (an implementation we did not write)."""
    assert shutil.which("openssl"), "openssl is installed by `make system-deps`"
    out = subprocess.run(
        [
            "openssl",
            "kdf",
            "-keylen",
            str(length),
            "-kdfopt",
            f"digest:{digest}",
            "-kdfopt",
            f"hexsecret:{secret.hex()}",
            "-kdfopt",
            f"hexseed:{label.hex()}",
            "TLS1-PRF",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return bytes.fromhex(out.stdout.strip().replace(":", ""))


@pytest.mark.parametrize(("prf_func", "digest"), [(0, "SHA1"), (1, "SHA256")])
@pytest.mark.parametrize("key_len", [1, 16, 20, 32])
@pytest.mark.parametrize("out_len", [14, 16, 20, 32, 45])
def test_single_block_prf_equals_openssl_tls1_prf(
    prf_func: int, digest: str, key_len: int, out_len: int
) -> None:
    """For inkeys of at most 256 bits the MIKEY PRF is TLS P_hash (PROFILE §7)."""
    secret = bytes(range(3, 3 + key_len))
    label = crypto.label_message(
        crypto.AUTH_KEY_CONST, CSB, response=False, rand_i=RAND16, rand_r=None
    )
    assert crypto.prf(secret, label, out_len, prf_func=prf_func) == openssl_p_hash(
        secret, label, out_len, digest
    )


@pytest.mark.parametrize(("prf_func", "digest"), [(0, "SHA1"), (1, "SHA256")])
@pytest.mark.parametrize("key_len", [33, 48, 64, 65, 100])
def test_multi_block_prf_is_xor_of_openssl_blocks(prf_func: int, digest: str, key_len: int) -> None:
    """A longer inkey is split into 256-bit blocks whose P outputs are XORed (RFC 3830 §4.1.2)."""
    secret = bytes((7 * i + 1) % 256 for i in range(key_len))
    label = crypto.label_tek(crypto.TEK_CONST, 1, rand_i=RAND16, rand_r=RAND16)
    expected = bytes(32)
    for i in range(0, key_len, 32):
        block = openssl_p_hash(secret[i : i + 32], label, 32, digest)
        expected = bytes(a ^ b for a, b in zip(expected, block, strict=True))
    assert crypto.prf(secret, label, 32, prf_func=prf_func) == expected


def test_prf_refuses_unknown_prf_func() -> None:
    """PRF funcs other than 0 and 1 raise PolicyError with ERR 2 (Invalid PRF)."""
    with pytest.raises(PolicyError) as info:
        crypto.prf(KEY16, b"x", 16, prf_func=5)
    assert info.value.err_code == 2


# DIGEST.md §3.5 regression vectors (self-generated, not official).
def test_digest_v1_rfc3830_tek_and_salt() -> None:
    """V1: RFC 3830 §4.1.3 TEK and salt from a TGK."""
    label = crypto.label_3830_tgk(crypto.TEK_CONST, 1, CSB, RAND16)
    assert label.hex() == "2ad01c640111223344202122232425262728292a2b2c2d2e2f"
    assert crypto.prf(KEY16, label, 16).hex() == "d24fd37d2c51b0ed20083e0e1e95625e"
    salt = crypto.derive_tgk_key_3830(
        KEY16, const=crypto.TGK_SALT_CONST, cs_id=1, csb_id=CSB, rand=RAND16, length=14
    )
    assert salt.hex() == "894ccf26e51a30b91f0bb7a6d105"


def test_digest_v2_rfc3830_psk_keys() -> None:
    """V2: RFC 3830 §4.1.4 encr/auth/salt keys from a PSK."""

    def k(const: int, n: int) -> str:
        return crypto.prf(KEY16, crypto.label_3830_psk(const, CSB, RAND16), n).hex()

    assert k(crypto.ENCR_KEY_CONST, 16) == "eb8c30da80a09967c455773ee4cdaf04"
    assert k(crypto.AUTH_KEY_CONST, 20) == "f1861929d2251a09cc620ad88ce8b0134621f347"
    assert k(crypto.SALT_KEY_CONST, 14) == "e98fc69e79f3f0b2684315f1db30"


def test_digest_v3_rfc6043_message_keys() -> None:
    """V3: RFC 6043 §5.1.2 initial (0x01) and response (0x02) message keys."""
    label = crypto.label_message(
        crypto.AUTH_KEY_CONST, CSB, response=False, rand_i=RAND16, rand_r=None
    )
    assert label.hex() == "2d22ac75ff112233440110202122232425262728292a2b2c2d2e2f00"
    keys = crypto.derive_message_keys(
        KEY16, csb_id=CSB, response=False, rand_i=RAND16, rand_r=None, suite=crypto.SUITE_128
    )
    assert keys.encr_key.hex() == "ea1fa39bae1d17daf0f132d3e390ec76"
    assert keys.auth_key.hex() == "2db8e7063ec0b77e4f1afff7dd01c19cc71cfc01"
    assert keys.salt_key.hex() == "1f7f79dff70782dd7a16ec662249"
    resp = crypto.derive_message_keys(
        KEY16, csb_id=CSB, response=True, rand_i=RAND16, rand_r=None, suite=crypto.SUITE_128
    )
    assert resp.auth_key.hex() == "703b211e9544660880d849f66765772c10a03f0b"


def test_digest_v4_rfc6043_tek() -> None:
    """V4: RFC 6043 §5.1.3 TEK from a TGK, MIKEY-1 and PRF-HMAC-SHA-256."""
    label = crypto.label_tek(crypto.TEK_CONST, 1, rand_i=RAND16, rand_r=None)
    assert label.hex() == "2ad01c6401ffffffff0310202122232425262728292a2b2c2d2e2f00"
    tek = crypto.derive_tek(
        KEY16, cs_id=1, rand_i=RAND16, rand_r=None, length=16, suite=crypto.SUITE_128
    )
    assert tek.hex() == "8b3438e23ad143d9b20d87736bf35113"
    tek256 = crypto.derive_tek(
        bytes(range(32)), cs_id=1, rand_i=RAND16, rand_r=None, length=32, suite=crypto.SUITE_256
    )
    assert tek256.hex() == "cb76ed3d7875197ca17bb8aa7550261171d8b426ebf57a85d19fea6b69dd57f7"


def test_digest_v5_mpki_mpkr() -> None:
    """V5: RFC 6043 A.2.2 MPKi and MPKr from the base-ticket MPK."""
    assert crypto.derive_mpki(mpk=KEY16, rand=RAND16, suite=crypto.SUITE_128).hex() == (
        "fee30044c98710ccc8bd14a40d1fe38b"
    )
    assert crypto.derive_mpkr(mpk=KEY16, rand=RAND16, suite=crypto.SUITE_128).hex() == (
        "ab74f36a2a16d9e9bbabef5ab8431b39"
    )


def test_digest_v6_two_block_inkey() -> None:
    """V6: a 48-byte inkey (two blocks) with the V1 label."""
    label = crypto.label_3830_tgk(crypto.TEK_CONST, 1, CSB, RAND16)
    assert crypto.prf(bytes(range(48)), label, 16).hex() == "bc927cda4c621283fa06930d7797dc13"


def test_forking_and_vr_labels_have_rfc_layout() -> None:
    """RFC 6043 §5.1.1 fork labels, §6.10 Vr and A.2.1 TPK labels are byte exact."""
    assert crypto.label_fork(crypto.TGK_FORK_CONST, b"ab", b"\x01\x02").hex() == (
        "1512b54affffffffff000002616202" + "0102"
    )
    assert crypto.label_vr(crypto.AUTH_KEY_CONST).hex() == "2d22ac75ffffffffff04"
    assert crypto.label_tpk(crypto.ENCR_KEY_CONST, b"\x09").hex() == "150533e1ffffffffff050109"
    forked = crypto.derive_forked_key(
        KEY16,
        const=crypto.MPKR_FORK_CONST,
        id_data=b"sip:b@x",
        rand_kms=RAND16,
        suite=crypto.SUITE_128,
    )
    assert len(forked) == 16 and forked != KEY16
    vr = crypto.derive_vr_keys(KEY16, suite=crypto.SUITE_256)
    assert len(vr.auth_key) == 32


def test_aes_cm_iv_layout() -> None:
    """IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000 (RFC 3830 §4.2.3)."""
    salt = bytes(14)
    iv = crypto.aes_cm_iv(salt, 0x01020304, 0x1112131415161718)
    assert iv.hex() == "0000" + "01020304" + "1112131415161718" + "0000"
    salt = bytes([0xFF]) * 14
    assert crypto.aes_cm_iv(salt, 0, 0).hex() == "ff" * 14 + "0000"


def test_aes_cm_matches_srtp_counter_mode_reference() -> None:
    """AES-CM keystream block i is AES(key, IV + i) (RFC 3711 §4.1.1), checked over ECB."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key, salt = bytes(range(16)), bytes(range(14))
    iv = crypto.aes_cm_iv(salt, CSB, 42)
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = b"".join(
        ecb.update((int.from_bytes(iv, "big") + i).to_bytes(16, "big")) for i in range(3)
    )
    data = bytes(40)
    assert crypto.aes_cm(key, salt, CSB, 42, data) == stream[:40]


@settings(max_examples=50)
@given(st.binary(max_size=200), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_aes_cm_is_its_own_inverse(data: bytes, csb_id: int, t: int) -> None:
    """Decrypting with the same key, CSB ID and T gives the plaintext back."""
    key, salt = bytes(32), bytes(range(14))
    assert crypto.aes_cm(key, salt, csb_id, t, crypto.aes_cm(key, salt, csb_id, t, data)) == data


RFC3394 = [
    (
        "000102030405060708090A0B0C0D0E0F",
        "00112233445566778899AABBCCDDEEFF",
        "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
    ),
    (
        "000102030405060708090A0B0C0D0E0F1011121314151617",
        "00112233445566778899AABBCCDDEEFF",
        "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
    ),
    (
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "00112233445566778899AABBCCDDEEFF",
        "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
    ),
    (
        "000102030405060708090A0B0C0D0E0F1011121314151617",
        "00112233445566778899AABBCCDDEEFF0001020304050607",
        "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
    ),
    (
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "00112233445566778899AABBCCDDEEFF0001020304050607",
        "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1",
    ),
    (
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
    ),
]
DEFAULT_IV = bytes.fromhex("A6A6A6A6A6A6A6A6")


@pytest.mark.parametrize(("kek", "plain", "wrapped"), RFC3394)
def test_aes_kw_matches_rfc3394_section4(kek: str, plain: str, wrapped: str) -> None:
    """Our RFC 3394 wrap/unwrap reproduces the RFC 3394 §4 vectors."""
    k, p, c = bytes.fromhex(kek), bytes.fromhex(plain), bytes.fromhex(wrapped)
    assert crypto.aes_kw_wrap(k, DEFAULT_IV, p) == c
    assert crypto.aes_kw_unwrap(k, DEFAULT_IV, c) == p


def test_aes_kw_with_salt_iv_round_trips_and_differs_from_default() -> None:
    """A derived 64-bit salt IV (RFC 3830 §4.2.3) changes the output and is checked on unwrap."""
    kek, salt, plain = bytes(16), bytes(range(8)), bytes(range(32))
    wrapped = crypto.aes_kw_wrap(kek, salt, plain)
    assert wrapped != aes_key_wrap(kek, plain)
    assert crypto.aes_kw_unwrap(kek, salt, wrapped) == plain
    assert crypto.aes_kw_unwrap(kek, DEFAULT_IV, aes_key_wrap(kek, plain)) == plain
    with pytest.raises(AuthenticationError):
        crypto.aes_kw_unwrap(kek, DEFAULT_IV, wrapped)
    with pytest.raises(AuthenticationError):
        crypto.aes_kw_unwrap(bytes([1]) * 16, salt, wrapped)


def test_mac_verification_raises_on_mismatch() -> None:
    """verify_mac raises AuthenticationError for a wrong MAC and returns None otherwise."""
    mac = crypto.compute_mac(1, b"k" * 20, b"data")
    assert len(mac) == 20 and len(crypto.compute_mac(2, b"k" * 32, b"data")) == 32
    crypto.verify_mac(1, b"k" * 20, b"data", mac)
    with pytest.raises(AuthenticationError):
        crypto.verify_mac(1, b"k" * 20, b"datA", mac)
    with pytest.raises(AuthenticationError):
        crypto.verify_mac(1, b"K" * 20, b"data", mac)


def test_message_keys_repr_hides_secrets() -> None:
    """MessageKeys never shows key bytes in its repr."""
    keys = crypto.derive_message_keys(
        KEY16, csb_id=1, response=False, rand_i=RAND16, rand_r=None, suite=crypto.SUITE_128
    )
    assert keys.encr_key.hex() not in repr(keys) and "encr_key" not in repr(keys)


@pytest.mark.parametrize("alg", [0, 1, 2, 3])
def test_key_data_encryption_round_trips_for_every_encr_alg(alg: int) -> None:
    """NULL, AES-CM-128, AES-KW-128 and AES-CM-256 KEMAC encryption invert exactly."""
    key = bytes(32 if alg == 3 else 16)
    salt = bytes(range(8 if alg == 2 else 14))
    plain = bytes(range(40))
    kw = {"encr_key": key, "salt_key": salt, "csb_id": CSB, "t64": 7}
    data = crypto.encrypt_key_data(alg, plain, **kw)  # type: ignore[arg-type]
    assert (data == plain) == (alg == 0)
    assert crypto.decrypt_key_data(alg, data, **kw) == plain  # type: ignore[arg-type]


def test_unknown_encr_alg_is_err_4() -> None:
    """Encr alg values other than 0–3 raise PolicyError with ERR 4 (Invalid EA)."""
    with pytest.raises(PolicyError) as info:
        crypto.encrypt_key_data(9, b"", encr_key=bytes(16), salt_key=bytes(14), csb_id=0, t64=0)
    assert info.value.err_code == 4


def test_aes_kw_salt_is_derived_as_64_bits() -> None:
    """derive_message_keys(salt_len=8) gives the 64-bit AES-KW IV of RFC 3830 §4.2.3."""
    keys = crypto.derive_message_keys(
        KEY16,
        csb_id=CSB,
        response=False,
        rand_i=RAND16,
        rand_r=None,
        suite=crypto.SUITE_128,
        salt_len=8,
    )
    cm = crypto.derive_message_keys(
        KEY16, csb_id=CSB, response=False, rand_i=RAND16, rand_r=None, suite=crypto.SUITE_128
    )
    assert keys.salt_key == cm.salt_key[:8]  # same PRF stream, shorter output
