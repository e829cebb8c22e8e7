"""MIKEY payload codec: RFC 3830 §6 and RFC 6043 §6 (digest: DIGEST.md §1–§2).

Every payload is a frozen attrs value with a ``_pull_body`` classmethod and a
``_push_body`` method; the common Next Payload byte is handled once, by the chain
functions, because MIKEY payloads have no generic length: the Next field of payload *n*
names the type of payload *n+1* (RFC 3830 §6.1), and an unknown type cannot be skipped
(DIGEST §1.3, PROFILE §2: decode error). SIGN has no Next field and ends a chain.

A decoded :class:`Message` keeps its raw bytes and the byte span of every payload so
that MAC coverage (RFC 6043 §5.5) is computed over the bytes exactly as received.

``decode(encode(x)) == x`` for every value, and encoding is deterministic. Field values
that do not fit their wire width raise ``ValueError`` when encoding (a programming
error); malformed input raises only :class:`~mikey.errors.DecodeError`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar, Union

import attrs

from mikey._buffer import Buffer, Writer
from mikey.errors import DecodeError, ErrCode

__all__ = [
    "Cert",
    "Chash",
    "CsIdMap",
    "DataType",
    "Dh",
    "EmptyMap",
    "ErrorPayload",
    "GeneralExtension",
    "GenericCs",
    "GenericIdMap",
    "Header",
    "Id",
    "IdRole",
    "IdType",
    "Idr",
    "Kemac",
    "KeyData",
    "KeyType",
    "KeyValidity",
    "KvInterval",
    "KvNull",
    "KvSpi",
    "Message",
    "Payload",
    "PayloadType",
    "Pke",
    "PolicyParam",
    "Rand",
    "RandR",
    "RandRole",
    "SecurityPolicy",
    "Sign",
    "SrtpCs",
    "SrtpIdMap",
    "Ticket",
    "TicketFlags",
    "TicketPolicy",
    "Timestamp",
    "TimestampR",
    "TsRole",
    "TsType",
    "Verification",
    "decode_key_data",
    "decode_payload_chain",
    "encode_key_data",
    "encode_payload_chain",
]


class DataType(enum.IntEnum):
    """HDR data type (RFC 3830 §6.1 Table 6.1.a, RFC 6043 Table 6.1, IANA)."""

    PSK_INIT = 0
    PSK_RESP = 1
    PK_INIT = 2
    PK_RESP = 3
    DH_INIT = 4
    DH_RESP = 5
    ERROR = 6
    DHHMAC_INIT = 7
    DHHMAC_RESP = 8
    RSA_R_INIT = 9
    RSA_R_RESP = 10
    REQUEST_INIT_PSK = 11
    REQUEST_INIT_PK = 12
    REQUEST_RESP = 13
    TRANSFER_INIT = 14
    TRANSFER_RESP = 15
    RESOLVE_INIT_PSK = 16
    RESOLVE_INIT_PK = 17
    RESOLVE_RESP = 18


class PayloadType(enum.IntEnum):
    """Next Payload values (RFC 3830 Table 6.1.b, RFC 6043 Table 6.2)."""

    LAST = 0
    KEMAC = 1
    PKE = 2
    DH = 3
    SIGN = 4
    T = 5
    ID = 6
    CERT = 7
    CHASH = 8
    V = 9
    SP = 10
    RAND = 11
    ERR = 12
    TR = 13
    IDR = 14
    RANDR = 15
    TP = 16
    TICKET = 17
    KEY_DATA = 20
    GEN_EXT = 21


class TsType(enum.IntEnum):
    """TS type (RFC 3830 Table 6.6, RFC 6043 Table 6.8)."""

    NTP_UTC = 0
    NTP = 1
    COUNTER = 2
    NTP_UTC_32 = 3


class TsRole(enum.IntEnum):
    TIME_OF_ISSUE = 1
    VALID_FROM = 2
    VALID_TO = 3
    REKEYING_INTERVAL = 4


class IdType(enum.IntEnum):
    NAI = 0
    URI = 1
    BYTE_STRING = 2


class IdRole(enum.IntEnum):
    """ID Role (RFC 6043 Table 6.11; 6/7 from RFC 6509)."""

    INITIATOR = 1
    RESPONDER = 2
    KMS = 3
    PSK = 4
    APP = 5
    KMS_I = 6
    KMS_R = 7


class RandRole(enum.IntEnum):
    INITIATOR = 1
    RESPONDER = 2
    KMS = 3


class KeyType(enum.IntEnum):
    """Key data sub-payload Type (RFC 3830 Table 6.13.a, RFC 6043 Table 6.7)."""

    TGK = 0
    TGK_SALT = 1
    TEK = 2
    TEK_SALT = 3
    GTGK = 4
    GTGK_SALT = 5
    MPK = 6


_SALTED_KEY_TYPES = frozenset({KeyType.TGK_SALT, KeyType.TEK_SALT, KeyType.GTGK_SALT})


class TicketFlags(enum.IntFlag):
    """TP/TICKET flags D..O at their bit positions in the low 24 bits of word 2.

    RFC 6043 §6.10: ``Version(8) | PRF Func(7) | D E F G H I J K L M N O | Res(5)``.
    """

    D = 0x010000
    E = 0x008000
    F = 0x004000
    G = 0x002000
    H = 0x001000
    I = 0x000800  # noqa: E741 - the RFC's name
    J = 0x000400
    K = 0x000200
    L = 0x000100
    M = 0x000080
    N = 0x000040
    O = 0x000020  # noqa: E741 - the RFC's name


_FLAG_MASK = 0x01FFE0

# HDR fixed part (RFC 3830 §6.1): version, data type, next payload, V|PRF func, CSB ID,
# #CS, CS ID map type; the CS ID map info follows.
_HDR = struct.Struct(">BBBBIBB")

# Implied field lengths (RFC 3830 §6.2, §6.4, §6.6, §6.8; RFC 6043 §6.2, §6.3, §6.7).
_TS_LENGTH = {0: 8, 1: 8, 2: 4, 3: 4}
_MAC_LENGTH = {0: 0, 1: 20, 2: 32}
_HASH_LENGTH = {0: 20, 1: 16, 2: 32}
_DH_LENGTH = {0: 192, 1: 96, 2: 128}


def _check_range(lo: int, hi: int) -> Callable[[object, attrs.Attribute[int], int], None]:
    def check(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
        if not lo <= value <= hi:
            raise ValueError(f"{attr.name}={value} outside {lo}..{hi}")

    return check


_byte = _check_range(0, 0xFF)


# --------------------------------------------------------------------------- CS ID maps


@attrs.frozen
class SrtpCs:
    """One SRTP-ID map entry (RFC 3830 §6.1.1); its CS ID is its 1-based position."""

    policy_no: int = attrs.field(validator=_byte)
    ssrc: int = attrs.field(validator=_check_range(0, 0xFFFFFFFF))
    roc: int = attrs.field(validator=_check_range(0, 0xFFFFFFFF))


@attrs.frozen
class SrtpIdMap:
    map_type: ClassVar[int] = 0
    entries: tuple[SrtpCs, ...] = ()

    @property
    def cs_count(self) -> int:
        return len(self.entries)


@attrs.frozen
class EmptyMap:
    """RFC 4563 §5 Empty map: no map info; ``cs_count`` is kept for exact round trips."""

    map_type: ClassVar[int] = 1
    cs_count: int = attrs.field(default=0, validator=_byte)


@attrs.frozen
class GenericCs:
    """One GENERIC-ID map block (RFC 6043 §6.1.1)."""

    cs_id: int = attrs.field(validator=_byte)
    prot_type: int = attrs.field(validator=_byte)
    s: bool = False
    policies: tuple[int, ...] = ()
    session_data: bytes = b""
    spi: bytes = b""


@attrs.frozen
class GenericIdMap:
    map_type: ClassVar[int] = 2
    entries: tuple[GenericCs, ...] = ()

    @property
    def cs_count(self) -> int:
        return len(self.entries)


CsIdMap = Union[SrtpIdMap, EmptyMap, GenericIdMap]  # noqa: UP007 - runtime alias


def _pull_cs_map(buf: Buffer, map_type: int, count: int) -> CsIdMap:
    if map_type == 0:
        return SrtpIdMap(
            tuple(
                SrtpCs(buf.pull_uint8(), buf.pull_uint32(), buf.pull_uint32()) for _ in range(count)
            )
        )
    if map_type == 1:
        return EmptyMap(count)
    if map_type == 2:
        entries = []
        for _ in range(count):
            cs_id, prot, sp = buf.pull_uint8(), buf.pull_uint8(), buf.pull_uint8()
            policies = tuple(buf.pull_bytes(sp & 0x7F))
            session_data = buf.pull_bytes(buf.pull_uint16())
            spi = buf.pull_bytes(buf.pull_uint8())
            entries.append(GenericCs(cs_id, prot, bool(sp & 0x80), policies, session_data, spi))
        return GenericIdMap(tuple(entries))
    raise DecodeError(f"unknown CS ID map type {map_type}")


def _push_cs_map(w: Writer, cs_map: CsIdMap) -> None:
    if isinstance(cs_map, SrtpIdMap):
        for e in cs_map.entries:
            w.push_uint8(e.policy_no)
            w.push_uint32(e.ssrc)
            w.push_uint32(e.roc)
    elif isinstance(cs_map, GenericIdMap):
        for g in cs_map.entries:
            if len(g.policies) > 0x7F:
                raise ValueError("too many policies in a GENERIC-ID entry")
            w.push_uint8(g.cs_id)
            w.push_uint8(g.prot_type)
            w.push_uint8((0x80 if g.s else 0) | len(g.policies))
            w.push_bytes(bytes(g.policies))
            w.push_block16(g.session_data)
            w.push_block8(g.spi)


# ------------------------------------------------------------------------------- HDR


@attrs.frozen
class Header:
    """Common header (RFC 3830 §6.1, RFC 6043 §6.1); version is always 1.

    The header's Next Payload field is not stored: it is the type of the message's first
    payload.
    """

    data_type: int = attrs.field(validator=_byte)
    csb_id: int = attrs.field(validator=_check_range(0, 0xFFFFFFFF))
    cs_map: CsIdMap = EmptyMap()
    prf: int = attrs.field(default=0, validator=_check_range(0, 0x7F))
    v: bool = False

    VERSION: ClassVar[int] = 1


# ---------------------------------------------------------------------- key validity


@attrs.frozen
class KvNull:
    kv_type: ClassVar[int] = 0


@attrs.frozen
class KvSpi:
    kv_type: ClassVar[int] = 1
    spi: bytes


@attrs.frozen
class KvInterval:
    kv_type: ClassVar[int] = 2
    valid_from: bytes
    valid_to: bytes


KeyValidity = Union[KvNull, KvSpi, KvInterval]  # noqa: UP007 - runtime alias


def _pull_kv(buf: Buffer, kv_type: int) -> KeyValidity:
    if kv_type == 0:
        return KvNull()
    if kv_type == 1:
        return KvSpi(buf.pull_bytes(buf.pull_uint8()))
    if kv_type == 2:
        vf = buf.pull_bytes(buf.pull_uint8())
        return KvInterval(vf, buf.pull_bytes(buf.pull_uint8()))
    raise DecodeError(f"unknown key validity type {kv_type}")


def _push_kv(w: Writer, kv: KeyValidity) -> None:
    if isinstance(kv, KvSpi):
        w.push_block8(kv.spi)
    elif isinstance(kv, KvInterval):
        w.push_block8(kv.valid_from)
        w.push_block8(kv.valid_to)


# ---------------------------------------------------------------------------- payloads


class _PayloadBase:
    payload_type: ClassVar[int]

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Payload:  # pragma: no cover - abstract
        raise NotImplementedError

    def _push_body(self, w: Writer) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _pull_ts_value(buf: Buffer, ts_type: int) -> int:
    length = _TS_LENGTH.get(ts_type)
    if length is None:
        raise DecodeError(f"unknown TS type {ts_type}")
    return buf.pull_uint(length)


def _push_ts_value(w: Writer, ts_type: int, value: int) -> None:
    length = _TS_LENGTH.get(ts_type)
    if length is None:
        raise ValueError(f"unknown TS type {ts_type}")
    w.push_uint(value, length)


@attrs.frozen
class Timestamp(_PayloadBase):
    """T (RFC 3830 §6.6, RFC 6043 §6.3): ``value`` is the raw 64- or 32-bit integer."""

    payload_type: ClassVar[int] = PayloadType.T
    ts_type: int = attrs.field(validator=_byte)
    value: int = attrs.field(validator=_check_range(0, 2**64 - 1))

    def as_64bit(self) -> int:
        """The 64-bit value for IVs and PRF input: COUNTER left-padded, NTP-UTC-32 shifted
        into the seconds half (RFC 3830 §6.6 note, RFC 6043 §6.3)."""
        if self.ts_type == TsType.NTP_UTC_32:
            return self.value << 32
        return self.value

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Timestamp:
        ts_type = buf.pull_uint8()
        return cls(ts_type, _pull_ts_value(buf, ts_type))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.ts_type)
        _push_ts_value(w, self.ts_type, self.value)


@attrs.frozen
class TimestampR(_PayloadBase):
    """TR, timestamp with role (RFC 6043 §6.4)."""

    payload_type: ClassVar[int] = PayloadType.TR
    role: int = attrs.field(validator=_byte)
    ts_type: int = attrs.field(validator=_byte)
    value: int = attrs.field(validator=_check_range(0, 2**64 - 1))

    @classmethod
    def _pull_body(cls, buf: Buffer) -> TimestampR:
        role, ts_type = buf.pull_uint8(), buf.pull_uint8()
        return cls(role, ts_type, _pull_ts_value(buf, ts_type))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.role)
        w.push_uint8(self.ts_type)
        _push_ts_value(w, self.ts_type, self.value)


@attrs.frozen
class Rand(_PayloadBase):
    """RAND (RFC 3830 §6.11)."""

    payload_type: ClassVar[int] = PayloadType.RAND
    rand: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Rand:
        return cls(buf.pull_bytes(buf.pull_uint8()))

    def _push_body(self, w: Writer) -> None:
        w.push_block8(self.rand)


@attrs.frozen
class RandR(_PayloadBase):
    """RANDR, RAND with role (RFC 6043 §6.8)."""

    payload_type: ClassVar[int] = PayloadType.RANDR
    role: int = attrs.field(validator=_byte)
    rand: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> RandR:
        role = buf.pull_uint8()
        return cls(role, buf.pull_bytes(buf.pull_uint8()))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.role)
        w.push_block8(self.rand)


@attrs.frozen
class Id(_PayloadBase):
    """ID (RFC 3830 §6.7)."""

    payload_type: ClassVar[int] = PayloadType.ID
    id_type: int = attrs.field(validator=_byte)
    data: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Id:
        id_type = buf.pull_uint8()
        return cls(id_type, buf.pull_bytes(buf.pull_uint16()))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.id_type)
        w.push_block16(self.data)


@attrs.frozen
class Cert(_PayloadBase):
    """CERT (RFC 3830 §6.7), same layout as ID."""

    payload_type: ClassVar[int] = PayloadType.CERT
    cert_type: int = attrs.field(validator=_byte)
    data: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Cert:
        cert_type = buf.pull_uint8()
        return cls(cert_type, buf.pull_bytes(buf.pull_uint16()))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.cert_type)
        w.push_block16(self.data)


@attrs.frozen
class Idr(_PayloadBase):
    """IDR, ID with role (RFC 6043 §6.6). PROFILE §1: URIs are ID type 1, bare UTF-8."""

    payload_type: ClassVar[int] = PayloadType.IDR
    role: int = attrs.field(validator=_byte)
    id_type: int = attrs.field(validator=_byte)
    data: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Idr:
        role, id_type = buf.pull_uint8(), buf.pull_uint8()
        return cls(role, id_type, buf.pull_bytes(buf.pull_uint16()))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.role)
        w.push_uint8(self.id_type)
        w.push_block16(self.data)


@attrs.frozen
class Kemac(_PayloadBase):
    """KEMAC (RFC 3830 §6.2, RFC 6043 §6.2); ``encr_data`` is the (encrypted) key-data
    chain, see :func:`decode_key_data`. The MAC length is implied by ``mac_alg``."""

    payload_type: ClassVar[int] = PayloadType.KEMAC
    encr_alg: int = attrs.field(validator=_byte)
    encr_data: bytes = attrs.field(repr=False)
    mac_alg: int = attrs.field(default=0, validator=_byte)
    mac: bytes = b""

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Kemac:
        encr_alg = buf.pull_uint8()
        encr_data = buf.pull_bytes(buf.pull_uint16())
        mac_alg = buf.pull_uint8()
        length = _MAC_LENGTH.get(mac_alg)
        if length is None:
            raise DecodeError(f"unknown KEMAC MAC alg {mac_alg}", ErrCode.INVALID_MAC)
        return cls(encr_alg, encr_data, mac_alg, buf.pull_bytes(length))

    def _push_body(self, w: Writer) -> None:
        if _MAC_LENGTH.get(self.mac_alg) != len(self.mac):
            raise ValueError("KEMAC MAC length does not match its algorithm")
        w.push_uint8(self.encr_alg)
        w.push_block16(self.encr_data)
        w.push_uint8(self.mac_alg)
        w.push_bytes(self.mac)


@attrs.frozen
class Pke(_PayloadBase):
    """PKE envelope data (RFC 3830 §6.3): C (2 bits) | Data len (14 bits) | Data."""

    payload_type: ClassVar[int] = PayloadType.PKE
    cache: int = attrs.field(validator=_check_range(0, 3))
    data: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Pke:
        word = buf.pull_uint16()
        return cls(word >> 14, buf.pull_bytes(word & 0x3FFF))

    def _push_body(self, w: Writer) -> None:
        if len(self.data) > 0x3FFF:
            raise ValueError("PKE data too long")
        w.push_uint16(self.cache << 14 | len(self.data))
        w.push_bytes(self.data)


@attrs.frozen
class Dh(_PayloadBase):
    """DH data (RFC 3830 §6.4): the DH-value length is implied by the group."""

    payload_type: ClassVar[int] = PayloadType.DH
    group: int = attrs.field(validator=_byte)
    value: bytes
    kv: KeyValidity = KvNull()
    reserved: int = attrs.field(default=0, validator=_check_range(0, 15))

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Dh:
        group = buf.pull_uint8()
        length = _DH_LENGTH.get(group)
        if length is None:
            raise DecodeError(f"unknown DH group {group}", ErrCode.INVALID_DH)
        value = buf.pull_bytes(length)
        rk = buf.pull_uint8()
        return cls(group, value, _pull_kv(buf, rk & 0x0F), rk >> 4)

    def _push_body(self, w: Writer) -> None:
        if _DH_LENGTH.get(self.group) != len(self.value):
            raise ValueError("DH value length does not match its group")
        w.push_uint8(self.group)
        w.push_bytes(self.value)
        w.push_uint8(self.reserved << 4 | self.kv.kv_type)
        _push_kv(w, self.kv)


@attrs.frozen
class Sign(_PayloadBase):
    """SIGN (RFC 3830 §6.5): S type (4) | Signature len (12) | Signature; no Next field."""

    payload_type: ClassVar[int] = PayloadType.SIGN
    s_type: int = attrs.field(validator=_check_range(0, 15))
    signature: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Sign:
        word = buf.pull_uint16()
        return cls(word >> 12, buf.pull_bytes(word & 0x0FFF))

    def _push_body(self, w: Writer) -> None:
        if len(self.signature) > 0x0FFF:
            raise ValueError("signature too long")
        w.push_uint16(self.s_type << 12 | len(self.signature))
        w.push_bytes(self.signature)


@attrs.frozen
class Chash(_PayloadBase):
    """CHASH (RFC 3830 §6.8, RFC 6043 §6.7): hash length implied by the function."""

    payload_type: ClassVar[int] = PayloadType.CHASH
    hash_func: int = attrs.field(validator=_byte)
    digest: bytes

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Chash:
        func = buf.pull_uint8()
        length = _HASH_LENGTH.get(func)
        if length is None:
            raise DecodeError(f"unknown CHASH hash func {func}", ErrCode.INVALID_HA)
        return cls(func, buf.pull_bytes(length))

    def _push_body(self, w: Writer) -> None:
        if _HASH_LENGTH.get(self.hash_func) != len(self.digest):
            raise ValueError("CHASH length does not match its function")
        w.push_uint8(self.hash_func)
        w.push_bytes(self.digest)


@attrs.frozen
class Verification(_PayloadBase):
    """V (RFC 3830 §6.9): Auth alg then the MAC, its length implied by the algorithm."""

    payload_type: ClassVar[int] = PayloadType.V
    auth_alg: int = attrs.field(validator=_byte)
    mac: bytes = b""

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Verification:
        alg = buf.pull_uint8()
        length = _MAC_LENGTH.get(alg)
        if length is None:
            raise DecodeError(f"unknown V auth alg {alg}", ErrCode.INVALID_MAC)
        return cls(alg, buf.pull_bytes(length))

    def _push_body(self, w: Writer) -> None:
        if _MAC_LENGTH.get(self.auth_alg) != len(self.mac):
            raise ValueError("V MAC length does not match its algorithm")
        w.push_uint8(self.auth_alg)
        w.push_bytes(self.mac)


@attrs.frozen
class PolicyParam:
    """One SP Type/Length/Value (RFC 3830 §6.10)."""

    type: int = attrs.field(validator=_byte)
    value: bytes


@attrs.frozen
class SecurityPolicy(_PayloadBase):
    """SP (RFC 3830 §6.10)."""

    payload_type: ClassVar[int] = PayloadType.SP
    policy_no: int = attrs.field(validator=_byte)
    prot_type: int = attrs.field(validator=_byte)
    params: tuple[PolicyParam, ...] = ()

    @classmethod
    def _pull_body(cls, buf: Buffer) -> SecurityPolicy:
        policy_no, prot = buf.pull_uint8(), buf.pull_uint8()
        sub = buf.sub(buf.pull_uint16())
        params = []
        while not sub.eof():
            ptype = sub.pull_uint8()
            params.append(PolicyParam(ptype, sub.pull_bytes(sub.pull_uint8())))
        return cls(policy_no, prot, tuple(params))

    def _push_body(self, w: Writer) -> None:
        inner = Writer()
        for p in self.params:
            inner.push_uint8(p.type)
            inner.push_block8(p.value)
        w.push_uint8(self.policy_no)
        w.push_uint8(self.prot_type)
        w.push_block16(inner.getvalue())


@attrs.frozen
class ErrorPayload(_PayloadBase):
    """ERR (RFC 3830 §6.12, RFC 6043 §6.9)."""

    payload_type: ClassVar[int] = PayloadType.ERR
    err_no: int = attrs.field(validator=_byte)
    reserved: int = attrs.field(default=0, validator=_check_range(0, 0xFFFF))

    @classmethod
    def _pull_body(cls, buf: Buffer) -> ErrorPayload:
        return cls(buf.pull_uint8(), buf.pull_uint16())

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.err_no)
        w.push_uint16(self.reserved)


@attrs.frozen
class GeneralExtension(_PayloadBase):
    """GEN_EXT (RFC 3830 §6.15); type 1 = SDP IDs (RFC 4567 §4.1.4)."""

    payload_type: ClassVar[int] = PayloadType.GEN_EXT
    ext_type: int = attrs.field(validator=_byte)
    data: bytes

    SDP_IDS: ClassVar[int] = 1

    @classmethod
    def _pull_body(cls, buf: Buffer) -> GeneralExtension:
        ext_type = buf.pull_uint8()
        return cls(ext_type, buf.pull_bytes(buf.pull_uint16()))

    def _push_body(self, w: Writer) -> None:
        w.push_uint8(self.ext_type)
        w.push_block16(self.data)


@attrs.frozen
class TicketPolicy(_PayloadBase):
    """TP (RFC 6043 §6.10): ticket type, flags and the TP Data payload chain.

    ``payloads`` is TP Data decoded: ``[IDRkms], [IDRi], [TRs], [TRe], [TRr], [KEMAC],
    {IDRapp}, (IDRr)``. TP Data nests no TP/TICKET (it would allow unbounded recursion).
    """

    payload_type: ClassVar[int] = PayloadType.TP
    ticket_type: int = attrs.field(validator=_check_range(0, 0xFFFF))
    subtype: int = attrs.field(validator=_byte)
    version: int = attrs.field(validator=_byte)
    prf: int = attrs.field(validator=_check_range(0, 0x7F))
    flags: TicketFlags
    payloads: tuple[Payload, ...] = ()
    reserved: int = attrs.field(default=0, validator=_check_range(0, 0x1F))

    @classmethod
    def _pull_body(cls, buf: Buffer) -> TicketPolicy:
        ticket_type = buf.pull_uint16()
        subtype, version = buf.pull_uint8(), buf.pull_uint8()
        word = buf.pull_uint(3)
        tp_data = buf.pull_bytes(buf.pull_uint16())
        return cls(
            ticket_type,
            subtype,
            version,
            word >> 17,
            TicketFlags(word & _FLAG_MASK),
            decode_payload_chain(tp_data, nested=True),
            word & 0x1F,
        )

    def _push_body(self, w: Writer) -> None:
        w.push_uint16(self.ticket_type)
        w.push_uint8(self.subtype)
        w.push_uint8(self.version)
        w.push_uint(self.prf << 17 | int(self.flags) & _FLAG_MASK | self.reserved, 3)
        w.push_block16(encode_payload_chain(self.payloads))

    # Convenience views of TP Data -------------------------------------------------
    def identities(self, role: int) -> tuple[bytes, ...]:
        return tuple(p.data for p in self.payloads if isinstance(p, Idr) and p.role == role)

    def time(self, role: int) -> TimestampR | None:
        for p in self.payloads:
            if isinstance(p, TimestampR) and p.role == role:
                return p
        return None


@attrs.frozen
class Ticket(_PayloadBase):
    """TICKET (RFC 6043 §6.10): the granted policy, opaque Ticket Data and Initiator Data.

    ``encode_value``/``decode_value`` handle the payload without its Next field: that is
    the "TICKET payload value" the exchanges pass around (it is copied unchanged from
    REQUEST_RESP to TRANSFER_INIT to RESOLVE_INIT).
    """

    payload_type: ClassVar[int] = PayloadType.TICKET
    policy: TicketPolicy
    ticket_data: bytes
    initiator_data: bytes = b""

    @classmethod
    def _pull_body(cls, buf: Buffer) -> Ticket:
        policy = TicketPolicy._pull_body(buf)
        ticket_data = buf.pull_bytes(buf.pull_uint16())
        return cls(policy, ticket_data, buf.pull_bytes(buf.pull_uint16()))

    def _push_body(self, w: Writer) -> None:
        self.policy._push_body(w)
        w.push_block16(self.ticket_data)
        w.push_block16(self.initiator_data)

    def encode_value(self) -> bytes:
        w = Writer()
        self._push_body(w)
        return w.getvalue()

    @classmethod
    def decode_value(cls, data: bytes) -> Ticket:
        try:
            buf = Buffer(bytes(data))
            ticket = cls._pull_body(buf)
            buf.expect_end("TICKET")
        except DecodeError:
            raise
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"invalid TICKET: {exc}") from exc
        return ticket

    @property
    def initiator_data_size(self) -> int:
        """Bytes of Initiator Data length + Initiator Data, the tail that the TRANSFER_INIT
        MAC leaves out (RFC 6043 §5.5)."""
        return 2 + len(self.initiator_data)


@attrs.frozen
class KeyData:
    """Key data sub-payload (RFC 3830 §6.13, RFC 6043 §6.2.1): lives inside KEMAC."""

    payload_type: ClassVar[int] = PayloadType.KEY_DATA
    key_type: int = attrs.field(validator=_check_range(0, 15))
    key: bytes = attrs.field(repr=False)
    kv: KeyValidity = KvNull()
    salt: bytes | None = attrs.field(default=None, repr=False)

    @salt.validator
    def _check_salt(self, _attr: attrs.Attribute[bytes | None], value: bytes | None) -> None:
        if (self.key_type in _SALTED_KEY_TYPES) != (value is not None):
            raise ValueError("salt must be given exactly for the +SALT key types")

    @property
    def spi(self) -> bytes | None:
        return self.kv.spi if isinstance(self.kv, KvSpi) else None


def decode_key_data(data: bytes) -> tuple[KeyData, ...]:
    """Decode the (decrypted) Encr data of a KEMAC: a chain of key data sub-payloads."""
    buf = Buffer(bytes(data))
    out = []
    more = not buf.eof()
    while more:
        nxt = buf.pull_uint8()
        if nxt not in (0, PayloadType.KEY_DATA):
            raise DecodeError(f"payload type {nxt} inside KEMAC key data")
        tk = buf.pull_uint8()
        key_type, kv_type = tk >> 4, tk & 0x0F
        key = buf.pull_bytes(buf.pull_uint16())
        salt = buf.pull_bytes(buf.pull_uint16()) if key_type in _SALTED_KEY_TYPES else None
        out.append(KeyData(key_type, key, _pull_kv(buf, kv_type), salt))
        more = nxt == PayloadType.KEY_DATA
    buf.expect_end("KEMAC key data")
    return tuple(out)


def encode_key_data(keys: Sequence[KeyData]) -> bytes:
    w = Writer()
    for i, k in enumerate(keys):
        w.push_uint8(PayloadType.KEY_DATA if i + 1 < len(keys) else 0)
        w.push_uint8(k.key_type << 4 | k.kv.kv_type)
        w.push_block16(k.key)
        if k.salt is not None:
            w.push_block16(k.salt)
        _push_kv(w, k.kv)
    return w.getvalue()


Payload = Union[  # noqa: UP007 - runtime alias
    Timestamp,
    TimestampR,
    Rand,
    RandR,
    Id,
    Cert,
    Idr,
    Kemac,
    Pke,
    Dh,
    Sign,
    Chash,
    Verification,
    SecurityPolicy,
    ErrorPayload,
    GeneralExtension,
    TicketPolicy,
    Ticket,
]

_REGISTRY: dict[int, type[_PayloadBase]] = {
    cls.payload_type: cls
    for cls in (
        Timestamp,
        TimestampR,
        Rand,
        RandR,
        Id,
        Cert,
        Idr,
        Kemac,
        Pke,
        Dh,
        Sign,
        Chash,
        Verification,
        SecurityPolicy,
        ErrorPayload,
        GeneralExtension,
        TicketPolicy,
        Ticket,
    )
}


def _pull_chain(
    buf: Buffer, first: int, *, nested: bool
) -> tuple[tuple[Payload, ...], tuple[tuple[int, int], ...]]:
    payloads: list[Payload] = []
    spans: list[tuple[int, int]] = []
    nxt = first
    while nxt != PayloadType.LAST:
        cls = _REGISTRY.get(nxt)
        if cls is None or (nested and cls in (TicketPolicy, Ticket)):
            raise DecodeError(f"unknown or unexpected payload type {nxt}")
        start = buf.tell()
        payload: Payload
        if cls is Sign:
            payload = cls._pull_body(buf)
            nxt = PayloadType.LAST  # SIGN has no Next field: always last (RFC 3830 §6.5)
        else:
            nxt = buf.pull_uint8()
            payload = cls._pull_body(buf)
        payloads.append(payload)
        spans.append((start, buf.tell()))
    return tuple(payloads), tuple(spans)


def _push_chain(w: Writer, payloads: Sequence[Payload]) -> tuple[tuple[int, int], ...]:
    spans = []
    for i, p in enumerate(payloads):
        last = i + 1 == len(payloads)
        start = w.tell()
        if isinstance(p, Sign):
            if not last:
                raise ValueError("SIGN must be the last payload")
        else:
            w.push_uint8(0 if last else payloads[i + 1].payload_type)
        p._push_body(w)
        spans.append((start, w.tell()))
    return tuple(spans)


def _first_type(payloads: Sequence[Payload]) -> int:
    return payloads[0].payload_type if payloads else PayloadType.LAST


def decode_payload_chain(data: bytes, *, nested: bool = True) -> tuple[Payload, ...]:
    """Decode "First Payload, payloads..." (TP Data, Initiator Data, RFC 6043 §6.10).

    Empty data is an empty chain; a present First Payload byte of 0 is rejected so that
    encoding stays the exact inverse.
    """
    if not data:
        return ()
    buf = Buffer(bytes(data))
    first = buf.pull_uint8()
    if first == PayloadType.LAST:
        raise DecodeError("payload chain announces no payload")
    payloads, _ = _pull_chain(buf, first, nested=nested)
    buf.expect_end("payload chain")
    return payloads


def encode_payload_chain(payloads: Sequence[Payload]) -> bytes:
    if not payloads:
        return b""
    w = Writer()
    w.push_uint8(_first_type(payloads))
    _push_chain(w, payloads)
    return w.getvalue()


_P = TypeVar("_P", bound=_PayloadBase)


@attrs.frozen
class Message:
    """A MIKEY message: HDR then a payload chain (RFC 3830 §6).

    A decoded message remembers ``raw`` (the bytes as received) and ``spans`` (the
    ``(start, end)`` offsets of every payload in ``raw``, Next field included), which the
    MAC code uses; both are excluded from equality.
    """

    header: Header
    payloads: tuple[Payload, ...]
    raw: bytes = attrs.field(default=b"", eq=False, repr=False)
    spans: tuple[tuple[int, int], ...] = attrs.field(default=(), eq=False, repr=False)

    @property
    def data_type(self) -> int:
        return self.header.data_type

    def encode(self) -> bytes:
        return self.encode_with_spans()[0]

    def encode_with_spans(self) -> tuple[bytes, tuple[tuple[int, int], ...]]:
        h = self.header
        w = Writer()
        try:
            w.push_bytes(
                _HDR.pack(
                    Header.VERSION,
                    h.data_type,
                    _first_type(self.payloads),
                    (0x80 if h.v else 0) | h.prf,
                    h.csb_id,
                    h.cs_map.cs_count,
                    h.cs_map.map_type,
                )
            )
        except struct.error as exc:
            raise ValueError(f"header field out of range: {exc}") from exc
        _push_cs_map(w, h.cs_map)
        spans = _push_chain(w, self.payloads)
        return w.getvalue(), spans

    def with_raw(self) -> Message:
        """This message with ``raw``/``spans`` filled in from its encoding."""
        raw, spans = self.encode_with_spans()
        return attrs.evolve(self, raw=raw, spans=spans)

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Decode a complete message; anything malformed raises only DecodeError."""
        try:
            raw = bytes(data)
            buf = Buffer(raw)
            version, data_type, first, vp, csb_id, count, map_type = _HDR.unpack(
                buf.pull_bytes(_HDR.size)
            )
            if version != Header.VERSION:
                raise DecodeError(f"unsupported MIKEY version {version}")
            cs_map = _pull_cs_map(buf, map_type, count)
            header = Header(data_type, csb_id, cs_map, vp & 0x7F, bool(vp & 0x80))
            payloads, spans = _pull_chain(buf, first, nested=False)
            buf.expect_end("MIKEY message")
        except DecodeError:
            raise
        except (
            struct.error,
            ValueError,
            TypeError,
            IndexError,
            UnicodeDecodeError,
            RecursionError,
        ) as exc:
            raise DecodeError(f"malformed MIKEY message: {exc}") from exc
        return cls(header, payloads, raw, spans)

    def mac_coverage(self, *, exclude_initiator_data: bool = False) -> bytes:
        """The bytes of this message a V MAC covers, before anything is appended.

        RFC 6043 §5.5 / RFC 3830 §5.2: the message as sent except the MAC field itself
        (V's Next and Auth alg bytes are covered); with ``exclude_initiator_data`` the
        Initiator Data length and Initiator Data of every TICKET are left out too (the
        TRANSFER_INIT rule). The message must end with a V payload.
        """
        msg = self if self.raw else self.with_raw()
        if not msg.payloads or not isinstance(msg.payloads[-1], Verification):
            raise ValueError("the message does not end with a V payload")
        raw = msg.raw
        v_start = msg.spans[-1][0]
        out = bytearray()
        pos = 0
        if exclude_initiator_data:
            for payload, (_, end) in zip(msg.payloads, msg.spans, strict=True):
                if isinstance(payload, Ticket):
                    out += raw[pos : end - payload.initiator_data_size]
                    pos = end
        out += raw[pos : v_start + 2]
        return bytes(out)

    # Accessors ------------------------------------------------------------------------
    def all(self, kind: type[_P]) -> tuple[_P, ...]:
        return tuple(p for p in self.payloads if isinstance(p, kind))

    def first(self, kind: type[_P]) -> _P | None:
        for p in self.payloads:
            if isinstance(p, kind):
                return p
        return None

    def idr(self, role: int) -> Idr | None:
        for p in self.payloads:
            if isinstance(p, Idr) and p.role == role:
                return p
        return None

    def randr(self, role: int) -> RandR | None:
        for p in self.payloads:
            if isinstance(p, RandR) and p.role == role:
                return p
        return None
