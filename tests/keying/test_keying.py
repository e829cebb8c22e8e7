"""Per-leg MIKEY-TICKET keying of the focus (focus.keying): responder and initiator."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mikey
from focus.keying import (
    KeyingError,
    KeyingSettings,
    check_transfer_init,
    complete_initiator,
    complete_responder,
    kms_refusal,
    same_identity,
    start_initiator,
)
from mikey import TicketFlags

from ._tickets import (
    ALICE,
    NOW,
    ROOM,
    make_grant,
    resolution_of,
    transfer_init,
    without_sdp_ids,
)

HOST = "focus.example.net"


def _check(data: bytes, *, cache: mikey.ReplayCache | None = None, **kw: object):
    args: dict[str, object] = {
        "room_uri": ROOM,
        "offered_ids": "mikey",
        "now": NOW + 1,
        "replay_cache": cache,
    }
    args.update(kw)
    return check_transfer_init(data, **args)  # type: ignore[arg-type]


def _respond(data: bytes, grant: mikey.TicketGrant, *, caller: str = ALICE, **kw: object):
    cache = kw.pop("cache", None)
    request = _check(data, cache=cache)  # type: ignore[arg-type]
    return complete_responder(
        request,
        kw.pop("resolved", resolution_of(grant)),  # type: ignore[arg-type]
        caller=caller,
        now=NOW + 2,
        replay_cache=cache,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("suite", [mikey.SUITE_128, mikey.SUITE_256], ids=["128", "256"])
def test_dial_in_keys_both_ends_with_the_same_psk(suite: mikey.Suite) -> None:
    """The focus answers a valid TRANSFER_INIT with a TRANSFER_RESP that the initiator
    verifies, and both sides derive the same TLS PSK of the suite's key length."""
    grant = make_grant(suite=suite)
    offer = start_initiator(
        grant,
        initiator=ALICE,
        responder=ROOM,
        now=NOW,
        csb_id=7,
        rand=bytes(range(suite.rand_len)),
    )
    request = _check(offer.transfer_init)
    assert request.responder == ROOM and request.claimed_initiator == ALICE
    assert request.cs_id == 1 and request.spi == grant.spi and request.warnings == ()
    result = complete_responder(
        request, resolution_of(grant), caller=ALICE, now=NOW + 2, replay_cache=None
    )
    assert len(result.key.psk) == suite.key_len
    assert result.key.initiator == ALICE and result.key.responder == ROOM
    key = complete_initiator(offer, result.transfer_resp, now=NOW + 3)
    assert key.psk == result.key.psk
    assert key.responder == ROOM and key.warnings == ()


def test_psk_is_the_profile_tek() -> None:
    """The PSK equals mikey.derive_tls_psk over the TGK, CS ID 1, RANDRi and RANDRr."""
    grant = make_grant()
    resolved = resolution_of(grant)
    result = _respond(transfer_init(grant), grant)
    expected = mikey.derive_tls_psk(
        tgk=grant.tgk, cs_id=1, rand_i=bytes(range(16)), rand_r=resolved.rand_r
    )
    assert result.key.psk == expected


def test_results_and_errors_never_show_keys() -> None:
    """Reprs of the results leave out the PSK and the MIKEY messages."""
    grant = make_grant()
    result = _respond(transfer_init(grant), grant)
    text = repr(result) + repr(_check(transfer_init(grant)))
    assert result.key.psk.hex() not in text and "psk=" not in text
    assert "transfer_resp=" not in text and "ticket=" not in text


def test_room_uri_is_compared_per_rfc3261() -> None:
    """IDRr matches the room with a different host case and URI parameters."""
    grant = make_grant()
    request = _check(transfer_init(grant), room_uri="sip:lobby@CONF.example.net;transport=tcp")
    assert request.responder == ROOM


def test_idrr_other_than_the_room_is_488() -> None:
    """A TRANSFER_INIT addressed to another responder is refused with 488."""
    grant = make_grant(responders=(ROOM, "sip:other@conf.example.net"))
    data = transfer_init(grant, responder="sip:other@conf.example.net")
    with pytest.raises(KeyingError) as info:
        _check(data)
    assert info.value.sip_status == 488
    assert info.value.err_code == mikey.ErrCode.INVALID_ID
    assert "another responder" in info.value.reason


