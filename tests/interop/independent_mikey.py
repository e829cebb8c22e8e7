"""Independent MIKEY-TICKET test peer, written only from RFC 3830/4563/4567/6043 + PROFILE.md.

This module deliberately shares no code with ``mikey/``, ``kms/`` or ``kms_client/``: it exists
so that the project's implementation can be cross-checked against a second reading of the
texts. It is compact, test-only code (dicts and tuples rather than value classes), uses only
hashlib/hmac/struct/os and ``cryptography`` for AES, and raises :class:`PeerError` for every
problem. Time and random bytes are parameters of every builder.

Section numbers cite RFC 6043 unless said otherwise.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# --- constants (RFC 3830 §6, RFC 6043 §6, IANA) -------------------------------------------

DT_ERROR = 6
DT_REQUEST_INIT_PSK = 11
DT_REQUEST_RESP = 13
DT_TRANSFER_INIT = 14
DT_TRANSFER_RESP = 15
DT_RESOLVE_INIT_PSK = 16
DT_RESOLVE_RESP = 18

PT_LAST = 0
PT_KEMAC = 1
PT_T = 5
PT_ID = 6
PT_V = 9
PT_SP = 10
PT_RAND = 11
PT_ERR = 12
PT_TR = 13
PT_IDR = 14
PT_RANDR = 15
PT_TP = 16
PT_TICKET = 17
PT_GEN_EXT = 21

MAP_SRTP_ID = 0
MAP_EMPTY = 1  # RFC 4563 §5
MAP_GENERIC_ID = 2  # RFC 6043 §6.1.1

ROLE_I, ROLE_R, ROLE_KMS, ROLE_PSK = 1, 2, 3, 4
TR_END = 3

KEY_TGK = 0
KEY_TEK = 2
KEY_MPK = 6
KV_NULL, KV_SPI = 0, 1

C_TEK = 0x2AD01C64  # RFC 3830 §4.1.3
C_ENCR = 0x150533E1  # RFC 3830 §4.1.4
C_AUTH = 0x2D22AC75
C_SALT = 0x29B88916

TLS_PROT_TYPE = 241  # PROFILE §5 default
NTP_EPOCH_OFFSET = 2208988800  # seconds 1900-01-01 .. 1970-01-01

MAC_LEN = {0: 0, 1: 20, 2: 32}  # RFC 3830 §6.2, RFC 6043 §6.2
TS_LEN = {0: 8, 1: 8, 2: 4, 3: 4}  # RFC 3830 §6.6, RFC 6043 §6.3

# flags in the 24 low bits of TP word 2 (RFC 6043 §6.10)
FLAG_BITS = {c: 1 << (16 - i) for i, c in enumerate("DEFGHIJKLMNO")}
PROFILE_FLAGS = frozenset("DEFGHNO")  # PROFILE §4


class PeerError(Exception):
    """Anything the independent peer refuses; ``err`` is the MIKEY error number to answer."""

    def __init__(self, msg: str, err: int = 12) -> None:
        super().__init__(msg)
        self.err = err


@dataclass(frozen=True)
class Suite:
    """The all-or-nothing algorithm suite of PROFILE §2 / RFC 6043 §12.1."""

    prf: int
    encr_alg: int
    auth_alg: int
    encr_len: int
    auth_len: int
    key_len: int  # TGK, MPK, TEK and RAND length

    salt_len: int = 14  # 112-bit AES-CM salting key, RFC 3830 §4.2.3


SUITE_128 = Suite(prf=0, encr_alg=1, auth_alg=1, encr_len=16, auth_len=20, key_len=16)
SUITE_256 = Suite(prf=1, encr_alg=3, auth_alg=2, encr_len=32, auth_len=32, key_len=32)
SUITES = {0: SUITE_128, 1: SUITE_256}


# --- PRF (RFC 3830 §4.1.2, RFC 6043 §6.1) ---------------------------------------------------


def p_hash(digest: str, s: bytes, label: bytes, m: int) -> bytes:
    """P(s, label, m) of RFC 3830 §4.1.2 (A_0 = label)."""
    out, a = b"", label
    for _ in range(m):
        a = hmac.new(s, a, digest).digest()
        out += hmac.new(s, a + label, digest).digest()
    return out


def prf(prf_func: int, inkey: bytes, label: bytes, outlen: int) -> bytes:
    """PRF(inkey, label) truncated to ``outlen`` bytes; 256-bit inkey blocks XORed."""
    if prf_func == 0:
        digest, hlen = "sha1", 20
    elif prf_func == 1:
        digest, hlen = "sha256", 32
    else:
        raise PeerError(f"unknown PRF {prf_func}", err=2)
    m = -(-outlen // hlen)
    acc = bytes(m * hlen)
    for i in range(0, max(len(inkey), 1), 32):
        block = p_hash(digest, inkey[i : i + 32], label, m)
        acc = bytes(x ^ y for x, y in zip(acc, block, strict=True))
    return acc[:outlen]


def lv(rand: bytes | None) -> bytes:
    """8-bit length || RAND, or a single 0 when the RAND is absent (§5.1.2)."""
    return b"\x00" if not rand else bytes([len(rand)]) + rand


def message_keys(
    suite: Suite,
    inkey: bytes,
    csb_id: int,
    kind: int,
    randri: bytes | None,
    randrr: bytes | None,
) -> tuple[bytes, bytes, bytes]:
    """(encr_key, auth_key, salt_key) per RFC 6043 §5.1.2; kind 1 = initial, 2 = response."""
    tail = struct.pack(">BIB", 0xFF, csb_id, kind) + lv(randri) + lv(randrr)
    enc = prf(suite.prf, inkey, struct.pack(">I", C_ENCR) + tail, suite.encr_len)
    auth = prf(suite.prf, inkey, struct.pack(">I", C_AUTH) + tail, suite.auth_len)
    salt = prf(suite.prf, inkey, struct.pack(">I", C_SALT) + tail, suite.salt_len)
    return enc, auth, salt


def derive_tek(
    prf_func: int, tgk: bytes, cs_id: int, randri: bytes | None, randrr: bytes | None, n: int
) -> bytes:
    """TEK = TLS PSK per RFC 6043 §5.1.3 / PROFILE §7."""
    label = struct.pack(">IBIB", C_TEK, cs_id, 0xFFFFFFFF, 0x03) + lv(randri) + lv(randrr)
    return prf(prf_func, tgk, label, n)


def aes_cm(key: bytes, salt: bytes, csb_id: int, t64: int, data: bytes) -> bytes:
    """AES-CM of RFC 3830 §4.2.3: IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000."""
    if len(salt) != 14:
        raise PeerError("salt_key must be 112 bits")
    x = int.from_bytes(salt, "big") ^ ((csb_id << 64) | t64)
    iv = x.to_bytes(14, "big") + b"\x00\x00"
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def mac(auth_alg: int, key: bytes, data: bytes) -> bytes:
    """The V payload MAC (RFC 3830 §4.2.4, RFC 6043 §6.2)."""
    if auth_alg == 1:
        return hmac.new(key, data, "sha1").digest()
    if auth_alg == 2:
        return hmac.new(key, data, "sha256").digest()
    raise PeerError(f"unsupported auth alg {auth_alg}", err=3)


def ntp(unix_seconds: float) -> int:
    """64-bit NTP-UTC timestamp (RFC 3830 §6.6)."""
    secs = int(unix_seconds)
    frac = int((unix_seconds - secs) * (1 << 32)) & 0xFFFFFFFF
    return ((secs + NTP_EPOCH_OFFSET) << 32) | frac


def ntp_to_unix(t64: int) -> float:
    return (t64 >> 32) - NTP_EPOCH_OFFSET + (t64 & 0xFFFFFFFF) / (1 << 32)


# --- encoding -------------------------------------------------------------------------------


def enc_hdr(
    dtype: int,
    v: int,
    prf_func: int,
    csb_id: int,
    cs_map: int,
    cs_entries: list[dict[str, Any]] | None = None,
) -> tuple[int, bytes]:
    """HDR minus its Next Payload byte, returned as a pseudo payload (type -1)."""
    entries = cs_entries or []
    info = b""
    if cs_map == MAP_GENERIC_ID:
        for e in entries:
            ps = bytes(e.get("policies", []))
            info += struct.pack(">BBB", e["cs_id"], e["prot"], (e.get("s", 0) << 7) | len(ps)) + ps
            sd = e.get("session_data", b"")
            info += struct.pack(">H", len(sd)) + sd
            spi = e.get("spi", b"")
            info += bytes([len(spi)]) + spi
    elif cs_map != MAP_EMPTY:
        raise PeerError("peer builds only Empty and GENERIC-ID maps")
    body = (
        struct.pack(">BB", 1, dtype),
        struct.pack(">BIBB", (v << 7) | prf_func, csb_id, len(entries), cs_map) + info,
    )
    return -1, body[0] + b"\xff" + body[1]  # 0xff placeholder for next payload


def assemble(parts: list[tuple[int, bytes]]) -> bytes:
    """Chain HDR + payload bodies; each body is its payload minus the leading Next byte."""
    hdr = parts[0][1]
    out = bytearray(hdr)
    out[2] = parts[1][0] if len(parts) > 1 else 0
    for i, (_ptype, body) in enumerate(parts[1:], start=1):
        nxt = parts[i + 1][0] if i + 1 < len(parts) else 0
        out += bytes([nxt]) + body
    return bytes(out)


def p_t(t64: int) -> tuple[int, bytes]:
    return PT_T, struct.pack(">BQ", 0, t64)


def p_randr(role: int, rand: bytes) -> tuple[int, bytes]:
    return PT_RANDR, struct.pack(">BB", role, len(rand)) + rand


def p_idr(role: int, data: bytes, id_type: int = 1) -> tuple[int, bytes]:
    return PT_IDR, struct.pack(">BBH", role, id_type, len(data)) + data


def p_tr(role: int, t64: int) -> tuple[int, bytes]:
    return PT_TR, struct.pack(">BBQ", role, 0, t64)


def p_gen_ext(gtype: int, data: bytes) -> tuple[int, bytes]:
    return PT_GEN_EXT, struct.pack(">BH", gtype, len(data)) + data


def p_sp(policy_no: int, prot: int, params: bytes = b"") -> tuple[int, bytes]:
    return PT_SP, struct.pack(">BBH", policy_no, prot, len(params)) + params


def p_err(errno: int) -> tuple[int, bytes]:
    return PT_ERR, struct.pack(">BH", errno, 0)


def key_data(keys: list[tuple[int, bytes, bytes]]) -> bytes:
    """Key data sub-payloads (RFC 3830 §6.13): (type, key, spi); KV = SPI when spi given."""
    out = b""
    for i, (ktype, key, spi) in enumerate(keys):
        nxt = 20 if i + 1 < len(keys) else 0
        kv = KV_SPI if spi else KV_NULL
        out += struct.pack(">BBH", nxt, (ktype << 4) | kv, len(key)) + key
        if spi:
            out += bytes([len(spi)]) + spi
    return out


def p_kemac(encr_alg: int, encr_data: bytes) -> tuple[int, bytes]:
    """KEMAC with NULL MAC (RFC 6043 §6.2: the message MAC is in V)."""
    return PT_KEMAC, struct.pack(">BH", encr_alg, len(encr_data)) + encr_data + b"\x00"


def tp_body(prf_func: int, flags: frozenset[str], tp_data: list[tuple[int, bytes]]) -> bytes:
    """Word 1..2 + TP Data of a TP/TICKET payload (§6.10); TP Data = first-type byte + chain."""
    data = b""
    if tp_data:
        data = bytes([tp_data[0][0]])
        for i, (_t, body) in enumerate(tp_data):
            nxt = tp_data[i + 1][0] if i + 1 < len(tp_data) else 0
            data += bytes([nxt]) + body
    bits = (prf_func << 17) | sum(FLAG_BITS[f] for f in flags)
    return (
        struct.pack(">HBB", 1, 1, 1) + bits.to_bytes(3, "big") + struct.pack(">H", len(data)) + data
    )


# --- decoding -------------------------------------------------------------------------------


@dataclass
class Msg:
    """A decoded message: header fields, payload list (dicts with offsets) and the raw bytes."""

    raw: bytes
    version: int
    dtype: int
    v: int
    prf: int
    csb_id: int
    cs_map: int
    cs: list[dict[str, Any]]
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def all(self, ptype: int, role: int | None = None) -> list[dict[str, Any]]:
        return [
            p
            for p in self.payloads
            if p["type"] == ptype and (role is None or p.get("role") == role)
        ]

    def one(self, ptype: int, role: int | None = None) -> dict[str, Any]:
        found = self.all(ptype, role)
        if len(found) != 1:
            raise PeerError(f"expected exactly one payload {ptype}/{role}, got {len(found)}")
        return found[0]

    def opt(self, ptype: int, role: int | None = None) -> dict[str, Any] | None:
        found = self.all(ptype, role)
        if len(found) > 1:
            raise PeerError(f"duplicate payload {ptype}/{role}")
        return found[0] if found else None

    @property
    def t64(self) -> int:
        return int(self.one(PT_T)["value"])


class _R:
    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise PeerError("truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])


def _payload(r: _R, ptype: int) -> dict[str, Any]:
    """Decode one payload (its type known from the previous Next field) at r.pos."""
    start = r.pos
    nxt = r.u8()
    p: dict[str, Any] = {"type": ptype, "start": start}
    if ptype == PT_T:
        tt = r.u8()
        if tt not in TS_LEN:
            raise PeerError("bad TS type", err=1)
        p["ts_type"] = tt
        p["value"] = int.from_bytes(r.take(TS_LEN[tt]), "big")
    elif ptype in (PT_IDR, PT_ID):
        if ptype == PT_IDR:
            p["role"] = r.u8()
        p["id_type"] = r.u8()
        p["data"] = r.take(r.u16())
    elif ptype == PT_RANDR:
        p["role"] = r.u8()
        p["rand"] = r.take(r.u8())
    elif ptype == PT_RAND:
        p["rand"] = r.take(r.u8())
    elif ptype == PT_V:
        alg = r.u8()
        if alg not in MAC_LEN:
            raise PeerError("bad auth alg", err=3)
        p["alg"] = alg
        p["mac_at"] = r.pos
        p["mac"] = r.take(MAC_LEN[alg])
    elif ptype == PT_KEMAC:
        p["encr_alg"] = r.u8()
        p["encr_data"] = r.take(r.u16())
        p["mac_alg"] = r.u8()
        if p["mac_alg"] not in MAC_LEN:
            raise PeerError("bad MAC alg", err=3)
        p["mac"] = r.take(MAC_LEN[p["mac_alg"]])
    elif ptype == PT_SP:
        p["policy_no"] = r.u8()
        p["prot"] = r.u8()
        p["params"] = r.take(r.u16())
    elif ptype == PT_ERR:
        p["errno"] = r.u8()
        p["reserved"] = r.u16()
    elif ptype == PT_TR:
        p["role"] = r.u8()
        tt = r.u8()
        if tt not in TS_LEN:
            raise PeerError("bad TS type")
        p["ts_type"] = tt
        p["value"] = int.from_bytes(r.take(TS_LEN[tt]), "big")
    elif ptype == PT_GEN_EXT:
        p["gtype"] = r.u8()
        p["data"] = r.take(r.u16())
    elif ptype in (PT_TP, PT_TICKET):
        p["ticket_type"] = r.u16()
        p["subtype"] = r.u8()
        p["ver"] = r.u8()
        bits = int.from_bytes(r.take(3), "big")
        p["prf"] = bits >> 17
        p["flags"] = frozenset(f for f, b in FLAG_BITS.items() if bits & b)
        p["res"] = bits & 0x1F
        tp_data = r.take(r.u16())
        p["tp_data"] = tp_data
        p["tp_payloads"] = decode_chain(tp_data[1:], tp_data[0]) if tp_data else []
        if ptype == PT_TICKET:
            p["ticket_data"] = r.take(r.u16())
            p["init_data_at"] = r.pos
            p["init_data"] = r.take(r.u16())
    else:
        raise PeerError(f"unknown payload type {ptype}")
    p["end"] = r.pos
    p["next"] = nxt
    return p


def decode_chain(buf: bytes, first: int) -> list[dict[str, Any]]:
    """Decode a payload chain whose first payload has type ``first`` (used for TP Data)."""
    r = _R(buf)
    out, ptype = [], first
    while ptype != PT_LAST:
        p = _payload(r, ptype)
        p["raw"] = buf[p["start"] : p["end"]]
        out.append(p)
        ptype = p["next"]
    if r.pos != len(buf):
        raise PeerError("trailing bytes in payload chain")
    return out


def decode(raw: bytes) -> Msg:
    """Decode a whole MIKEY message (RFC 3830 §6.1 + RFC 6043 §6)."""
    r = _R(raw)
    version, dtype, nxt, vprf = r.u8(), r.u8(), r.u8(), r.u8()
    if version != 1:
        raise PeerError("version must be 1")
    csb_id, ncs, cs_map = r.u32(), r.u8(), r.u8()
    cs: list[dict[str, Any]] = []
    if cs_map == MAP_GENERIC_ID:
        for _ in range(ncs):
            cs_id, prot, sp = r.u8(), r.u8(), r.u8()
            pols = list(r.take(sp & 0x7F))
            sd = r.take(r.u16())
            spi = r.take(r.u8())
            cs.append(
                {
                    "cs_id": cs_id,
                    "prot": prot,
                    "s": sp >> 7,
                    "policies": pols,
                    "session_data": sd,
                    "spi": spi,
                }
            )
    elif cs_map == MAP_EMPTY:
        if ncs != 0:
            raise PeerError("Empty map with #CS != 0")
    elif cs_map == MAP_SRTP_ID:
        for _ in range(ncs):
            cs.append({"srtp": r.take(9)})
    else:
        raise PeerError("unknown CS ID map type")
    msg = Msg(raw, version, dtype, vprf >> 7, vprf & 0x7F, csb_id, cs_map, cs)
    ptype = nxt
    while ptype != PT_LAST:
        p = _payload(r, ptype)
        msg.payloads.append(p)
        ptype = p["next"]
    if r.pos != len(raw):
        raise PeerError("trailing bytes after last payload")
    if msg.payloads and msg.payloads[-1]["type"] != PT_V and dtype != DT_ERROR:
        raise PeerError("V must be last")
    return msg


def decrypt_kemac(msg: Msg, encr: bytes, salt: bytes) -> list[dict[str, Any]]:
    """Decrypt the message's KEMAC and decode its key data sub-payloads."""
    k = msg.one(PT_KEMAC)
    if k["mac_alg"] != 0:
        raise PeerError("KEMAC MAC alg must be NULL in MIKEY-TICKET", err=3)
    if k["encr_alg"] not in (1, 3) or len(encr) != (16 if k["encr_alg"] == 1 else 32):
        raise PeerError("KEMAC encr alg does not match suite", err=4)
    plain = aes_cm(encr, salt, msg.csb_id, msg.t64, k["encr_data"])
    return decode_keys(plain)


