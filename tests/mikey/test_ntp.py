"""Unix <-> NTP timestamps (RFC 3830 §6.6, RFC 6043 §6.3 with the RFC 4330 era rule)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mikey.ntp import from_ntp32, from_ntp64, to_ntp32, to_ntp64


def test_unix_epoch_is_ntp_2208988800() -> None:
    """1970-01-01 is 2208988800 s after 1900-01-01 (RFC 4330 §3)."""
    assert to_ntp64(0.0) == 2_208_988_800 << 32
    assert to_ntp32(0.0) == 2_208_988_800
    assert from_ntp64(2_208_988_800 << 32) == 0.0


def test_fraction_is_32_bit_fixed_point() -> None:
    """Half a second is 0x80000000 in the low 32 bits."""
    assert to_ntp64(1.5) & 0xFFFFFFFF == 0x80000000
    assert from_ntp64(to_ntp64(1.5)) == 1.5


def test_era_rule_maps_2036_onwards() -> None:
    """After 2036-02-07 the seconds field wraps; a clear MSB means 2036–2104 (RFC 4330 §3)."""
    t = 2_085_978_496.0 + 10  # 2036-02-07T06:28:16Z + 10 s
    assert to_ntp32(t) == 10
    assert from_ntp32(10) == t
    assert from_ntp64(to_ntp64(t)) == t


def test_times_outside_1968_2104_are_refused() -> None:
    """Times the 32-bit seconds field cannot represent raise ValueError."""
    with pytest.raises(ValueError, match="1968"):
        to_ntp64(-80 * 365 * 86400.0)
    with pytest.raises(ValueError, match="1968"):
        to_ntp64(5_000_000_000.0)


@settings(max_examples=200)
@given(st.integers(-61_505_152, 4_233_462_142), st.integers(0, 2**32 - 1))
def test_round_trip_is_exact_to_the_fixed_point(seconds: int, frac: int) -> None:
    """from_ntp64(to_ntp64(t)) is within 2^-32 s of t over 1968–2104."""
    t = seconds + frac / 2**32
    assert abs(from_ntp64(to_ntp64(t)) - t) < 1e-6
