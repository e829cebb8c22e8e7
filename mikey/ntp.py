"""Unix time <-> NTP timestamps (RFC 3830 §6.6, RFC 6043 §6.3, RFC 4330 §3).

NTP seconds count from 1900-01-01. RFC 6043 §6.3 makes the RFC 4330 era rule
mandatory: a seconds field with its most significant bit clear means 2036–2104, so
values map onto 1968–2104 and nothing wraps in 2036.
"""

from __future__ import annotations

import math

__all__ = ["from_ntp32", "from_ntp64", "to_ntp32", "to_ntp64"]

_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_ERA = 1 << 32


def _seconds_to_ntp(seconds: int) -> int:
    ntp = seconds + _NTP_UNIX_OFFSET
    # RFC 4330 §3: representable range 1968-01-20 .. 2104-02-26.
    if not 0x80000000 <= ntp < _ERA + 0x80000000:
        raise ValueError("time outside the NTP range 1968-2104")
    return ntp % _ERA


def _ntp_to_seconds(ntp_seconds: int) -> int:
    if not ntp_seconds & 0x80000000:
        ntp_seconds += _ERA
    return ntp_seconds - _NTP_UNIX_OFFSET


def to_ntp64(unix: float) -> int:
    """64-bit NTP (32.32 fixed point) for a Unix time; fraction truncated to 2^-32 s."""
    secs = math.floor(unix)
    frac = min(int((unix - secs) * _ERA), _ERA - 1)
    return _seconds_to_ntp(secs) << 32 | frac


def from_ntp64(value: int) -> float:
    return _ntp_to_seconds(value >> 32) + (value & 0xFFFFFFFF) / _ERA


def to_ntp32(unix: float) -> int:
    """NTP-UTC-32: the seconds part only (RFC 6043 §6.3)."""
    return _seconds_to_ntp(math.floor(unix))


def from_ntp32(value: int) -> float:
    return float(_ntp_to_seconds(value))