def decode_keys(plain: bytes) -> list[dict[str, Any]]:
    r = _R(plain)
    keys = []
    nxt = 20
    while nxt == 20:
        nxt = r.u8()
        tkv = r.u8()
        ktype, kv = tkv >> 4, tkv & 0xF
        key = r.take(r.u16())
        salt = r.take(r.u16()) if ktype in (1, 3, 5) else b""
        spi = b""
        if kv == KV_SPI:
            spi = r.take(r.u8())
        elif kv == 2:
            r.take(r.u8())
            r.take(r.u8())
        elif kv != KV_NULL:
            raise PeerError("bad KV type")
        keys.append({"type": ktype, "kv": kv, "key": key, "salt": salt, "spi": spi})
    if nxt != 0 or r.pos != len(plain):
        raise PeerError("bad key data chain (wrong key?)", err=0)
    return keys


# --- MAC coverage (RFC 6043 §5.5, DIGEST §2.19) ----------------------------------------------


def sign(parts: list[tuple[int, bytes]], suite: Suite, auth_key: bytes, tail: bytes) -> bytes:
    """Assemble with a V payload whose MAC covers message-without-MAC || tail."""
    body = assemble([*parts, (PT_V, bytes([suite.auth_alg]))])
    return body + mac(suite.auth_alg, auth_key, body + tail)