def test_ticket_not_naming_the_room_is_488() -> None:
    """IDRr is the room but the ticket's policy names someone else: 488 before the KMS."""
    grant = make_grant(responders=("sip:other@conf.example.net",))
    with pytest.raises(KeyingError, match="does not name this room") as info:
        _check(transfer_init(grant))
    assert info.value.sip_status == 488


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (mikey.PROFILE_FLAGS & ~TicketFlags.G, "flag G"),
        (mikey.PROFILE_FLAGS & ~TicketFlags.H, "flag H"),
        (mikey.PROFILE_FLAGS | TicketFlags.I, "forking"),
    ],
)
def test_ticket_policy_outside_the_profile_is_488(flags: TicketFlags, needle: str) -> None:
    """Ticket policies the profile does not allow (missing G/H, key forking) are 488."""
    grant = make_grant(flags=flags)
    with pytest.raises(KeyingError, match=needle) as info:
        _check(transfer_init(grant))
    assert info.value.sip_status == 488


def test_crypto_session_not_tls_is_488() -> None:
    """A crypto session with another Prot type than the configured TLS value is 488."""
    grant = make_grant()
    with pytest.raises(KeyingError, match="not TLS") as info:
        _check(transfer_init(grant, tls_prot_type=0))
    assert info.value.err_code == mikey.ErrCode.INVALID_SP


def test_tls_prot_type_is_a_setting() -> None:
    """With mikey.tls_prot_type configured, that value is the accepted one."""
    grant = make_grant()
    data = transfer_init(grant, tls_prot_type=200)
    assert _check(data, settings=KeyingSettings(tls_prot_type=200)).cs_id == 1
    with pytest.raises(KeyingError):
        _check(data)


def test_two_crypto_sessions_need_a_choice() -> None:
    """Several CSs are refused unless the caller names the CS of the accepted line."""
    grant = make_grant()
    data = transfer_init(grant, cs_ids=(1, 2))
    with pytest.raises(KeyingError, match="2 crypto sessions"):
        _check(data)
    assert _check(data, cs_id=2).cs_id == 2
    with pytest.raises(KeyingError, match="no crypto session 3"):
        _check(data, cs_id=3)


@pytest.mark.parametrize("offset", [-400.0, 400.0])
def test_timestamp_outside_the_window_is_488(offset: float) -> None:
    """T more than max_clock_skew away from now is refused before the KMS."""
    grant = make_grant()
    data = transfer_init(grant, now=NOW + offset)
    with pytest.raises(KeyingError, match="clock skew") as info:
        _check(data)
    assert info.value.err_code == mikey.ErrCode.INVALID_TS
    assert _check(data, settings=KeyingSettings(max_clock_skew=500)).cs_id == 1


def test_replayed_transfer_init_is_refused_early() -> None:
    """Once a TRANSFER_INIT was accepted, the same message is refused by the early check."""
    grant = make_grant()
    data = transfer_init(grant)
    cache = mikey.ReplayCache()
    _check(data, cache=cache)
    _check(data, cache=cache)  # not yet authenticated: not cached yet
    _respond(data, grant, cache=cache)
    with pytest.raises(KeyingError, match="replay") as info:
        _check(data, cache=cache)
    assert info.value.sip_status == 488 and info.value.err_code == mikey.ErrCode.INVALID_TS


def test_replay_between_check_and_completion_is_refused() -> None:
    """Two copies that both pass the early check: the second fails on completion."""
    grant = make_grant()
    data = transfer_init(grant)
    cache = mikey.ReplayCache()
    first, second = _check(data, cache=cache), _check(data, cache=cache)
    complete_responder(first, resolution_of(grant), caller=ALICE, now=NOW + 2, replay_cache=cache)
    with pytest.raises(KeyingError, match="replay"):
        complete_responder(
            second, resolution_of(grant), caller=ALICE, now=NOW + 2, replay_cache=cache
        )


def test_sdp_ids_mismatch_is_488() -> None:
    """SDP IDs that differ from the offered KMPIDs (bidding down) are refused."""
    grant = make_grant()
    with pytest.raises(KeyingError, match="SDP IDs") as info:
        _check(transfer_init(grant), offered_ids="mikey;keyp1")
    assert info.value.sip_status == 488


