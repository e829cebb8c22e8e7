"""MIKEY key derivation and message protection primitives.

- PRF: RFC 3830 §4.1.2 (MIKEY-1, HMAC-SHA-1) and RFC 6043 §6.1 (PRF-HMAC-SHA-256): the
  inkey is split into 256-bit blocks s_1..s_n (the last may be shorter) and the outputs
  P(s_i, label, m) are XORed. P is TLS 1.2's P_hash (PROFILE §7).
- Labels: RFC 3830 §4.1.3/§4.1.4, RFC 6043 §5.1.1–§5.1.3, §6.10 (Vr) and Appendix A.2.
- KEMAC encryption: AES-CM-128/256 (RFC 3830 §4.2.3, RFC 6043 §6.2) and AES-KW-128
  (RFC 3830 §4.2.3, RFC 3394 with the derived 64-bit salt as IV). cryptography's
  ``aes_key_wrap`` only supports the default IV A6A6A6A6A6A6A6A6, so RFC 3394 §2.2 is
  implemented here over AES-ECB.
- MACs: HMAC-SHA-1-160 and HMAC-SHA-256-256 (RFC 3830 §4.2.4, RFC 6043 §6.2), compared
  with ``hmac.compare_digest``; verification raises.
"""

from __future__ import annotations

import hmac
import math

import attrs
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mikey.errors import AuthenticationError, ErrCode, PolicyError

__all__ = [
    "AUTH_KEY_CONST",
    "ENCR_KEY_CONST",
    "MPKI_CONST",
    "MPKR_CONST",
    "MPKR_FORK_CONST",
    "SALT_KEY_CONST",
    "SUITE_128",
    "SUITE_256",
    "TEK_CONST",
    "TGK_AUTH_CONST",
    "TGK_ENCR_CONST",
    "TGK_FORK_CONST",
    "TGK_SALT_CONST",
    "MessageKeys",
    "Suite",
    "aes_cm",
    "aes_cm_iv",
    "aes_kw_unwrap",
    "aes_kw_wrap",
    "compute_mac",
    "decrypt_key_data",
    "derive_forked_key",
    "derive_message_keys",
    "derive_mpki",
    "derive_mpkr",
    "derive_tek",
    "derive_tgk_key_3830",
    "derive_tpk_keys",
    "derive_vr_keys",
    "encrypt_key_data",
    "label_3830_psk",
    "label_3830_tgk",
    "label_fork",
    "label_message",
    "label_mpk",
    "label_tek",
    "label_tpk",
    "label_vr",
    "p_hash",
    "prf",
    "suite_for_prf",
    "verify_mac",
]

# RFC 3830 Table 4.1.3 (from the TGK) and Table 4.1.4 (from a PSK/envelope key/MPK/TPK).
TEK_CONST = 0x2AD01C64
TGK_AUTH_CONST = 0x1B5C7973
TGK_ENCR_CONST = 0x15798CEF
TGK_SALT_CONST = 0x39A2C14B
ENCR_KEY_CONST = 0x150533E1
AUTH_KEY_CONST = 0x2D22AC75
SALT_KEY_CONST = 0x29B88916
# RFC 6043 Table 5.1 (forking) and Table A.1 (MPKi/MPKr from the base-ticket MPK).
MPKR_FORK_CONST = 0x2B288856
TGK_FORK_CONST = 0x1512B54A
MPKI_CONST = 0x220E99A2
MPKR_CONST = 0x1F4D675B

# KEMAC Encr alg (RFC 3830 Table 6.2.a, RFC 6043 Table 6.5) and MAC alg (6.2.b, 6.6).
ENCR_NULL, ENCR_AES_CM_128, ENCR_AES_KW_128, ENCR_AES_CM_256 = 0, 1, 2, 3
MAC_NULL, MAC_HMAC_SHA1_160, MAC_HMAC_SHA256_256 = 0, 1, 2

_CSB_NONE = 0xFFFFFFFF


@attrs.frozen
class Suite:
    """One algorithm suite (PROFILE §2; RFC 6043 §12.1: 256-bit is all-or-nothing).

    ``key_len`` is the length of the PSK/MPK/TGK/TEK and encr_key in bytes, ``rand_len``
    the RAND length our senders use.
    """

    prf: int
    encr_alg: int
    auth_alg: int
    key_len: int
    auth_key_len: int
    mac_len: int
    rand_len: int

    @property
    def salt_len(self) -> int:
        """112-bit salt for AES-CM (RFC 3830 §4.2.3)."""
        return 14


