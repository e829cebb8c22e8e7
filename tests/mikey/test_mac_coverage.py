"""MAC coverage (RFC 6043 §5.5, Appendix A.1): every covered byte matters, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

import mikey
from mikey.payloads import Message, Ticket

from .conftest import NOW, Run

Verifier = Callable[[bytes], object]


def verifiers(r: Run) -> dict[str, tuple[bytes, Verifier]]:
    late = NOW + 8
    return {
        "REQUEST_INIT": (
            r.request_init,
            lambda d: mikey.verify_request_init(d, psk=r.psk_i, now=NOW),
        ),
        "REQUEST_RESP": (
            r.request_resp,
            lambda d: mikey.read_request_resp(d, request_init=r.request_init, psk=r.psk_i, now=NOW),
        ),
        "TRANSFER_INIT": (
            r.transfer_init,
            lambda d: mikey.verify_transfer_init(d, mpki=r.resolved.mpki, now=NOW),
        ),
        "RESOLVE_INIT": (
            r.resolve_init,
            lambda d: mikey.verify_resolve_init(d, psk=r.psk_r, now=NOW),
        ),
        "RESOLVE_RESP": (
            r.resolve_resp,
            lambda d: mikey.read_resolve_resp(d, resolve_init=r.resolve_init, psk=r.psk_r, now=NOW),
        ),
        "TRANSFER_RESP": (
            r.transfer_resp,
            lambda d: mikey.verify_transfer_resp(
                d, transfer_init=r.transfer_init, mpki=r.grant.mpki, now=late
            ),
        ),
    }


NAMES = [
    "REQUEST_INIT",
    "REQUEST_RESP",
    "TRANSFER_INIT",
    "RESOLVE_INIT",
    "RESOLVE_RESP",
    "TRANSFER_RESP",
]


@pytest.mark.parametrize("name", NAMES)
def test_untouched_message_verifies(run: Run, name: str) -> None:
    """Each message of the run verifies as built."""
    data, verify = verifiers(run)[name]
    verify(data)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mask", [0x01, 0x80])
def test_flipping_any_byte_fails_verification(run: Run, name: str, mask: int) -> None:
    """Changing any single byte of the message (header, payloads, MAC) makes it fail."""
    data, verify = verifiers(run)[name]
    for i in range(len(data)):
        bad = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
        with pytest.raises(mikey.MikeyError):
            verify(bad)


@pytest.mark.parametrize(
    ("name", "initial"),
    [
        ("REQUEST_RESP", "request_init"),
        ("RESOLVE_RESP", "resolve_init"),
        ("TRANSFER_RESP", "transfer_init"),
    ],
)
def test_responses_cover_the_complete_initial_message(run128: Run, name: str, initial: str) -> None:
    """A response verified against an initial message differing in its MAC byte fails."""
    r = run128
    init = getattr(r, initial)
    tampered = init[:-1] + bytes([init[-1] ^ 1])
    with pytest.raises(mikey.MikeyError):
        if name == "REQUEST_RESP":
            mikey.read_request_resp(r.request_resp, request_init=tampered, psk=r.psk_i, now=NOW)
        elif name == "RESOLVE_RESP":
            mikey.read_resolve_resp(r.resolve_resp, resolve_init=tampered, psk=r.psk_r, now=NOW)
        else:
            mikey.verify_transfer_resp(
                r.transfer_resp, transfer_init=tampered, mpki=r.grant.mpki, now=NOW
            )


def _with_initiator_data(data: bytes, initiator_data: bytes) -> bytes:
    msg = Message.decode(data)
    payloads = tuple(
        attrs.evolve(p, initiator_data=initiator_data) if isinstance(p, Ticket) else p
        for p in msg.payloads
    )
    return attrs.evolve(msg, payloads=payloads).encode()


def test_initiator_data_is_outside_the_transfer_init_mac(run: Run) -> None:
    """TRANSFER_INIT's MAC leaves out Initiator Data length and Initiator Data (RFC 6043 §5.5)."""
    extra = bytes(range(1, 24))
    data = _with_initiator_data(run.transfer_init, extra)
    assert len(data) == len(run.transfer_init) + len(extra)
    mikey.verify_transfer_init(data, mpki=run.resolved.mpki, now=NOW)
    msg = Message.decode(data)
    (index,) = [i for i, p in enumerate(msg.payloads) if isinstance(p, Ticket)]
    start = msg.spans[index][1] - len(extra)
    assert data[start : start + len(extra)] == extra
    for i in range(start, start + len(extra)):
        flipped = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        mikey.verify_transfer_init(flipped, mpki=run.resolved.mpki, now=NOW)


def test_initiator_data_is_outside_the_base_ticket_mac(run128: Run) -> None:
    """The base ticket's V leaves out Initiator Data (RFC 6043 Appendix A.1)."""
    ticket = Ticket.decode_value(run128.grant.ticket)
    with_data = attrs.evolve(ticket, initiator_data=b"\x09\x01\x00" + bytes(20)).encode_value()
    opened = mikey.open_base_ticket(with_data, tpk=run128.kms.tpk)
    assert opened.spi == run128.grant.spi


def test_flipping_any_covered_base_ticket_byte_fails(run: Run) -> None:
    """Every byte of the base ticket except Initiator Data is covered by its V."""
    ticket = run.grant.ticket
    covered = len(ticket) - 2  # the trailing Initiator Data length field (empty data)
    for i in range(covered):
        bad = ticket[:i] + bytes([ticket[i] ^ 0x04]) + ticket[i + 1 :]
        with pytest.raises(mikey.MikeyError):
            mikey.open_base_ticket(bad, tpk=run.kms.tpk)


def test_mac_coverage_cuts_exactly_the_mac_and_initiator_data(run: Run) -> None:
    """Message.mac_coverage drops the MAC field, and with the TRANSFER_INIT rule the
    Initiator Data length + Initiator Data, nothing else."""
    extra = b"\x09\x01" + bytes(20)
    data = _with_initiator_data(run.transfer_init, extra)
    msg = Message.decode(data)
    mac_len = run.suite.mac_len
    assert msg.mac_coverage() == data[:-mac_len]
    covered = msg.mac_coverage(exclude_initiator_data=True)
    assert len(covered) == len(data) - mac_len - 2 - len(extra)
    cut = data.index(b"\x00\x16" + extra)
    assert covered == data[:cut] + data[cut + 2 + len(extra) : -mac_len]
