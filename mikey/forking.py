"""Key-forking helpers (RFC 6043 §5.1.1, §6.10): the Initiator Data of a TICKET.

Our profile never forks (PROFILE §4: I=0), so the exchanges do not use this module;
it exists so that the codec and key schedule cover the whole of RFC 6043 and a later
forking extension has tested pieces to build on.

Initiator Data = First Payload, Vi, Vr (§6.10): Vi is a copy of the TRANSFER_INIT's V
payload; Vr is a MAC, with Vi's algorithm, over the entire Initiator Data except the MAC
field itself, keyed with the auth_key derived from the unforked MPKr with label
``const || 0xFF || 0xFFFFFFFF || 0x04``.
"""

from __future__ import annotations

from mikey.crypto import Suite, compute_mac, derive_vr_keys, verify_mac
from mikey.errors import ErrCode, PolicyError
from mikey.payloads import Verification, decode_payload_chain, encode_payload_chain

__all__ = ["build_initiator_data", "verify_initiator_data"]


def build_initiator_data(vi: Verification, *, mpkr: bytes, suite: Suite) -> bytes:
    """Initiator Data for a TICKET whose policy has I=1."""
    placeholder = encode_payload_chain([vi, Verification(vi.auth_alg, bytes(len(vi.mac)))])
    covered = placeholder[: len(placeholder) - len(vi.mac)]
    mac = compute_mac(vi.auth_alg, derive_vr_keys(mpkr, suite=suite).auth_key, covered)
    return covered + mac


def verify_initiator_data(data: bytes, *, mpkr: bytes, suite: Suite) -> Verification:
    """Check Vr with the unforked MPKr and return Vi (to compare with the TRANSFER_INIT's
    V, RFC 6043 §5.1.1)."""
    payloads = decode_payload_chain(data)
    if len(payloads) != 2 or not all(isinstance(p, Verification) for p in payloads):
        raise PolicyError("Initiator Data must be Vi, Vr", ErrCode.INVALID_TICKET)
    vi, vr = payloads
    assert isinstance(vi, Verification) and isinstance(vr, Verification)
    if vi.auth_alg != vr.auth_alg:
        raise PolicyError("Vr must use Vi's algorithm", ErrCode.INVALID_MAC)
    covered = data[: len(data) - len(vr.mac)]
    verify_mac(vr.auth_alg, derive_vr_keys(mpkr, suite=suite).auth_key, covered, vr.mac)
    return vi