def mac_input(msg: Msg, tail: bytes, exclude_init_data: bool = False) -> bytes:
    v = msg.payloads[-1]
    if v["type"] != PT_V:
        raise PeerError("no V payload")
    body = msg.raw[: v["mac_at"]]
    if exclude_init_data:
        for t in msg.all(PT_TICKET):
            a = t["init_data_at"]
            body = body[:a] + body[t["end"] :]
            # Initiator Data is the last field of TICKET: dropping [a, end) is exact.
    return body + tail


def verify(msg: Msg, suite: Suite, auth_key: bytes, tail: bytes, excl: bool = False) -> None:
    v = msg.payloads[-1]
    if v["alg"] != suite.auth_alg:
        raise PeerError("auth alg does not match suite", err=5)
    want = mac(suite.auth_alg, auth_key, mac_input(msg, tail, excl))
    if not hmac.compare_digest(want, v["mac"]):
        raise PeerError("MAC mismatch", err=0)


def check_time(msg: Msg, now: float, skew: float = 300.0) -> None:
    t = msg.one(PT_T)
    if t["ts_type"] != 0:
        raise PeerError("profile requires NTP-UTC", err=1)
    if abs(ntp_to_unix(t["value"]) - now) > skew:
        raise PeerError("timestamp out of window", err=1)


