"""The MIKEY-TICKET exchanges of PROFILE.md §4–§7 end to end, and their failure modes."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mikey
from mikey.payloads import DataType, GenericIdMap, Message, TicketFlags

from ._kms import MiniKms
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


def _ti_with(run: Run, **changes: object) -> mikey.TransferInit:
    return attrs.evolve(mikey.peek_transfer_init(run.transfer_init), **changes)


@pytest.mark.parametrize("flag", ["F", "G", "H", "O"])
def test_profile_check_needs_the_profile_flags(run128: Run, flag: str) -> None:
    """Tickets without F, G, H or O cannot be used by our responder (ERR 15)."""
    ti = mikey.peek_transfer_init(run128.transfer_init)
    policy = attrs.evolve(ti.ticket_policy, flags=mikey.PROFILE_FLAGS & ~TicketFlags[flag])
    with pytest.raises(mikey.PolicyError) as info:
        mikey.check_transfer_init_profile(attrs.evolve(ti, ticket_policy=policy), responder=BOB)
    assert info.value.err_code == mikey.ErrCode.INVALID_TPPAR


@pytest.mark.parametrize(
    ("cs_change", "code"),
    [
        ({"session_data": b"\x00\x00\x00\x01"}, mikey.ErrCode.INVALID_SPPAR),
        ({"spi": b""}, mikey.ErrCode.INVALID_SPPAR),
        ({"policies": (0, 1)}, mikey.ErrCode.INVALID_SPPAR),
        ({"prot_type": 0}, mikey.ErrCode.INVALID_SP),
    ],
)
def test_profile_check_refuses_non_tls_sessions(
    run128: Run, cs_change: dict[str, object], code: mikey.ErrCode
) -> None:
    """A CS with session data, without SPI, with several policies or of SRTP is refused."""
    ti = mikey.peek_transfer_init(run128.transfer_init)
    cs = attrs.evolve(ti.crypto_sessions[0], **cs_change)
    with pytest.raises(mikey.PolicyError) as info:
        mikey.check_transfer_init_profile(attrs.evolve(ti, crypto_sessions=(cs,)), responder=BOB)
    assert info.value.err_code == code


def test_profile_check_refuses_kemac_and_empty_or_duplicate_sessions(run128: Run) -> None:
    """L=0: no KEMAC; at least one CS; CS IDs unique."""
    for change in ({"has_kemac": True}, {"crypto_sessions": ()}):
        with pytest.raises(mikey.PolicyError):
            mikey.check_transfer_init_profile(_ti_with(run128, **change), responder=BOB)
    ti = mikey.peek_transfer_init(run128.transfer_init)
    dup = _ti_with(run128, crypto_sessions=ti.crypto_sessions * 2)
    with pytest.raises(mikey.PolicyError):
        mikey.check_transfer_init_profile(dup, responder=BOB)


def test_profile_check_responder_not_in_ticket(run128: Run) -> None:
    """A TRANSFER_INIT addressed to us with a ticket not naming us is refused (ERR 7)."""
    ti = _ti_with(run128, responder="sip:carol@example.net")
    with pytest.raises(mikey.PolicyError) as info:
        mikey.check_transfer_init_profile(ti, responder="sip:carol@example.net")
    assert info.value.err_code == mikey.ErrCode.INVALID_ID


def test_several_crypto_sessions_get_distinct_psks(run128: Run) -> None:
    """With cs_ids=(1, 2) each MSRP m-line's CS yields its own TEK (PROFILE §5, §7)."""
    ti = mikey.build_transfer_init(
        grant=run128.grant,
        initiator=ALICE,
        responder=BOB,
        now=NOW,
        csb_id=9,
        rand=run128.rand_i,
        cs_ids=(1, 2),
    )
    peek = mikey.peek_transfer_init(ti)
    mikey.check_transfer_init_profile(peek, responder=BOB)
    assert [cs.cs_id for cs in peek.crypto_sessions] == [1, 2]
    tr = mikey.build_transfer_resp(
        transfer_init=ti, mpki=run128.resolved.mpki, responder=BOB, rand_r=run128.rand_r, now=NOW
    )
    resp = mikey.verify_transfer_resp(tr, transfer_init=ti, mpki=run128.grant.mpki, now=NOW)
    assert [cs.policies for cs in resp.crypto_sessions] == [(0,), (0,)]
    psks = {
        mikey.derive_tls_psk(
            tgk=run128.grant.tgk, cs_id=c, rand_i=run128.rand_i, rand_r=run128.rand_r
        )
        for c in (1, 2)
    }
    assert len(psks) == 2


def test_wrong_message_type_is_refused_with_err_11(run128: Run) -> None:
    """Feeding a message of another data type to a verifier raises ERR 11 (Invalid DT)."""
    with pytest.raises(mikey.PolicyError) as info:
        mikey.peek_transfer_init(run128.request_init)
    assert info.value.err_code == mikey.ErrCode.INVALID_DT
    with pytest.raises(mikey.PolicyError):
        mikey.read_error(run128.transfer_init)


