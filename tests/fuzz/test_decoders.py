"""Fuzzing every decoder: arbitrary bytes and mutated real samples raise only the
decoder's own documented error (see _targets.py for the error each package documents)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings

from focus.sdp import SessionDescription
from mikey.payloads import Message

from . import _corpus as corpus
from . import _targets as targets

# Modest example counts keep the whole directory well under 30 s on two cores; the
# atheris harnesses in bench/fuzz/ (make soak) run the same targets for much longer, and
# FUZZ_EXAMPLES=5000 makes this file a longer run too.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_corpora_are_not_empty() -> None:
    """Every decoder has real samples to mutate, and the valid ones really decode."""
    assert len(corpus.sip_samples()) >= 10
    assert len(corpus.msrp_samples()) >= 10
    assert len(corpus.sdp_samples()) >= 3
    assert len(corpus.cpim_samples()) >= 2
    assert len(corpus.mikey_samples()) >= 7
    for sample in corpus.sdp_samples():
        SessionDescription.parse(sample)
    for sample in corpus.mikey_samples():
        Message.decode(sample)


def test_mutate_applies_each_edit_kind() -> None:
    """The mutator flips, inserts, deletes, repeats and overwrites at wrapped positions."""
    assert corpus.mutate(b"abc", [(0, 0, 0, b"")]) == b"`bc"
    assert corpus.mutate(b"abc", [(1, 1, 0, b"XY")]) == b"aXYbc"
    assert corpus.mutate(b"abc", [(2, 1, 0, b"")]) == b"ac"
    assert corpus.mutate(b"abc", [(3, 0, 1, b"")]) == b"ababc"
    assert corpus.mutate(b"abc", [(4, 5, 0, b"Z")]) == b"aZc"  # 5 % 4 == 1


@FUZZ
@given(corpus.inputs(corpus.sip_samples))
def test_sip_datagram(data: bytes) -> None:
    """A SIP datagram parses (and its encoding re-parses) or raises only SipError."""
    targets.sip_datagram(data)


@FUZZ
@given(corpus.inputs(corpus.sip_samples))
def test_sip_stream(data: bytes) -> None:
    """The SIP stream framer never raises, stays bounded, and splitting changes nothing."""
    targets.sip_stream(data)


@FUZZ
@given(corpus.inputs(corpus.sip_samples))
def test_sip_header_values(data: bytes) -> None:
    """SIP URIs, name-addrs, Via and CSeq values raise only SipError and round-trip."""
    targets.sip_header_values(data)


@FUZZ
@given(corpus.inputs(corpus.sdp_samples))
def test_sdp_description(data: bytes) -> None:
    """SDP parses and round-trips or raises only SdpSyntaxError; offer checks raise only
    SdpError."""
    targets.sdp_description(data)


@FUZZ
@given(corpus.inputs(corpus.msrp_samples))
def test_msrp_frames(data: bytes) -> None:
    """MSRP framing raises only MsrpError and any split of the input parses the same."""
    targets.msrp_frames(data)


@FUZZ
@given(corpus.inputs(corpus.msrp_samples))
def test_msrp_connection(data: bytes) -> None:
    """The MSRP connection core never raises on received bytes."""
    targets.msrp_connection(data)


@FUZZ
@given(corpus.inputs(corpus.msrp_samples))
def test_msrp_uri(data: bytes) -> None:
    """MSRP URIs and paths raise only MsrpError and round-trip."""
    targets.msrp_uri(data)


@FUZZ
@given(corpus.inputs(corpus.cpim_samples))
def test_cpim(data: bytes) -> None:
    """CPIM parses keeping its bytes, or raises only MsrpError; views raise only MsrpError."""
    targets.cpim(data)


@FUZZ
@given(corpus.inputs(corpus.mikey_samples))
def test_mikey_message(data: bytes) -> None:
    """MIKEY messages decode or raise only DecodeError; peeks raise only MikeyError."""
    targets.mikey_message(data)


@FUZZ
@given(corpus.inputs(corpus.mikey_samples))
def test_mikey_verify(data: bytes) -> None:
    """Every MIKEY-TICKET verifier, with the golden keys, raises only MikeyError."""
    targets.mikey_verify(data)


@FUZZ
@given(corpus.inputs(corpus.base_ticket_samples))
def test_base_ticket(data: bytes) -> None:
    """Opening a (mutated) base ticket with the right TPK raises only MikeyError."""
    targets.mikey_verify(data)