SUITE_128 = Suite(
    prf=0,
    encr_alg=ENCR_AES_CM_128,
    auth_alg=MAC_HMAC_SHA1_160,
    key_len=16,
    auth_key_len=20,
    mac_len=20,
    rand_len=16,
)
SUITE_256 = Suite(
    prf=1,
    encr_alg=ENCR_AES_CM_256,
    auth_alg=MAC_HMAC_SHA256_256,
    key_len=32,
    auth_key_len=32,
    mac_len=32,
    rand_len=32,
)


def suite_for_prf(prf_func: int) -> Suite:
    """The suite a received HDR PRF func selects; other PRFs raise ERR 2 (Invalid PRF)."""
    if prf_func == SUITE_128.prf:
        return SUITE_128
    if prf_func == SUITE_256.prf:
        return SUITE_256
    raise PolicyError(f"unsupported PRF func {prf_func}", ErrCode.INVALID_PRF)


# ----------------------------------------------------------------------------------- PRF


def _hash_name(prf_func: int) -> str:
    if prf_func == 0:
        return "sha1"
    if prf_func == 1:
        return "sha256"
    raise PolicyError(f"unsupported PRF func {prf_func}", ErrCode.INVALID_PRF)


def p_hash(secret: bytes, label: bytes, m: int, *, prf_func: int = 0) -> bytes:
    """P(s, label, m) of RFC 3830 §4.1.2: m HMAC blocks, A_0 = label."""
    name = _hash_name(prf_func)
    out = bytearray()
    a = label
    for _ in range(m):
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + label, name)
    return bytes(out)


def prf(inkey: bytes, label: bytes, outkey_len: int, *, prf_func: int = 0) -> bytes:
    """PRF(inkey, label) truncated to ``outkey_len`` bytes (RFC 3830 §4.1.2).

    The inkey is split into 256-bit blocks (the last may be shorter) whatever the hash;
    m = ceil(outkey_len / 160 bits) for MIKEY-1 and / 256 bits for PRF-HMAC-SHA-256
    (RFC 6043 §6.1). An empty inkey is one empty block.
    """
    if outkey_len < 0:
        raise ValueError("negative key length")
    digest_len = 20 if prf_func == 0 else 32
    _hash_name(prf_func)
    m = max(1, math.ceil(outkey_len / digest_len))
    blocks = [inkey[i : i + 32] for i in range(0, len(inkey), 32)] or [b""]
    # XOR of the blocks' outputs as one integer (a byte loop in Python cost more than
    # the HMACs themselves; the KMS and the focus derive several keys per exchange).
    acc = 0
    for s in blocks:
        acc ^= int.from_bytes(p_hash(s, label, m, prf_func=prf_func), "big")
    return acc.to_bytes(m * digest_len, "big")[:outkey_len]


# -------------------------------------------------------------------------------- labels


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _len8(data: bytes) -> bytes:
    if len(data) > 0xFF:
        raise ValueError("RAND longer than 255 bytes")
    return bytes([len(data)]) + data


def label_3830_tgk(const: int, cs_id: int, csb_id: int, rand: bytes) -> bytes:
    """RFC 3830 §4.1.3: const || cs_id || csb_id || RAND."""
    return _u32(const) + bytes([cs_id]) + _u32(csb_id) + rand


def label_3830_psk(const: int, csb_id: int, rand: bytes) -> bytes:
    """RFC 3830 §4.1.4: const || 0xFF || csb_id || RAND."""
    return _u32(const) + b"\xff" + _u32(csb_id) + rand


def label_message(
    const: int, csb_id: int, *, response: bool, rand_i: bytes | None, rand_r: bytes | None
) -> bytes:
    """RFC 6043 §5.1.2: const || 0xFF || CSB ID || 0x01/0x02 || len RANDRi || RANDRi ||
    len RANDRr || RANDRr (an absent RAND contributes a zero length byte)."""
    return (
        _u32(const)
        + b"\xff"
        + _u32(csb_id)
        + (b"\x02" if response else b"\x01")
        + _len8(rand_i or b"")
        + _len8(rand_r or b"")
    )