def suite_of(msg: Msg) -> Suite:
    if msg.prf not in SUITES:
        raise PeerError("unsupported PRF", err=2)
    return SUITES[msg.prf]


def identity(msg: Msg, role: int) -> bytes:
    return bytes(msg.one(PT_IDR, role)["data"])


# --- Ticket Request (§4.2.1, PROFILE §4) -----------------------------------------------------


def build_request_init(
    *,
    suite: Suite,
    psk: bytes,
    csb_id: int,
    now: float,
    randri: bytes,
    id_i: bytes,
    id_kms: bytes,
    id_rs: list[bytes],
    id_psk: bytes | None = None,
    validity: float | None = 3600.0,
    flags: frozenset[str] = PROFILE_FLAGS,
    tp_prf: int | None = None,
    send_idr_kms: bool = True,
) -> bytes:
    """REQUEST_INIT_PSK = HDR, T, RANDRi, IDRi, IDRkms, TP, [IDRpsk], V.

    The keyword knobs (validity None = no TRe, other flags, a TP PRF differing from the
    HDR's, IDRkms left out) build requests RFC 6043 allows but PROFILE §4 does not send.
    """
    # TP KEMAC: NULL/NULL, key data zeroed (§6.10); PROFILE §2 gives every key an SPI.
    zero_tgk = key_data([(KEY_TGK, bytes(suite.key_len), bytes(4))])
    kemac = (PT_KEMAC, struct.pack(">BH", 0, len(zero_tgk)) + zero_tgk + b"\x00")
    tp_data = [
        p_idr(ROLE_I, id_i),
        *([p_tr(TR_END, ntp(now + validity))] if validity is not None else []),
        kemac,
        *[p_idr(ROLE_R, r) for r in id_rs],
    ]
    parts = [
        enc_hdr(DT_REQUEST_INIT_PSK, 1, suite.prf, csb_id, MAP_EMPTY),
        p_t(ntp(now)),
        p_randr(ROLE_I, randri),
        p_idr(ROLE_I, id_i),
        *([p_idr(ROLE_KMS, id_kms)] if send_idr_kms else []),
        (PT_TP, tp_body(suite.prf if tp_prf is None else tp_prf, flags, tp_data)),
    ]
    if id_psk is not None:
        parts.append(p_idr(ROLE_PSK, id_psk, id_type=2))
    _, auth, _ = message_keys(suite, psk, csb_id, 1, randri, None)
    return sign(parts, suite, auth, id_i + id_kms)


