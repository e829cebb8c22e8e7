"""The MIKEY-TICKET exchanges of PROFILE.md §4–§7 end to end, and their failure modes."""

from __future__ import annotations

import attrs
import pytest

import mikey
from mikey.payloads import DataType, GenericIdMap, Message, TicketFlags

from .conftest import ALICE, BOB, KMS, NOW, Run


def test_complete_exchange_gives_both_sides_the_same_psk(run: Run) -> None:
    """Initiator and responder derive the same TLS PSK, 16 bytes (32 with the 256-bit suite)."""
    ti = mikey.verify_transfer_init(run.transfer_init, mpki=run.resolved.mpki, now=NOW + 6)
    tr = mikey.verify_transfer_resp(
        run.transfer_resp, transfer_init=run.transfer_init, mpki=run.grant.mpki, now=NOW + 8
    )
    cs_id = ti.crypto_sessions[0].cs_id
    psk_i = mikey.derive_tls_psk(
        tgk=run.grant.tgk, cs_id=cs_id, rand_i=run.rand_i, rand_r=tr.rand_r, suite=run.suite
    )
    psk_r = mikey.derive_tls_psk(
        tgk=run.resolved.tgk, cs_id=cs_id, rand_i=ti.rand_i, rand_r=run.rand_r, suite=run.suite
    )
    assert psk_i == psk_r
    assert len(psk_i) == run.suite.key_len
    assert run.grant.spi == run.resolved.spi == ti.crypto_sessions[0].spi


def test_grant_reports_policy_and_keys(run: Run) -> None:
    """REQUEST_RESP yields the ticket, responders, validity and the KMS identity."""
    g = run.grant
    assert g.responders == (BOB,)
    assert g.valid_until == NOW + 3600
    assert g.kms == KMS
    assert g.ticket_policy.flags == mikey.PROFILE_FLAGS
    assert len(g.mpki) == len(g.tgk) == run.suite.key_len
    assert "mpki" not in repr(g) and g.mpki.hex() not in repr(g)


def test_request_init_layout_follows_profile(run: Run) -> None:
    """REQUEST_INIT_PSK is HDR(V=1, #CS=0, Empty map), T, RANDRi, IDRi, IDRkms, TP, V."""
    msg = Message.decode(run.request_init)
    assert msg.header.data_type == DataType.REQUEST_INIT_PSK
    assert msg.header.v is True
    assert msg.header.cs_map == mikey.payloads.EmptyMap()
    kinds = [type(p).__name__ for p in msg.payloads]
    assert kinds == ["Timestamp", "RandR", "Idr", "Idr", "TicketPolicy", "Verification"]
    tp = msg.payloads[4]
    assert isinstance(tp, mikey.TicketPolicy)
    assert [type(p).__name__ for p in tp.payloads] == ["Idr", "TimestampR", "Kemac", "Idr"]


def test_transfer_init_layout_follows_profile(run: Run) -> None:
    """TRANSFER_INIT carries one GENERIC-ID CS of Prot type 241, #P=0, SPI = TGK SPI."""
    msg = Message.decode(run.transfer_init)
    assert msg.header.v is True
    cs_map = msg.header.cs_map
    assert isinstance(cs_map, GenericIdMap)
    (cs,) = cs_map.entries
    assert (cs.cs_id, cs.prot_type, cs.s, cs.policies, cs.session_data) == (1, 241, False, (), b"")
    assert cs.spi == run.grant.spi
    kinds = [type(p).__name__ for p in msg.payloads]
    assert kinds == [
        "Timestamp",
        "RandR",
        "Idr",
        "Idr",
        "Ticket",
        "GeneralExtension",
        "Verification",
    ]


def test_transfer_resp_layout_follows_profile(run: Run) -> None:
    """TRANSFER_RESP has #P=1 naming SP policy 0 of Prot type TLS without parameters."""
    msg = Message.decode(run.transfer_resp)
    cs_map = msg.header.cs_map
    assert isinstance(cs_map, GenericIdMap)
    assert cs_map.entries[0].policies == (0,)
    sp = msg.first(mikey.payloads.SecurityPolicy)
    assert sp == mikey.payloads.SecurityPolicy(0, 241, ())
    assert msg.header.v is False


def test_profile_check_accepts_our_transfer_init(run: Run) -> None:
    """The early responder checks accept a TRANSFER_INIT built by our initiator."""
    ti = mikey.peek_transfer_init(run.transfer_init)
    mikey.check_transfer_init_profile(ti, responder=BOB, now=NOW + 4)
    assert ti.sdp_ids == "mikey"
    assert ti.initiator == ALICE


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"responder": "sip:eve@example.net"}, mikey.ErrCode.INVALID_ID),
        ({"tls_prot_type": 0}, mikey.ErrCode.INVALID_SP),
    ],
)
def test_profile_check_refuses_mismatches(
    run128: Run, change: dict[str, object], code: mikey.ErrCode
) -> None:
    """A TRANSFER_INIT for someone else or with a non-TLS CS is refused early."""
    ti = mikey.peek_transfer_init(run128.transfer_init)
    kwargs: dict[str, object] = {"responder": BOB}
    kwargs.update(change)
    with pytest.raises(mikey.PolicyError) as info:
        mikey.check_transfer_init_profile(ti, **kwargs)  # type: ignore[arg-type]
    assert info.value.err_code == code