def label_tek(const: int, cs_id: int, *, rand_i: bytes | None, rand_r: bytes | None) -> bytes:
    """RFC 6043 §5.1.3: const || CS ID || 0xFFFFFFFF || 0x03 || len RANDRi || RANDRi ||
    len RANDRr || RANDRr."""
    return (
        _u32(const)
        + bytes([cs_id])
        + _u32(_CSB_NONE)
        + b"\x03"
        + _len8(rand_i or b"")
        + _len8(rand_r or b"")
    )


def label_fork(const: int, id_data: bytes, rand_kms: bytes) -> bytes:
    """RFC 6043 §5.1.1: const || 0xFF || 0xFFFFFFFF || 0x00 || len16 ID Data || ID Data ||
    len8 RANDRkms || RANDRkms."""
    if len(id_data) > 0xFFFF:
        raise ValueError("ID Data too long")
    return (
        _u32(const)
        + b"\xff"
        + _u32(_CSB_NONE)
        + b"\x00"
        + len(id_data).to_bytes(2, "big")
        + id_data
        + _len8(rand_kms)
    )


def label_vr(const: int) -> bytes:
    """RFC 6043 §6.10 (Vr in Initiator Data): const || 0xFF || 0xFFFFFFFF || 0x04."""
    return _u32(const) + b"\xff" + _u32(_CSB_NONE) + b"\x04"


def label_tpk(const: int, rand: bytes) -> bytes:
    """RFC 6043 A.2.1: const || 0xFF || 0xFFFFFFFF || 0x05 || len RAND || RAND."""
    return _u32(const) + b"\xff" + _u32(_CSB_NONE) + b"\x05" + _len8(rand)


def label_mpk(const: int, rand: bytes) -> bytes:
    """RFC 6043 A.2.2: const || 0xFF || 0xFFFFFFFF || 0x06 || len RAND || RAND."""
    return _u32(const) + b"\xff" + _u32(_CSB_NONE) + b"\x06" + _len8(rand)


# --------------------------------------------------------------------------- derivations


@attrs.frozen
class MessageKeys:
    """encr_key, auth_key and salt_key protecting one MIKEY message (secrets: no repr)."""

    encr_key: bytes = attrs.field(repr=False)
    auth_key: bytes = attrs.field(repr=False)
    salt_key: bytes = attrs.field(repr=False)


def _keys_from_label(
    inkey: bytes, make_label: object, suite: Suite, *, salt_len: int | None = None
) -> MessageKeys:
    assert callable(make_label)
    return MessageKeys(
        encr_key=prf(inkey, make_label(ENCR_KEY_CONST), suite.key_len, prf_func=suite.prf),
        auth_key=prf(inkey, make_label(AUTH_KEY_CONST), suite.auth_key_len, prf_func=suite.prf),
        salt_key=prf(
            inkey,
            make_label(SALT_KEY_CONST),
            suite.salt_len if salt_len is None else salt_len,
            prf_func=suite.prf,
        ),
    )


def derive_message_keys(
    inkey: bytes,
    *,
    csb_id: int,
    response: bool,
    rand_i: bytes | None,
    rand_r: bytes | None,
    suite: Suite,
    salt_len: int | None = None,
) -> MessageKeys:
    """Message keys from a PSK, envelope key, MPKi or MPKr' (RFC 6043 §5.1.2).

    ``salt_len`` defaults to 14 bytes (AES-CM); pass 8 for AES-KW (RFC 3830 §4.2.3).
    """
    return _keys_from_label(
        inkey,
        lambda c: label_message(c, csb_id, response=response, rand_i=rand_i, rand_r=rand_r),
        suite,
        salt_len=salt_len,
    )


def derive_tpk_keys(tpk: bytes, *, rand: bytes, suite: Suite) -> MessageKeys:
    """Base-ticket keys from the Ticket Protection Key (RFC 6043 A.2.1, label type 0x05)."""
    return _keys_from_label(tpk, lambda c: label_tpk(c, rand), suite)