@dataclass
class Obtained:
    """What an initiator learned from REQUEST_RESP."""

    ticket_body: bytes  # TICKET payload minus its Next byte, copied verbatim into TRANSFER_INIT
    ticket: dict[str, Any]
    mpki: bytes
    tgk: bytes
    spi: bytes


def read_request_resp(resp: bytes, request: bytes, psk: bytes, now: float) -> Obtained:
    """Verify REQUEST_RESP (MAC over resp || REQUEST_INIT) and decrypt MPKi + TGK."""
    req = decode(request)
    m = decode(resp)
    if m.dtype == DT_ERROR:
        raise PeerError(f"KMS error {m.one(PT_ERR)['errno']}", err=m.one(PT_ERR)["errno"])
    if m.dtype != DT_REQUEST_RESP or m.csb_id != req.csb_id or m.prf != req.prf:
        raise PeerError("not a REQUEST_RESP to our request")
    suite = suite_of(m)
    check_time(m, now)
    randri = req.one(PT_RANDR, ROLE_I)["rand"]
    enc, auth, salt = message_keys(suite, psk, m.csb_id, 2, randri, None)
    verify(m, suite, auth, request)
    keys = decrypt_kemac(m, enc, salt)
    mpk = [k for k in keys if k["type"] == KEY_MPK]
    tgk = [k for k in keys if k["type"] in (KEY_TGK, 4)]
    if len(mpk) != 1 or len(tgk) != 1:
        raise PeerError("expected one MPK and one TGK")
    t = m.one(PT_TICKET)
    return Obtained(
        m.raw[t["start"] + 1 : t["end"]], t, mpk[0]["key"], tgk[0]["key"], tgk[0]["spi"]
    )


# --- Ticket Transfer (§4.2.2, PROFILE §5) ----------------------------------------------------


def build_transfer_init(
    *,
    ob: Obtained,
    suite: Suite,
    csb_id: int,
    now: float,
    randri: bytes,
    id_i: bytes,
    id_r: bytes,
    sdp_ids: bytes = b"mikey",
    cs_id: int = 1,
    prot: int = TLS_PROT_TYPE,
) -> bytes:
    """TRANSFER_INIT = HDR(GENERIC-ID, #P=0), T, RANDRi, IDRi, IDRr, TICKET, GEN_EXT, V."""
    cs = [{"cs_id": cs_id, "prot": prot, "policies": [], "spi": ob.spi}]
    parts = [
        enc_hdr(DT_TRANSFER_INIT, 1, suite.prf, csb_id, MAP_GENERIC_ID, cs),
        p_t(ntp(now)),
        p_randr(ROLE_I, randri),
        p_idr(ROLE_I, id_i),
        p_idr(ROLE_R, id_r),
        (PT_TICKET, ob.ticket_body),
        p_gen_ext(1, sdp_ids),
    ]
    _, auth, _ = message_keys(suite, ob.mpki, csb_id, 1, randri, None)
    body = assemble([*parts, (PT_V, bytes([suite.auth_alg]))])
    m = decode(body + bytes(suite.auth_len))
    return body + mac(suite.auth_alg, auth, mac_input(m, id_i + id_r, exclude_init_data=True))


def verify_transfer_resp(resp: bytes, init: bytes, mpki: bytes, now: float) -> Msg:
    """Initiator side: verify TRANSFER_RESP (MAC over resp || TRANSFER_INIT)."""
    i = decode(init)
    m = decode(resp)
    if m.dtype == DT_ERROR:
        raise PeerError(f"peer error {m.one(PT_ERR)['errno']}", err=m.one(PT_ERR)["errno"])
    if m.dtype != DT_TRANSFER_RESP or m.csb_id != i.csb_id or m.prf != i.prf:
        raise PeerError("not a TRANSFER_RESP to our TRANSFER_INIT")
    suite = suite_of(m)
    check_time(m, now)
    randri = i.one(PT_RANDR, ROLE_I)["rand"]
    randrr = m.one(PT_RANDR, ROLE_R)["rand"]
    _, auth, _ = message_keys(suite, mpki, m.csb_id, 2, randri, randrr)
    verify(m, suite, auth, init)
    if m.cs_map != MAP_GENERIC_ID or len(m.cs) != 1:
        raise PeerError("TRANSFER_RESP must carry one GENERIC-ID CS")
    if len(m.cs[0]["policies"]) not in (0, 1):
        raise PeerError("#P must be 0 or 1")
    return m