def test_profile_check_refuses_forking_tickets(run128: Run) -> None:
    """A ticket policy asking for key forking (I=1) is refused with ERR 15."""
    ti = mikey.peek_transfer_init(run128.transfer_init)
    forked = attrs.evolve(
        ti, ticket_policy=attrs.evolve(ti.ticket_policy, flags=mikey.PROFILE_FLAGS | TicketFlags.I)
    )
    with pytest.raises(mikey.PolicyError) as info:
        mikey.check_transfer_init_profile(forked, responder=BOB)
    assert info.value.err_code == mikey.ErrCode.INVALID_TPPAR


def test_profile_check_refuses_expired_ticket(run128: Run) -> None:
    """A ticket past its TRe is refused with ERR 1."""
    ti = mikey.peek_transfer_init(run128.transfer_init)
    with pytest.raises(mikey.TimestampError):
        mikey.check_transfer_init_profile(ti, responder=BOB, now=NOW + 7200)


def test_wrong_psk_fails_request_verification(run128: Run) -> None:
    """The KMS refuses a REQUEST_INIT MACed with another PSK (ERR 0)."""
    with pytest.raises(mikey.AuthenticationError) as info:
        mikey.verify_request_init(run128.request_init, psk=b"x" * 16, now=NOW)
    assert info.value.err_code == mikey.ErrCode.AUTH_FAILURE


def test_wrong_keys_fail_every_verifier(run128: Run) -> None:
    """Each verifier raises AuthenticationError with a wrong key."""
    r = run128
    bad = b"\x00" * 16
    with pytest.raises(mikey.AuthenticationError):
        mikey.read_request_resp(r.request_resp, request_init=r.request_init, psk=bad, now=NOW)
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_resolve_init(r.resolve_init, psk=bad, now=NOW)
    with pytest.raises(mikey.AuthenticationError):
        mikey.read_resolve_resp(r.resolve_resp, resolve_init=r.resolve_init, psk=bad, now=NOW)
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_transfer_init(r.transfer_init, mpki=bad, now=NOW)
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_transfer_resp(
            r.transfer_resp, transfer_init=r.transfer_init, mpki=bad, now=NOW
        )
    with pytest.raises(mikey.AuthenticationError):
        mikey.open_base_ticket(r.grant.ticket, tpk=bad)


def test_stale_timestamp_is_refused(run128: Run) -> None:
    """A message older than the allowed skew raises TimestampError (ERR 1)."""
    with pytest.raises(mikey.TimestampError) as info:
        mikey.verify_request_init(run128.request_init, psk=run128.psk_i, now=NOW + 301)
    assert info.value.err_code == mikey.ErrCode.INVALID_TS
    mikey.verify_request_init(run128.request_init, psk=run128.psk_i, now=NOW + 299)


def test_replay_cache_refuses_second_delivery(run128: Run) -> None:
    """With a replay cache, the same authenticated message is accepted only once."""
    cache = mikey.ReplayCache(max_entries=10, max_skew=300)
    mikey.verify_request_init(run128.request_init, psk=run128.psk_i, now=NOW, replay_cache=cache)
    with pytest.raises(mikey.ReplayError):
        mikey.verify_request_init(
            run128.request_init, psk=run128.psk_i, now=NOW + 1, replay_cache=cache
        )


def test_response_is_bound_to_its_request(run128: Run) -> None:
    """A REQUEST_RESP does not verify against a different REQUEST_INIT."""
    other = mikey.build_request_init(
        psk=run128.psk_i,
        initiator=ALICE,
        kms=KMS,
        responders=[BOB],
        now=NOW,
        csb_id=0x01020304,
        rand=b"z" * 16,
    )
    with pytest.raises(mikey.AuthenticationError):
        mikey.read_request_resp(run128.request_resp, request_init=other, psk=run128.psk_i, now=NOW)


def test_kms_resolves_only_for_named_responders(run128: Run) -> None:
    """The mini KMS refuses to resolve for an identity not in the ticket's IDRr list."""
    eve = "sip:eve@example.net"
    run128.kms.psks[eve] = b"e" * 16
    rs = mikey.build_resolve_init(
        psk=b"e" * 16,
        responder=eve,
        kms=KMS,
        ticket=run128.grant.ticket,
        now=NOW,
        csb_id=1,
        rand_r=b"r" * 16,
    )
    with pytest.raises(mikey.PolicyError):
        run128.kms.resolve(rs, now=NOW)


def test_error_message_round_trip() -> None:
    """build_error/read_error carry the ERR codes, CSB ID and timestamp."""
    data = mikey.build_error(err_code=[14, 15], csb_id=0xDEADBEEF, prf=1, now=NOW)
    err = mikey.read_error(data)
    assert err == mikey.MikeyErrorMessage((14, 15), 0xDEADBEEF, NOW, 1)


def test_error_for_copies_csb_id_and_prf(run128: Run) -> None:
    """An Error answering a request copies its CSB ID and PRF (RFC 6043 §5.4)."""
    data = mikey.build_error_for(run128.request_init, err_code=0, now=NOW)
    assert data is not None
    err = mikey.read_error(data)
    assert err.csb_id == 0x01020304 and err.err_codes == (0,)
    assert mikey.build_error_for(data, err_code=0, now=NOW) is None
    assert mikey.build_error_for(b"\x01\x0b", err_code=0, now=NOW) is None