def test_missing_sdp_ids_is_a_warning() -> None:
    """A TRANSFER_INIT without SDP IDs is accepted with a warning (PROFILE §5)."""
    grant = make_grant()
    request = _check(without_sdp_ids(transfer_init(grant), grant))
    assert len(request.warnings) == 1 and "SDP IDs" in request.warnings[0]
    result = complete_responder(
        request, resolution_of(grant), caller=ALICE, now=NOW + 2, replay_cache=None
    )
    assert result.key.warnings == request.warnings


@pytest.mark.parametrize("data", [b"", b"\x01\x0e", b"garbage" * 10])
def test_undecodable_mikey_is_488(data: bytes) -> None:
    """Bytes that are not a TRANSFER_INIT are refused with 488 and a decode reason."""
    with pytest.raises(KeyingError) as info:
        _check(data)
    assert info.value.sip_status == 488


def test_other_message_type_is_488() -> None:
    """A MIKEY message of another data type (here an Error) is 488."""
    with pytest.raises(KeyingError) as info:
        _check(mikey.build_error(err_code=0, csb_id=1, now=NOW))
    assert info.value.sip_status == 488


def test_initiator_other_than_the_caller_is_403() -> None:
    """A verified IDRi that is not the caller's SIP identity aborts the setup with 403."""
    grant = make_grant()
    with pytest.raises(KeyingError, match="not the caller") as info:
        _respond(transfer_init(grant), grant, caller="sip:mallory@example.net")
    assert info.value.sip_status == 403


def test_transfer_init_claiming_another_initiator_than_the_ticket_is_403() -> None:
    """A responder of a ticket knows MPKi once it resolved it, so it could MAC a
    TRANSFER_INIT claiming someone else; the claimed IDRi must be the ticket's IDRi
    (the requester the KMS authenticated, RFC 6043 §6.10), else 403 before the KMS."""
    mallory = "sip:mallory@example.net"
    grant = make_grant(initiator=mallory, responders=(ROOM, mallory))
    forged = transfer_init(grant, initiator=ALICE)
    with pytest.raises(KeyingError) as info:
        _check(forged)
    assert info.value.sip_status == 403
    assert "initiator" in info.value.reason
    assert _check(transfer_init(grant, initiator=mallory)).claimed_initiator == mallory


def test_caller_compared_per_rfc3261() -> None:
    """Host case and parameters do not matter; the user part's case does."""
    grant = make_grant()
    _respond(transfer_init(grant), grant, caller="sip:alice@EXAMPLE.net;user=phone")
    with pytest.raises(KeyingError):
        _respond(transfer_init(grant), grant, caller="sip:Alice@example.net")


def test_wrong_mpki_is_488() -> None:
    """A resolution whose MPKi does not verify the MAC is refused (authentication)."""
    grant = make_grant()
    wrong = attrs.evolve(resolution_of(grant), mpki=bytes(16))
    with pytest.raises(KeyingError, match="does not authenticate") as info:
        _respond(transfer_init(grant), grant, resolved=wrong)
    assert info.value.sip_status == 488
    assert info.value.err_code == mikey.ErrCode.AUTH_FAILURE


def test_tampered_transfer_init_is_488() -> None:
    """Flipping a byte covered by the MAC (the IDRi) fails verification."""
    grant = make_grant()
    data = transfer_init(grant, initiator="sip:alice@example.net")
    tampered = data.replace(b"alice", b"alicf")
    with pytest.raises(KeyingError):
        _respond(tampered, grant, caller="sip:alicf@example.net")


def test_spi_mismatch_is_488() -> None:
    """A resolved TGK with another SPI than the offered crypto session is refused."""
    grant = make_grant()
    other = attrs.evolve(resolution_of(grant), spi=b"\x00\x00\x00\x01")
    with pytest.raises(KeyingError, match="SPI"):
        _respond(transfer_init(grant), grant, resolved=other)


def test_warning_header_format() -> None:
    """Warning is 399 <host> "MIKEY: <reason>", quoted-string safe."""
    error = KeyingError('bad "thing"\r\n')
    assert error.warning(HOST) == '399 focus.example.net "MIKEY: bad ?thing???"'