def initiator_psk(init: bytes, resp: bytes, tgk: bytes) -> bytes:
    """The TLS PSK (= TEK) the initiator derives after TRANSFER_RESP (PROFILE §7)."""
    i, m = decode(init), decode(resp)
    suite = suite_of(i)
    return derive_tek(
        i.prf,
        tgk,
        i.cs[0]["cs_id"],
        i.one(PT_RANDR, ROLE_I)["rand"],
        m.one(PT_RANDR, ROLE_R)["rand"],
        suite.key_len,
    )


# --- Ticket Resolve (§4.2.3, PROFILE §6) -----------------------------------------------------


def ticket_body_of(init: bytes) -> tuple[Msg, bytes]:
    i = decode(init)
    t = i.one(PT_TICKET)
    return i, init[t["start"] + 1 : t["end"]]


def build_resolve_init(
    *,
    transfer_init: bytes,
    suite: Suite,
    psk: bytes,
    csb_id: int,
    now: float,
    randrr: bytes,
    id_r: bytes,
    id_kms: bytes,
    id_psk: bytes | None = None,
) -> bytes:
    """RESOLVE_INIT_PSK = HDR(Empty), T, RANDRr, IDRr, IDRkms, TICKET (verbatim), [IDRpsk], V."""
    _, ticket = ticket_body_of(transfer_init)
    parts = [
        enc_hdr(DT_RESOLVE_INIT_PSK, 1, suite.prf, csb_id, MAP_EMPTY),
        p_t(ntp(now)),
        p_randr(ROLE_R, randrr),
        p_idr(ROLE_R, id_r),
        p_idr(ROLE_KMS, id_kms),
        (PT_TICKET, ticket),
    ]
    if id_psk is not None:
        parts.append(p_idr(ROLE_PSK, id_psk, id_type=2))
    _, auth, _ = message_keys(suite, psk, csb_id, 1, None, randrr)
    return sign(parts, suite, auth, id_r + id_kms)


def read_resolve_resp(
    resp: bytes, request: bytes, psk: bytes, now: float
) -> tuple[bytes, bytes, bytes]:
    """Verify RESOLVE_RESP, return (MPKi, TGK, SPI)."""
    req = decode(request)
    m = decode(resp)
    if m.dtype == DT_ERROR:
        raise PeerError(f"KMS error {m.one(PT_ERR)['errno']}", err=m.one(PT_ERR)["errno"])
    if m.dtype != DT_RESOLVE_RESP or m.csb_id != req.csb_id or m.prf != req.prf:
        raise PeerError("not a RESOLVE_RESP to our request")
    suite = suite_of(m)
    check_time(m, now)
    randrr = req.one(PT_RANDR, ROLE_R)["rand"]
    enc, auth, salt = message_keys(suite, psk, m.csb_id, 2, None, randrr)
    verify(m, suite, auth, request)
    keys = decrypt_kemac(m, enc, salt)
    mpk = [k for k in keys if k["type"] == KEY_MPK]
    tgk = [k for k in keys if k["type"] in (KEY_TGK, 4)]
    if len(mpk) != 1 or len(tgk) != 1:
        raise PeerError("expected one MPK and one TGK")
    return mpk[0]["key"], tgk[0]["key"], tgk[0]["spi"]


def verify_transfer_init(init: bytes, mpki: bytes, now: float) -> Msg:
    """Responder side, after resolving: verify TRANSFER_INIT's MAC (Initiator Data excluded)."""
    m = decode(init)
    if m.dtype != DT_TRANSFER_INIT:
        raise PeerError("not a TRANSFER_INIT", err=11)
    suite = suite_of(m)
    check_time(m, now)
    if m.cs_map != MAP_GENERIC_ID or len(m.cs) < 1:
        raise PeerError("TRANSFER_INIT needs a GENERIC-ID map")
    randri = m.one(PT_RANDR, ROLE_I)["rand"]
    _, auth, _ = message_keys(suite, mpki, m.csb_id, 1, randri, None)
    verify(m, suite, auth, identity(m, ROLE_I) + identity(m, ROLE_R), excl=True)
    return m


def build_transfer_resp(
    *,
    transfer_init: bytes,
    mpki: bytes,
    spi: bytes,
    now: float,
    randrr: bytes,
    id_r: bytes,
    sdp_ids: bytes = b"mikey",
) -> bytes:
    """TRANSFER_RESP = HDR(#P=1, SPI), T, RANDRr, IDRr, SP(TLS), GEN_EXT, V."""
    i = decode(transfer_init)
    suite = suite_of(i)
    cs = [
        {"cs_id": e["cs_id"], "prot": e["prot"], "policies": [0], "spi": e["spi"] or spi}
        for e in i.cs
    ]
    parts = [
        enc_hdr(DT_TRANSFER_RESP, 0, i.prf, i.csb_id, MAP_GENERIC_ID, cs),
        p_t(ntp(now)),
        p_randr(ROLE_R, randrr),
        p_idr(ROLE_R, id_r),
        p_sp(0, i.cs[0]["prot"]),
        p_gen_ext(1, sdp_ids),
    ]
    randri = i.one(PT_RANDR, ROLE_I)["rand"]
    _, auth, _ = message_keys(suite, mpki, i.csb_id, 2, randri, randrr)
    return sign(parts, suite, auth, transfer_init)


def responder_psk(init: bytes, tgk: bytes, randrr: bytes) -> bytes:
    i = decode(init)
    return derive_tek(
        i.prf,
        tgk,
        i.cs[0]["cs_id"],
        i.one(PT_RANDR, ROLE_I)["rand"],
        randrr,
        suite_of(i).key_len,
    )


# --- Error (§5.4, RFC 3830 §6.12) ------------------------------------------------------------


