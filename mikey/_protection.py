"""Shared machinery of the exchanges: MAC coverage, KEMAC sealing, checks of T and V.

MAC coverage (RFC 6043 §5.5, DIGEST §2.19): the whole message as sent except the MAC
field itself (V's Next and Auth alg bytes are covered), with the TICKET payloads'
Initiator Data length + Initiator Data left out where asked (TRANSFER_INIT), followed by
the appended bytes (identities, or the complete initial message).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from mikey import crypto
from mikey.crypto import MessageKeys, Suite
from mikey.errors import DecodeError, ErrCode, PolicyError, TimestampError
from mikey.ntp import from_ntp32, from_ntp64
from mikey.payloads import (
    Kemac,
    KeyData,
    Message,
    Payload,
    Timestamp,
    TimestampR,
    TsType,
    Verification,
    decode_key_data,
    encode_key_data,
)
from mikey.replay import ReplayCache, replay_key

Spec = tuple[type, int | None, int, int]


def mac_input(msg: Message, appended: bytes, *, exclude_initiator_data: bool = False) -> bytes:
    """The bytes the V payload's MAC covers (the message must end with V)."""
    if not msg.payloads or not isinstance(msg.payloads[-1], Verification):
        raise PolicyError("the V payload must be the last payload", ErrCode.UNSPECIFIED)
    return msg.mac_coverage(exclude_initiator_data=exclude_initiator_data) + appended


def seal(
    msg: Message, keys: MessageKeys, suite: Suite, appended: bytes, *, exclude: bool = False
) -> bytes:
    """Encode ``msg`` (whose last payload is a placeholder V) with its real MAC."""
    v = msg.payloads[-1]
    assert isinstance(v, Verification)
    placeholder = attrs.evolve(
        msg, payloads=(*msg.payloads[:-1], Verification(suite.auth_alg, bytes(suite.mac_len)))
    ).with_raw()
    covered = mac_input(placeholder, appended, exclude_initiator_data=exclude)
    mac = crypto.compute_mac(suite.auth_alg, keys.auth_key, covered)
    return placeholder.raw[: len(placeholder.raw) - suite.mac_len] + mac


def check_mac(
    msg: Message, keys: MessageKeys, suite: Suite, appended: bytes, *, exclude: bool = False
) -> None:
    v = msg.payloads[-1]
    assert isinstance(v, Verification)
    if v.auth_alg != suite.auth_alg:
        raise PolicyError(
            f"V auth alg {v.auth_alg} does not match the PRF's suite", ErrCode.INVALID_MAC
        )
    covered = mac_input(msg, appended, exclude_initiator_data=exclude)
    crypto.verify_mac(v.auth_alg, keys.auth_key, covered, v.mac)


def match(msg: Message, specs: Sequence[Spec]) -> list[list[Payload]]:
    """Check the payload sequence against ``(class, role, min, max)`` specs, in order."""
    return match_payloads(msg.payloads, specs)


def match_payloads(ps: Sequence[Payload], specs: Sequence[Spec]) -> list[list[Payload]]:
    groups: list[list[Payload]] = []
    i = 0
    for cls, role, lo, hi in specs:
        group: list[Payload] = []
        while (
            i < len(ps)
            and len(group) < hi
            and isinstance(ps[i], cls)
            and (role is None or getattr(ps[i], "role", None) == role)
        ):
            group.append(ps[i])
            i += 1
        if len(group) < lo:
            raise PolicyError(
                f"payload {cls.__name__}{'' if role is None else f' role {role}'} missing",
                ErrCode.UNSPECIFIED,
            )
        groups.append(group)
    if i != len(ps):
        raise PolicyError(
            f"unexpected payload {type(ps[i]).__name__} at position {i + 1}", ErrCode.UNSPECIFIED
        )
    return groups


def decode(data: bytes, data_type: int) -> Message:
    msg = Message.decode(data)
    if msg.data_type != data_type:
        raise PolicyError(
            f"expected data type {data_type}, got {msg.data_type}", ErrCode.INVALID_DT
        )
    return msg


def seconds(ts: Timestamp | TimestampR) -> float:
    """Unix seconds of an NTP-type timestamp; COUNTER timestamps are refused."""
    if ts.ts_type in (TsType.NTP_UTC, TsType.NTP):
        return from_ntp64(ts.value)
    if ts.ts_type == TsType.NTP_UTC_32:
        return from_ntp32(ts.value)
    raise TimestampError(f"timestamp type {ts.ts_type} not accepted")


def check_time(ts: Timestamp, now: float, max_skew: float) -> float:
    t = seconds(ts)
    if abs(t - now) > max_skew:
        raise TimestampError("timestamp outside the allowed clock skew")
    return t


def remember(cache: ReplayCache | None, data: bytes, timestamp: float, now: float) -> None:
    """RFC 3830 §5.3: only authenticated messages enter the replay cache."""
    if cache is not None:
        cache.check_and_add(replay_key(data), timestamp, now)


def make_kemac(
    keys: MessageKeys, suite: Suite, csb_id: int, t64: int, key_data: Sequence[KeyData]
) -> Kemac:
    """KEMAC = E(encr_key, key data...) with AES-CM and NULL MAC (RFC 6043 §4.2.1.5)."""
    plain = encode_key_data(key_data)
    return Kemac(
        suite.encr_alg,
        crypto.encrypt_key_data(
            suite.encr_alg,
            plain,
            encr_key=keys.encr_key,
            salt_key=keys.salt_key,
            csb_id=csb_id,
            t64=t64,
        ),
        crypto.MAC_NULL,
        b"",
    )


def open_kemac(
    kemac: Kemac, keys: MessageKeys, suite: Suite, csb_id: int, t64: int
) -> tuple[KeyData, ...]:
    if kemac.encr_alg != suite.encr_alg:
        raise PolicyError(
            f"KEMAC encr alg {kemac.encr_alg} does not match the suite", ErrCode.INVALID_EA
        )
    if kemac.mac_alg != crypto.MAC_NULL:
        raise PolicyError("KEMAC MAC alg must be NULL (the MAC is in V)", ErrCode.INVALID_MAC)
    plain = crypto.decrypt_key_data(
        kemac.encr_alg,
        kemac.encr_data,
        encr_key=keys.encr_key,
        salt_key=keys.salt_key,
        csb_id=csb_id,
        t64=t64,
    )
    try:
        return decode_key_data(plain)
    except DecodeError as exc:
        raise DecodeError("KEMAC key data does not decode") from exc


def uri(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("identity is not UTF-8", ErrCode.INVALID_ID) from exc
