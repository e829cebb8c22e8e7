"""REQUEST_INIT / RESOLVE_INIT details RFC 6043 §4.2.1.1 and §4.2.3.1 leave open."""

from __future__ import annotations

import attrs
import pytest

import mikey
from mikey import _protection
from mikey.crypto import derive_message_keys
from mikey.payloads import EmptyMap, GenericCs, GenericIdMap, Message, RandR

from .conftest import ALICE, BOB, KMS, NOW, Run

PSK = bytes([0xA1]) * 16


def request_init(*, kms: str = KMS, send_kms_id: bool = True) -> bytes:
    return mikey.build_request_init(
        psk=PSK,
        initiator=ALICE,
        kms=kms,
        responders=[BOB],
        now=NOW,
        csb_id=5,
        rand=bytes(16),
        send_kms_id=send_kms_id,
    )


def resolve_init(run: Run, *, kms: str = KMS, send_kms_id: bool = True) -> bytes:
    return mikey.build_resolve_init(
        psk=PSK,
        responder=BOB,
        kms=kms,
        ticket=run.grant.ticket,
        now=NOW,
        csb_id=6,
        rand_r=bytes(16),
        send_kms_id=send_kms_id,
    )


def test_request_init_without_idrkms_verifies_over_the_configured_kms() -> None:
    """IDRkms may be left out (§4.2.1.1); the MAC then covers the KMS's own identity."""
    data = request_init(send_kms_id=False)
    assert mikey.peek_request_init(data).kms is None
    assert len(data) == len(request_init()) - (5 + len(KMS))  # IDR: Next, role, type, length
    req = mikey.verify_request_init(data, psk=PSK, now=NOW, kms=KMS)
    assert (req.initiator, req.kms, req.responders) == (ALICE, None, (BOB,))


def test_request_init_without_idrkms_fails_with_another_kms_identity() -> None:
    """The appended identity is authenticated: another KMS's identity fails the MAC."""
    data = request_init(kms="sip:other-kms@example.net", send_kms_id=False)
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_request_init(data, psk=PSK, now=NOW, kms=KMS)


def test_request_init_without_idrkms_needs_a_kms_identity_to_verify() -> None:
    """Without IDRkms and without a configured KMS identity nothing can be verified (ERR 7)."""
    with pytest.raises(mikey.PolicyError) as info:
        mikey.verify_request_init(request_init(send_kms_id=False), psk=PSK, now=NOW)
    assert info.value.err_code == mikey.ErrCode.INVALID_ID


def test_request_resp_answers_a_request_without_idrkms() -> None:
    """The whole request (without IDRkms) is what the REQUEST_RESP MAC covers."""
    ri = request_init(send_kms_id=False)
    policy = mikey.peek_request_init(ri).ticket_policy
    ticket = mikey.seal_base_ticket(
        tpk=bytes(16),
        ticket_policy=policy,
        mpk=bytes(16),
        tgk=bytes(range(16)),
        spi=b"\0\0\0\1",
        now=NOW,
        rand=bytes(16),
        suite=mikey.SUITE_128,
    )
    rr = mikey.build_request_resp(
        request_init=ri,
        psk=PSK,
        kms=KMS,
        ticket=ticket,
        mpki=bytes(16),
        tgk=bytes(range(16)),
        spi=b"\0\0\0\1",
        now=NOW,
    )
    assert mikey.read_request_resp(rr, request_init=ri, psk=PSK, now=NOW).kms == KMS


def test_resolve_init_without_idrkms_verifies_over_the_configured_kms(run128: Run) -> None:
    """IDRkms may be left out of RESOLVE_INIT too (§4.2.3.1)."""
    data = resolve_init(run128, send_kms_id=False)
    assert mikey.peek_resolve_init(data).kms is None
    res = mikey.verify_resolve_init(data, psk=PSK, now=NOW, kms=KMS)
    assert (res.responder, res.kms) == (BOB, None)
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_resolve_init(data, psk=PSK, now=NOW, kms="sip:other-kms@example.net")
    with pytest.raises(mikey.PolicyError):
        mikey.verify_resolve_init(data, psk=PSK, now=NOW)


def test_present_idrkms_must_name_the_kms(run128: Run) -> None:
    """A present IDRkms naming another KMS is refused with ERR 7, as before."""
    for verify, data in (
        (mikey.verify_request_init, request_init(kms="sip:other-kms@example.net")),
        (mikey.verify_resolve_init, resolve_init(run128, kms="sip:other-kms@example.net")),
    ):
        with pytest.raises(mikey.PolicyError) as info:
            verify(data, psk=PSK, now=NOW, kms=KMS)
        assert info.value.err_code == mikey.ErrCode.INVALID_ID


def _resealed(data: bytes, cs_map: object, *, request: bool) -> bytes:
    """*data* with another CS ID map, MACed again with the right key (so only the map is off)."""
    msg = Message.decode(data)
    msg = attrs.evolve(msg, header=attrs.evolve(msg.header, cs_map=cs_map))
    rand = msg.payloads[1]
    assert isinstance(rand, RandR)
    keys = derive_message_keys(
        PSK,
        csb_id=msg.header.csb_id,
        response=False,
        rand_i=rand.rand if request else None,
        rand_r=None if request else rand.rand,
        suite=mikey.SUITE_128,
    )
    who = ALICE if request else BOB
    return _protection.seal(msg, keys, mikey.SUITE_128, who.encode() + KMS.encode())


@pytest.mark.parametrize(
    "cs_map",
    [EmptyMap(1), EmptyMap(255), GenericIdMap(()), GenericIdMap((GenericCs(1, 241),))],
    ids=["empty-1", "empty-255", "generic-0", "generic-1"],
)
def test_initial_messages_need_no_cs_and_the_empty_map(run128: Run, cs_map: object) -> None:
    """#CS must be 0 and the map the Empty map (§4.2.1.1, §4.2.3.1): PolicyError, ERR 12,
    even when the MAC is right — for peek and verify alike."""
    cases = (
        (
            mikey.peek_request_init,
            mikey.verify_request_init,
            _resealed(request_init(), cs_map, request=True),
        ),
        (
            mikey.peek_resolve_init,
            mikey.verify_resolve_init,
            _resealed(resolve_init(run128), cs_map, request=False),
        ),
    )
    for peek, verify, data in cases:
        with pytest.raises(mikey.PolicyError) as peeked:
            peek(data)
        with pytest.raises(mikey.PolicyError) as verified:
            verify(data, psk=PSK, now=NOW, kms=KMS)
        assert peeked.value.err_code == verified.value.err_code == mikey.ErrCode.UNSPECIFIED


def test_resealing_keeps_a_good_map_valid(run128: Run) -> None:
    """The test's resealing alone does not break verification (the map is what matters)."""
    data = _resealed(request_init(), EmptyMap(0), request=True)
    assert mikey.verify_request_init(data, psk=PSK, now=NOW, kms=KMS).initiator == ALICE