def build_error(
    failed: bytes, errno: int, now: float, auth: tuple[Suite, bytes] | None = None
) -> bytes:
    """Error = HDR(type 6, V=0, version/PRF/CSB ID copied), T, ERR, [V]."""
    prf_func, csb_id = 0, 0
    if len(failed) >= 8:
        prf_func, csb_id = failed[3] & 0x7F, int.from_bytes(failed[4:8], "big")
    parts = [
        enc_hdr(DT_ERROR, 0, prf_func, csb_id, MAP_EMPTY),
        p_t(ntp(now)),
        p_err(errno),
    ]
    if auth is None:
        return assemble(parts)
    return sign(parts, auth[0], auth[1], b"")


def read_error(raw: bytes) -> list[int]:
    m = decode(raw)
    if m.dtype != DT_ERROR:
        raise PeerError("not an Error message")
    m.one(PT_T)
    errs = [p["errno"] for p in m.all(PT_ERR)]
    if not errs:
        raise PeerError("Error message without ERR")
    return errs


# --- minimal KMS (own opaque ticket format) --------------------------------------------------


@dataclass
class KmsUser:
    psk: bytes
    may_act_as: tuple[bytes, ...]
    psk_id: bytes | None = None


@dataclass
class MiniKms:
    """A KMS that issues opaque random ticket ids and keeps their keys in memory."""

    identity: bytes
    users: dict[bytes, KmsUser]  # keyed by URI (IDRi / IDRr identity)
    random: Any  # callable n -> bytes
    clock: Any  # callable -> unix seconds
    tickets: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)
    ticket_type: int = 0xF000  # private use (RFC 6043 §6.10): the Ticket Data is ours alone
    grant_flags: frozenset[str] = PROFILE_FLAGS  # what this KMS grants (it decides, §4.2.1.5)
    grant_responders: tuple[bytes, ...] | None = None  # None: the requested IDRr
    grant_lifetime: float = 3600.0  # TRe of granted tickets, seconds from now

    def _user(self, m: Msg, role: int) -> tuple[bytes, KmsUser]:
        ids = m.opt(PT_IDR, ROLE_PSK)
        if ids is not None:
            for uri, u in self.users.items():
                if u.psk_id == ids["data"]:
                    return uri, u
            raise PeerError("unknown IDRpsk", err=7)
        uri = identity(m, role)
        if uri not in self.users:
            raise PeerError("unknown identity", err=7)
        return uri, self.users[uri]

    def handle(self, raw: bytes) -> tuple[int, bytes]:
        """Answer one HTTP body: (status, MIKEY body)."""
        try:
            m = decode(raw)
        except PeerError:
            return 400, build_error(raw, 12, self.clock())
        try:
            if m.dtype == DT_REQUEST_INIT_PSK:
                return 200, self.request(m)
            if m.dtype == DT_RESOLVE_INIT_PSK:
                return 200, self.resolve(m)
            raise PeerError("unsupported data type", err=11)
        except PeerError as e:
            status = {0: 403, 7: 403, 14: 403, 1: 409}.get(e.err, 400)
            return status, build_error(raw, e.err, self.clock())

    def request(self, m: Msg) -> bytes:
        suite = suite_of(m)
        check_time(m, self.clock())
        if m.cs_map != MAP_EMPTY:
            raise PeerError("REQUEST_INIT needs Empty map")
        id_i = identity(m, ROLE_I)
        id_kms = identity(m, ROLE_KMS)
        if id_kms != self.identity:
            raise PeerError("not our KMS identity", err=7)
        _, user = self._user(m, ROLE_I)
        if id_i not in user.may_act_as and id_i not in self.users:
            raise PeerError("not authorised", err=7)
        randri = m.one(PT_RANDR, ROLE_I)["rand"]
        _, auth, _ = message_keys(suite, user.psk, m.csb_id, 1, randri, None)
        verify(m, suite, auth, id_i + id_kms)
        if m.raw in self.seen:
            raise PeerError("replay", err=1)
        self.seen.add(m.raw)
        tp = m.one(PT_TP)
        id_rs = [p["data"] for p in tp["tp_payloads"] if p["type"] == PT_IDR and p["role"] == 2]
        if not id_rs:
            raise PeerError("TP without IDRr", err=15)
        now = self.clock()
        ticket_id = self.random(16)
        mpki, tgk, spi = self.random(suite.key_len), self.random(suite.key_len), self.random(4)
        self.tickets[ticket_id] = {
            "mpki": mpki,
            "tgk": tgk,
            "spi": spi,
            "id_rs": id_rs,
            "prf": suite.prf,
            "expires": now + 3600,
        }
        granted = [
            p_idr(ROLE_KMS, self.identity),
            p_idr(ROLE_I, id_i),
            p_tr(TR_END, ntp(now + self.grant_lifetime)),
            *[p_idr(ROLE_R, r) for r in (self.grant_responders or id_rs)],
        ]
        tbody = (
            struct.pack(">HBB", self.ticket_type, 1, 1)
            + tp_body(suite.prf, self.grant_flags, granted)[4:]
            + struct.pack(">H", len(ticket_id))
            + ticket_id
            + b"\x00\x00"
        )
        t64 = ntp(now)
        enc, auth2, salt = message_keys(suite, user.psk, m.csb_id, 2, randri, None)
        plain = key_data([(KEY_MPK, mpki, spi), (KEY_TGK, tgk, spi)])
        parts = [
            enc_hdr(DT_REQUEST_RESP, 0, m.prf, m.csb_id, MAP_EMPTY),
            p_t(t64),
            p_idr(ROLE_KMS, self.identity),
            (PT_TICKET, tbody),
            p_kemac(suite.encr_alg, aes_cm(enc, salt, m.csb_id, t64, plain)),
        ]
        return sign(parts, suite, auth2, m.raw)

    def resolve(self, m: Msg) -> bytes:
        suite = suite_of(m)
        check_time(m, self.clock())
        id_r = identity(m, ROLE_R)
        id_kms = identity(m, ROLE_KMS)
        if id_kms != self.identity:
            raise PeerError("not our KMS identity", err=7)
        _uri, user = self._user(m, ROLE_R)
        randrr = m.one(PT_RANDR, ROLE_R)["rand"]
        _, auth, _ = message_keys(suite, user.psk, m.csb_id, 1, None, randrr)
        verify(m, suite, auth, id_r + id_kms)
        if m.raw in self.seen:
            raise PeerError("replay", err=1)
        self.seen.add(m.raw)
        t = m.one(PT_TICKET)
        rec = self.tickets.get(t["ticket_data"])
        if rec is None or rec["expires"] < self.clock():
            raise PeerError("unknown ticket", err=14)
        if id_r not in rec["id_rs"] or (id_r not in user.may_act_as and id_r != _uri):
            raise PeerError("not authorised for this ticket", err=7)
        now = self.clock()
        t64 = ntp(now)
        enc, auth2, salt = message_keys(suite, user.psk, m.csb_id, 2, None, randrr)
        plain = key_data([(KEY_MPK, rec["mpki"], rec["spi"]), (KEY_TGK, rec["tgk"], rec["spi"])])
        parts = [
            enc_hdr(DT_RESOLVE_RESP, 0, m.prf, m.csb_id, MAP_EMPTY),
            p_t(t64),
            p_idr(ROLE_KMS, self.identity),
            p_kemac(suite.encr_alg, aes_cm(enc, salt, m.csb_id, t64, plain)),
            p_idr(ROLE_R, id_r),
        ]
        return sign(parts, suite, auth2, m.raw)