def derive_vr_keys(mpkr: bytes, *, suite: Suite) -> MessageKeys:
    """Keys for the Vr MAC of Initiator Data, from the unforked MPKr (RFC 6043 §6.10)."""
    return _keys_from_label(mpkr, label_vr, suite)


def derive_mpki(mpk: bytes, rand: bytes, suite: Suite = SUITE_128) -> bytes:
    """MPKi from the base-ticket MPK and the ticket's RAND (RFC 6043 A.2.2)."""
    return prf(mpk, label_mpk(MPKI_CONST, rand), len(mpk), prf_func=suite.prf)


def derive_mpkr(mpk: bytes, rand: bytes, suite: Suite = SUITE_128) -> bytes:
    """MPKr from the base-ticket MPK and the ticket's RAND (RFC 6043 A.2.2)."""
    return prf(mpk, label_mpk(MPKR_CONST, rand), len(mpk), prf_func=suite.prf)


def derive_forked_key(
    key: bytes, *, const: int, id_data: bytes, rand_kms: bytes, suite: Suite
) -> bytes:
    """MPKr' (const MPKR_FORK_CONST) or TGK' (TGK_FORK_CONST), RFC 6043 §5.1.1;
    outkey_len = inkey_len."""
    return prf(key, label_fork(const, id_data, rand_kms), len(key), prf_func=suite.prf)


def derive_tek(
    tgk: bytes,
    *,
    cs_id: int,
    rand_i: bytes | None,
    rand_r: bytes | None,
    length: int,
    suite: Suite,
    const: int = TEK_CONST,
) -> bytes:
    """TEK (or another key, by ``const``) from a TGK/TGK'/GTGK, RFC 6043 §5.1.3."""
    return prf(
        tgk, label_tek(const, cs_id, rand_i=rand_i, rand_r=rand_r), length, prf_func=suite.prf
    )


def derive_tgk_key_3830(
    tgk: bytes, *, const: int, cs_id: int, csb_id: int, rand: bytes, length: int
) -> bytes:
    """RFC 3830 §4.1.3 derivation (MIKEY-1), for completeness and the DIGEST vectors."""
    return prf(tgk, label_3830_tgk(const, cs_id, csb_id, rand), length)


# ------------------------------------------------------------------------- encryption


def aes_cm_iv(salt_key: bytes, csb_id: int, t64: int) -> bytes:
    """IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000 (RFC 3830 §4.2.3)."""
    if len(salt_key) != 14:
        raise ValueError("AES-CM needs a 112-bit salt key")
    block = b"\x00\x00" + _u32(csb_id) + t64.to_bytes(8, "big")
    return bytes(a ^ b for a, b in zip(salt_key, block, strict=True)) + b"\x00\x00"


def aes_cm(key: bytes, salt_key: bytes, csb_id: int, t64: int, data: bytes) -> bytes:
    """AES in counter mode (SRTP AES-CM, prefix length 0): encrypt == decrypt.

    The low 16 bits of the counter count blocks; RFC 3830 limits the input to 2^23 bits,
    so the 128-bit increment of CTR mode never carries beyond them.
    """
    if len(key) not in (16, 32):
        raise ValueError("AES-CM needs a 128- or 256-bit key")
    if len(data) > 1 << 20:
        raise ValueError("AES-CM input above 2^23 bits")
    enc = Cipher(algorithms.AES(key), modes.CTR(aes_cm_iv(salt_key, csb_id, t64))).encryptor()
    return enc.update(data) + enc.finalize()