def test_kms_identity_check(run128: Run) -> None:
    """verify_request_init/verify_resolve_init with kms= refuse messages for another KMS."""
    with pytest.raises(mikey.PolicyError) as info:
        mikey.verify_request_init(
            run128.request_init, psk=run128.psk_i, now=NOW, kms="sip:other@kms"
        )
    assert info.value.err_code == mikey.ErrCode.INVALID_ID
    mikey.verify_resolve_init(run128.resolve_init, psk=run128.psk_r, now=NOW, kms=KMS)


def test_psk_id_travels_as_idrpsk_byte_string(run128: Run) -> None:
    """psk_id is sent as IDRpsk (role 4, ID type 2) and is covered by the MAC."""
    ri = mikey.build_request_init(
        psk=run128.psk_i,
        initiator=ALICE,
        kms=KMS,
        responders=[BOB],
        now=NOW,
        csb_id=1,
        rand=b"r" * 16,
        psk_id=b"key-7",
    )
    assert mikey.peek_request_init(ri).psk_id == b"key-7"
    msg = Message.decode(ri)
    idrpsk = msg.idr(4)
    assert idrpsk is not None and idrpsk.id_type == 2
    assert mikey.verify_request_init(ri, psk=run128.psk_i, now=NOW).psk_id == b"key-7"


def test_builders_refuse_short_keys_and_rands() -> None:
    """PSKs under 128 bits and RANDs under 16 bytes are programming errors (ValueError)."""
    with pytest.raises(ValueError, match="128"):
        mikey.build_request_init(
            psk=b"k" * 15,
            initiator=ALICE,
            kms=KMS,
            responders=[BOB],
            now=NOW,
            csb_id=1,
            rand=b"r" * 16,
        )
    with pytest.raises(ValueError, match="RAND"):
        mikey.build_request_init(
            psk=b"k" * 16,
            initiator=ALICE,
            kms=KMS,
            responders=[BOB],
            now=NOW,
            csb_id=1,
            rand=b"r" * 15,
        )


ident = st.from_regex(r"sip:[a-z]{1,12}@[a-z]{1,10}\.example", fullmatch=True)


@settings(max_examples=25, deadline=None)
@given(
    suite=st.sampled_from([mikey.SUITE_128, mikey.SUITE_256]),
    seed=st.binary(min_size=8, max_size=8),
    initiator=ident,
    responder=ident,
    csb_ids=st.tuples(*[st.integers(0, 2**32 - 1)] * 3),
    now=st.floats(1_000_000_000, 3_000_000_000),
)
def test_any_exchange_agrees_on_the_psk(
    suite: mikey.Suite,
    seed: bytes,
    initiator: str,
    responder: str,
    csb_ids: tuple[int, int, int],
    now: float,
) -> None:
    """For any keys, identities, CSB IDs and times, both ends derive the same PSK."""
    import hashlib

    def rnd(label: str, n: int) -> bytes:
        return hashlib.shake_256(seed + label.encode()).digest(n)

    n, r = suite.key_len, suite.rand_len
    kms = MiniKms(KMS, {initiator: rnd("pi", n), responder: rnd("pr", n)}, rnd("tpk", n), suite)
    if initiator == responder:
        return
    ri = mikey.build_request_init(
        psk=rnd("pi", n),
        initiator=initiator,
        kms=KMS,
        responders=[responder],
        now=now,
        csb_id=csb_ids[0],
        rand=rnd("ri", r),
        suite=suite,
    )
    rr = kms.request(
        ri, now=now, mpk=rnd("mpk", n), tgk=rnd("tgk", n), spi=rnd("spi", 4), rand=rnd("tr", r)
    )
    grant = mikey.read_request_resp(rr, request_init=ri, psk=rnd("pi", n), now=now)
    ti = mikey.build_transfer_init(
        grant=grant,
        initiator=initiator,
        responder=responder,
        now=now,
        csb_id=csb_ids[1],
        rand=rnd("i", r),
    )
    peek = mikey.peek_transfer_init(ti)
    mikey.check_transfer_init_profile(peek, responder=responder, now=now)
    rs = mikey.build_resolve_init(
        psk=rnd("pr", n),
        responder=responder,
        kms=KMS,
        ticket=peek.ticket,
        now=now,
        csb_id=csb_ids[2],
        rand_r=rnd("r", r),
        suite=suite,
    )
    resolved = mikey.read_resolve_resp(
        kms.resolve(rs, now=now), resolve_init=rs, psk=rnd("pr", n), now=now
    )
    mikey.verify_transfer_init(ti, mpki=resolved.mpki, now=now)
    tr = mikey.build_transfer_resp(
        transfer_init=ti, mpki=resolved.mpki, responder=responder, rand_r=rnd("r", r), now=now
    )
    resp = mikey.verify_transfer_resp(tr, transfer_init=ti, mpki=grant.mpki, now=now)
    assert mikey.derive_tls_psk(
        tgk=grant.tgk, cs_id=1, rand_i=rnd("i", r), rand_r=resp.rand_r, suite=suite
    ) == mikey.derive_tls_psk(
        tgk=resolved.tgk, cs_id=1, rand_i=peek.rand_i, rand_r=rnd("r", r), suite=suite
    )
