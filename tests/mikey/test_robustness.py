"""Exchange-level robustness: bad input raises only MikeyError, never leaks secrets."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mikey

from .conftest import NOW, Run, run_exchange

RUN = run_exchange(mikey.SUITE_128)


def entry_points(r: Run) -> list[Callable[[bytes], object]]:
    return [
        mikey.peek_request_init,
        mikey.peek_transfer_init,
        mikey.peek_resolve_init,
        mikey.read_error,
        lambda d: mikey.verify_request_init(d, psk=r.psk_i, now=NOW),
        lambda d: mikey.read_request_resp(d, request_init=r.request_init, psk=r.psk_i, now=NOW),
        lambda d: mikey.verify_transfer_init(d, mpki=r.resolved.mpki, now=NOW),
        lambda d: mikey.verify_resolve_init(d, psk=r.psk_r, now=NOW),
        lambda d: mikey.read_resolve_resp(d, resolve_init=r.resolve_init, psk=r.psk_r, now=NOW),
        lambda d: mikey.verify_transfer_resp(
            d, transfer_init=r.transfer_init, mpki=r.grant.mpki, now=NOW
        ),
        lambda d: mikey.open_base_ticket(d, tpk=r.kms.tpk),
        mikey.base_ticket_psk_id,
    ]


def _only_mikey_errors(data: bytes) -> None:
    for fn in entry_points(RUN):
        with contextlib.suppress(mikey.MikeyError):
            fn(data)


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_mikey_errors(data: bytes) -> None:
    """Every peek/verify/read function raises only MikeyError on arbitrary input."""
    _only_mikey_errors(data)


MESSAGES = [
    RUN.request_init,
    RUN.request_resp,
    RUN.transfer_init,
    RUN.resolve_init,
    RUN.resolve_resp,
    RUN.transfer_resp,
    RUN.grant.ticket,
]


@settings(max_examples=150)
@given(st.sampled_from(MESSAGES), st.data())
def test_mutated_messages_raise_only_mikey_errors(message: bytes, data: st.DataObject) -> None:
    """Real messages with bytes changed, cut or inserted raise only MikeyError anywhere."""
    pos = data.draw(st.integers(0, len(message)))
    kind = data.draw(st.sampled_from(["replace", "cut", "insert"]))
    chunk = data.draw(st.binary(min_size=1, max_size=6))
    if kind == "replace":
        mutated = message[:pos] + chunk + message[pos + len(chunk) :]
    elif kind == "cut":
        mutated = message[:pos]
    else:
        mutated = message[:pos] + chunk + message[pos:]
    _only_mikey_errors(mutated)


def test_error_texts_never_contain_key_material() -> None:
    """Failures with wrong keys produce messages without the keys, in any encoding."""
    secrets = [RUN.psk_i, RUN.psk_r, RUN.grant.mpki, RUN.grant.tgk, RUN.kms.tpk]
    texts = []
    for fn in entry_points(RUN):
        for data in MESSAGES:
            try:
                fn(data[:-1] + bytes([data[-1] ^ 1]))
            except mikey.MikeyError as exc:
                texts.append(str(exc) + repr(exc))
    assert texts
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text and repr(secret) not in text


@pytest.mark.parametrize("cls", [mikey.TicketGrant, mikey.ResolvedTicket, mikey.BaseTicketContents])
def test_result_reprs_hide_keys(cls: type) -> None:
    """Results that carry keys hide them from repr."""
    opened = mikey.open_base_ticket(RUN.grant.ticket, tpk=RUN.kms.tpk)
    value = {
        mikey.TicketGrant: RUN.grant,
        mikey.ResolvedTicket: RUN.resolved,
        mikey.BaseTicketContents: opened,
    }[cls]
    text = repr(value)
    for secret in (RUN.grant.mpki, RUN.grant.tgk, opened.mpk):
        assert secret.hex() not in text and repr(secret) not in text