def aes_kw_wrap(kek: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """RFC 3394 §2.2.1 key wrap with an explicit 64-bit IV (RFC 3830 §4.2.3: IV = salt)."""
    if len(iv) != 8:
        raise ValueError("AES-KW IV is 64 bits")
    if len(plaintext) % 8 or len(plaintext) < 16:
        raise ValueError("AES-KW input must be a multiple of 64 bits, at least 128 bits")
    n = len(plaintext) // 8
    r = [plaintext[i * 8 : i * 8 + 8] for i in range(n)]
    a = iv
    enc = Cipher(algorithms.AES(kek), modes.ECB()).encryptor()  # noqa: S305 - RFC 3394 core
    for j in range(6):
        for i in range(n):
            b = enc.update(a + r[i])
            t = (n * j) + i + 1
            a = (int.from_bytes(b[:8], "big") ^ t).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def aes_kw_unwrap(kek: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """RFC 3394 §2.2.2 unwrap; a wrong key or tampering raises AuthenticationError."""
    if len(iv) != 8:
        raise ValueError("AES-KW IV is 64 bits")
    if len(ciphertext) % 8 or len(ciphertext) < 24:
        raise AuthenticationError("AES-KW ciphertext has an invalid length")
    n = len(ciphertext) // 8 - 1
    a = ciphertext[:8]
    r = [ciphertext[8 + i * 8 : 16 + i * 8] for i in range(n)]
    dec = Cipher(algorithms.AES(kek), modes.ECB()).decryptor()  # noqa: S305 - RFC 3394 core
    for j in range(5, -1, -1):
        for i in range(n - 1, -1, -1):
            t = (n * j) + i + 1
            a_x = (int.from_bytes(a, "big") ^ t).to_bytes(8, "big")
            b = dec.update(a_x + r[i])
            a = b[:8]
            r[i] = b[8:]
    if not hmac.compare_digest(a, iv):
        raise AuthenticationError("AES-KW integrity check failed")
    return b"".join(r)


def encrypt_key_data(
    encr_alg: int, plain: bytes, *, encr_key: bytes, salt_key: bytes, csb_id: int, t64: int
) -> bytes:
    """KEMAC Encr data for any registered Encr alg (RFC 3830 §4.2.3, RFC 6043 §6.2).

    NULL (0) is the identity; AES-CM-128 (1) / AES-CM-256 (3) need a 14-byte salt_key;
    AES-KW-128 (2) uses an 8-byte salt_key as the RFC 3394 IV and needs key data whose
    length is a multiple of 8 bytes (RFC 3830 defines no padding).
    """
    if encr_alg == ENCR_NULL:
        return plain
    if encr_alg in (ENCR_AES_CM_128, ENCR_AES_CM_256):
        _check_aes_key(encr_alg, encr_key)
        return aes_cm(encr_key, salt_key, csb_id, t64, plain)
    if encr_alg == ENCR_AES_KW_128:
        _check_aes_key(encr_alg, encr_key)
        return aes_kw_wrap(encr_key, salt_key, plain)
    raise PolicyError(f"unsupported KEMAC encr alg {encr_alg}", ErrCode.INVALID_EA)


def decrypt_key_data(
    encr_alg: int, data: bytes, *, encr_key: bytes, salt_key: bytes, csb_id: int, t64: int
) -> bytes:
    """Inverse of :func:`encrypt_key_data`; AES-KW integrity failures raise
    AuthenticationError."""
    if encr_alg == ENCR_AES_KW_128:
        _check_aes_key(encr_alg, encr_key)
        return aes_kw_unwrap(encr_key, salt_key, data)
    return encrypt_key_data(
        encr_alg, data, encr_key=encr_key, salt_key=salt_key, csb_id=csb_id, t64=t64
    )


def _check_aes_key(encr_alg: int, key: bytes) -> None:
    want = 32 if encr_alg == ENCR_AES_CM_256 else 16
    if len(key) != want:
        raise ValueError(f"encr alg {encr_alg} needs a {want * 8}-bit key")


# -------------------------------------------------------------------------------- MACs


def compute_mac(auth_alg: int, auth_key: bytes, data: bytes) -> bytes:
    """HMAC-SHA-1-160 (1) or HMAC-SHA-256-256 (2); NULL (0) is an empty MAC."""
    if auth_alg == MAC_HMAC_SHA1_160:
        return hmac.digest(auth_key, data, "sha1")
    if auth_alg == MAC_HMAC_SHA256_256:
        return hmac.digest(auth_key, data, "sha256")
    if auth_alg == MAC_NULL:
        return b""
    raise PolicyError(f"unsupported MAC alg {auth_alg}", ErrCode.INVALID_MAC)


def verify_mac(auth_alg: int, auth_key: bytes, data: bytes, mac: bytes) -> None:
    """Raise AuthenticationError unless ``mac`` is the MAC of ``data`` (constant time)."""
    if not hmac.compare_digest(compute_mac(auth_alg, auth_key, data), mac):
        raise AuthenticationError("MAC verification failed")