# --- RFC 6043 Appendix A base ticket (to check a KMS that claims ticket type 1) -------------

C_MPKI = 0x220E99A2  # Appendix A.2.2
C_MPKR = 0x1F4D675B


def open_base_ticket(ticket_body: bytes, tpk: bytes) -> dict[str, Any]:
    """Verify and open a type 1/1/1 TICKET value (payload minus Next byte) with the TPK.

    Ticket Data = THDR, T, RAND, KEMAC, [IDRpsk], V (A.1). THDR has no payload type number:
    Ticket Data begins with THDR's Next Payload field (A.3). Keys from the TPK use label
    const || 0xFF || 0xFFFFFFFF || 0x05 || len RAND || RAND with the Ticket Policy's PRF
    (A.2.1); the IV uses CSB ID 0xFFFFFFFF and the ticket's T (A.1); the V MAC covers the
    TICKET payload minus its Next field, Initiator Data length/data and the MAC (A.1).
    """
    fake = bytes([0]) + ticket_body  # give it a Next byte so _payload can parse it
    t = _payload(_R(fake), PT_TICKET)
    if (t["ticket_type"], t["subtype"], t["ver"]) != (1, 1, 1):
        raise PeerError("not a MIKEY base ticket", err=14)
    td = t["ticket_data"]
    r = _R(td)
    nxt = r.u8()
    r.take(r.u16())  # THDR Data
    payloads = []
    ptype = nxt
    while ptype != PT_LAST:
        p = _payload(r, ptype)
        payloads.append(p)
        ptype = p["next"]
    if r.pos != len(td):
        raise PeerError("trailing bytes in Ticket Data")
    types = [p["type"] for p in payloads]
    if types[:3] != [PT_T, PT_RAND, PT_KEMAC] or types[-1] != PT_V:
        raise PeerError(f"Ticket Data payload order {types} is not T, RAND, KEMAC, [IDRpsk], V")
    tp, rand, kemac, v = payloads[0], payloads[1], payloads[2], payloads[-1]
    prf_func = t["prf"]
    enc_len = {1: 16, 3: 32}.get(kemac["encr_alg"])
    if enc_len is None or kemac["mac_alg"] != 0:
        raise PeerError("base ticket KEMAC must be AES-CM with NULL MAC")
    label_tail = struct.pack(">BIB", 0xFF, 0xFFFFFFFF, 0x05) + lv(rand["rand"])
    enc = prf(prf_func, tpk, struct.pack(">I", C_ENCR) + label_tail, enc_len)
    auth_len = {1: 20, 2: 32}[v["alg"]]
    auth = prf(prf_func, tpk, struct.pack(">I", C_AUTH) + label_tail, auth_len)
    salt = prf(prf_func, tpk, struct.pack(">I", C_SALT) + label_tail, 14)
    # MAC field offset inside ticket_body: fake has one extra leading byte.
    td_start = len(fake) - len(td) - 2 - len(t["init_data"])  # start of Ticket Data in fake
    mac_at_fake = td_start + v["mac_at"]
    covered = fake[1:mac_at_fake]
    want = mac(v["alg"], auth, covered)
    if not hmac.compare_digest(want, v["mac"]):
        raise PeerError("base ticket MAC mismatch", err=14)
    ts = tp["value"] if tp["ts_type"] in (0, 1) else tp["value"] << 32
    plain = aes_cm(enc, salt, 0xFFFFFFFF, ts, kemac["encr_data"])
    keys = decode_keys(plain)
    if keys[0]["type"] != KEY_MPK:
        raise PeerError("base ticket KEMAC must start with the MPK")
    mpk = keys[0]["key"]
    mlabel = struct.pack(">BIB", 0xFF, 0xFFFFFFFF, 0x06) + lv(rand["rand"])
    return {
        "policy": t,
        "payloads": payloads,
        "keys": keys,
        "mpk": mpk,
        "mpki": prf(prf_func, mpk, struct.pack(">I", C_MPKI) + mlabel, len(mpk)),
        "mpkr": prf(prf_func, mpk, struct.pack(">I", C_MPKR) + mlabel, len(mpk)),
        "idrpsk": [p["data"] for p in payloads if p["type"] == PT_IDR and p["role"] == ROLE_PSK],
    }
