"""Initiator Data (RFC 6043 §6.10): Vi copied from TRANSFER_INIT, Vr keyed from MPKr."""

from __future__ import annotations

import pytest

import mikey
from mikey import crypto
from mikey.forking import build_initiator_data, verify_initiator_data
from mikey.payloads import Verification, decode_payload_chain

MPKR = bytes(range(16))


@pytest.mark.parametrize("suite", [mikey.SUITE_128, mikey.SUITE_256])
def test_initiator_data_round_trip(suite: mikey.Suite) -> None:
    """Vr verifies with the unforked MPKr and returns Vi unchanged."""
    vi = Verification(suite.auth_alg, bytes(range(suite.mac_len)))
    data = build_initiator_data(vi, mpkr=MPKR, suite=suite)
    assert data[0] == 9 and data[1] == 9  # First Payload V, Vi's Next = V
    assert decode_payload_chain(data)[0] == vi
    assert verify_initiator_data(data, mpkr=MPKR, suite=suite) == vi


def test_vr_covers_everything_but_its_mac() -> None:
    """Changing any byte of Initiator Data or using another MPKr fails."""
    vi = Verification(1, bytes(20))
    data = build_initiator_data(vi, mpkr=MPKR, suite=mikey.SUITE_128)
    for i in range(len(data)):
        with pytest.raises(mikey.MikeyError):
            verify_initiator_data(
                data[:i] + bytes([data[i] ^ 2]) + data[i + 1 :], mpkr=MPKR, suite=mikey.SUITE_128
            )
    with pytest.raises(mikey.AuthenticationError):
        verify_initiator_data(data, mpkr=bytes(16), suite=mikey.SUITE_128)


def test_vr_key_uses_label_type_0x04() -> None:
    """The Vr auth_key is PRF(MPKr, 0x2D22AC75 || 0xFF || 0xFFFFFFFF || 0x04)."""
    key = crypto.prf(MPKR, bytes.fromhex("2d22ac75ffffffffff04"), 20)
    assert crypto.derive_vr_keys(MPKR, suite=mikey.SUITE_128).auth_key == key