def test_initiator_refuses_an_answer_from_someone_else() -> None:
    """A TRANSFER_RESP whose IDRr is not the party called is 403."""
    grant = make_grant(responders=(ROOM,))
    offer = start_initiator(
        grant, initiator=ALICE, responder=ROOM, now=NOW, csb_id=1, rand=bytes(16)
    )
    resp = mikey.build_transfer_resp(
        transfer_init=offer.transfer_init,
        mpki=grant.mpki,
        responder="sip:mallory@example.net",
        rand_r=bytes(16),
        now=NOW + 1,
    )
    with pytest.raises(KeyingError, match="not the party called") as info:
        complete_initiator(offer, resp, now=NOW + 2)
    assert info.value.sip_status == 403


def test_initiator_refuses_a_forged_answer() -> None:
    """A TRANSFER_RESP made without MPKi does not authenticate: 488."""
    grant = make_grant()
    offer = start_initiator(
        grant, initiator=ALICE, responder=ROOM, now=NOW, csb_id=1, rand=bytes(16)
    )
    resp = mikey.build_transfer_resp(
        transfer_init=offer.transfer_init,
        mpki=bytes(16),
        responder=ROOM,
        rand_r=bytes(16),
        now=NOW + 1,
    )
    with pytest.raises(KeyingError, match="does not authenticate") as info:
        complete_initiator(offer, resp, now=NOW + 2)
    assert info.value.sip_status == 488


def test_initiator_checks_the_answer_sdp_ids() -> None:
    """An answer whose SDP IDs differ from what we offered is refused."""
    grant = make_grant()
    offer = start_initiator(
        grant, initiator=ALICE, responder=ROOM, now=NOW, csb_id=1, rand=bytes(16)
    )
    resp = mikey.build_transfer_resp(
        transfer_init=offer.transfer_init,
        mpki=grant.mpki,
        responder=ROOM,
        rand_r=bytes(16),
        now=NOW + 1,
        sdp_ids="mikey;other",
    )
    with pytest.raises(KeyingError, match="SDP IDs"):
        complete_initiator(offer, resp, now=NOW + 2)


def test_initiator_needs_a_ticket_for_the_responder() -> None:
    """start_initiator refuses a grant that does not name the callee."""
    grant = make_grant(responders=("sip:bob@example.net",))
    with pytest.raises(KeyingError, match="does not name the responder"):
        start_initiator(grant, initiator=ALICE, responder=ROOM, now=NOW, csb_id=1, rand=b"r" * 16)


@pytest.mark.parametrize(
    ("err", "status"), [(7, 403), (0, 403), (14, 488), (1, 488), (None, 488), (99, 488)]
)
def test_kms_refusal_maps_to_sip(err: int | None, status: int) -> None:
    """KMS ERR 7/0 refuse the caller (403); other refusals make the offer unusable (488)."""
    error = kms_refusal(err, 403)
    assert error.sip_status == status
    assert error.warning(HOST).startswith('399 focus.example.net "MIKEY: KMS refused')


def test_same_identity() -> None:
    """RFC 3261 §19.1.4: scheme/host case-insensitive, user case-sensitive, params ignored;
    garbage never matches."""
    assert same_identity("SIP:bob@Example.NET;transport=tls", "sip:bob@example.net")
    assert not same_identity("sip:Bob@example.net", "sip:bob@example.net")
    assert not same_identity("not a uri", "not a uri")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_keying_errors(data: bytes) -> None:
    """Whatever the offer carries, the early check raises only KeyingError (488)."""
    try:
        _check(data)
    except KeyingError as error:
        assert error.sip_status == 488


@pytest.mark.parametrize(
    "flags",
    [
        mikey.PROFILE_FLAGS & ~TicketFlags.G,
        mikey.PROFILE_FLAGS & ~TicketFlags.F,
        mikey.PROFILE_FLAGS | TicketFlags.I,
    ],
    ids=["G0", "F0", "I1"],
)
def test_initiator_refuses_grants_the_profile_cannot_use(flags: TicketFlags) -> None:
    """RFC 6043 §4.2.1.6: a granted policy without F/G/H or with forking is refused."""
    grant = make_grant(flags=flags)
    with pytest.raises(KeyingError, match="granted ticket policy") as info:
        start_initiator(grant, initiator=ALICE, responder=ROOM, now=NOW, csb_id=1, rand=b"r" * 16)
    assert info.value.err_code == mikey.ErrCode.INVALID_TPPAR
