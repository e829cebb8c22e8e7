"""Bad input never crashes the KMS engine: it only ever answers with a Rejection."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms import Rejection
from mikey import build_request_init

from .conftest import ALICE, BOB, KEYS, KMS_ID, NOW, Kms

VALID = build_request_init(
    psk=KEYS[ALICE],
    initiator=ALICE,
    kms=KMS_ID,
    responders=[BOB],
    valid_until=NOW + 600,
    now=NOW,
    csb_id=99,
    rand=b"p" * 16,
)
SETTINGS = settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])


def answer(kms: Kms, operation: str, data: bytes) -> None:
    try:
        getattr(kms.engine, operation)(data, now=NOW)
    except Rejection as e:
        assert 400 <= e.http_status <= 499
        assert 0 <= e.err_code <= 255
        kms.engine.error_message(e, failed=data, now=NOW)


@SETTINGS
@given(data=st.binary(max_size=300), operation=st.sampled_from(["request", "resolve"]))
def test_arbitrary_bytes_get_a_rejection_only(kms: Kms, data: bytes, operation: str) -> None:
    """Any byte string is answered or rejected with a 4xx Rejection, never another exception."""
    answer(kms, operation, data)


@SETTINGS
@given(index=st.integers(min_value=0, max_value=len(VALID) - 1), flip=st.integers(1, 255))
def test_any_single_byte_change_of_a_request_is_rejected(kms: Kms, index: int, flip: int) -> None:
    """Changing any one byte of a valid REQUEST_INIT makes the KMS refuse it (MAC or decode)."""
    damaged = bytearray(VALID)
    damaged[index] ^= flip
    with pytest.raises(Rejection):
        kms.engine.request(bytes(damaged), now=NOW)
