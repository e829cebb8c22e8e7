"""Cross-checks: our ``mikey`` package against the independent peer, message by message."""

from __future__ import annotations

import itertools

import attrs
import pytest

import mikey
from tests.interop import independent_mikey as im

pytestmark = pytest.mark.timeout(30)

NOW = 1_800_000_000.0
ALICE, BOB, KMS = "sip:alice@example.net", "sip:bob@example.net", "sip:kms@kms.example.net"
A, B, K = ALICE.encode(), BOB.encode(), KMS.encode()

SUITES = [(im.SUITE_128, mikey.SUITE_128), (im.SUITE_256, mikey.SUITE_256)]
IDS = ["128", "256"]


def rnd_factory(seed: int):
    c = itertools.count(seed)

    def rnd(n: int) -> bytes:
        v = next(c)
        return bytes((v * 131 + i * 7) & 0xFF for i in range(n))

    return rnd


@pytest.fixture(params=SUITES, ids=IDS)
def suites(request):
    return request.param


@pytest.fixture
def env(suites):
    """Users' PSKs, an independent KMS and a random source."""
    si, so = suites
    rnd = rnd_factory(5)
    psk_a, psk_b = rnd(si.key_len), rnd(si.key_len)
    kms = im.MiniKms(
        identity=K,
        users={A: im.KmsUser(psk_a, (A,)), B: im.KmsUser(psk_b, (B,))},
        random=rnd,
        clock=lambda: NOW,
    )
    return {"si": si, "so": so, "rnd": rnd, "psk_a": psk_a, "psk_b": psk_b, "kms": kms}


def our_grant(env):
    """Our initiator obtains a ticket from the independent KMS."""
    so, rnd = env["so"], env["rnd"]
    req = mikey.build_request_init(
        psk=env["psk_a"],
        initiator=ALICE,
        kms=KMS,
        responders=[BOB],
        now=NOW,
        csb_id=0x01020304,
        rand=rnd(so.rand_len),
        suite=so,
    )
    status, resp = env["kms"].handle(req)
    assert status == 200, im.read_error(resp)
    return req, resp, mikey.read_request_resp(resp, request_init=req, psk=env["psk_a"], now=NOW)


def their_obtained(env):
    """The independent initiator obtains a ticket from the independent KMS."""
    si, rnd = env["si"], env["rnd"]
    req = im.build_request_init(
        suite=si,
        psk=env["psk_a"],
        csb_id=0x0A0B0C0D,
        now=NOW,
        randri=rnd(si.key_len),
        id_i=A,
        id_kms=K,
        id_rs=[B],
    )
    status, resp = env["kms"].handle(req)
    assert status == 200
    return im.read_request_resp(resp, req, env["psk_a"], NOW)


# --- Ticket Request ----------------------------------------------------------------------


def test_our_request_init_verifies_at_independent_kms_and_our_reader_accepts_its_resp(env):
    """Our REQUEST_INIT_PSK verifies at the independent KMS; our reader opens its REQUEST_RESP."""
    _req, _resp, grant = our_grant(env)
    rec = next(iter(env["kms"].tickets.values()))
    assert (grant.mpki, grant.tgk, grant.spi) == (rec["mpki"], rec["tgk"], rec["spi"])
    assert grant.responders == (BOB,)


def test_independent_request_init_verifies_with_ours_and_our_resp_reads_there(env):
    """The independent REQUEST_INIT_PSK verifies with our KMS-side code and vice versa."""
    si, so, rnd = env["si"], env["so"], env["rnd"]
    req = im.build_request_init(
        suite=si,
        psk=env["psk_a"],
        csb_id=0x55667788,
        now=NOW,
        randri=rnd(si.key_len),
        id_i=A,
        id_kms=K,
        id_rs=[B],
    )
    ri = mikey.verify_request_init(req, psk=env["psk_a"], now=NOW, kms=KMS)
    assert (ri.initiator, ri.kms, ri.responders, ri.suite) == (ALICE, KMS, (BOB,), so)
    # Our KMS side answers with a ticket value whose Ticket Data is opaque to the peer.
    _, ticket_body = None, im.tp_body(si.prf, im.PROFILE_FLAGS, [im.p_idr(2, B)])
    ticket_body += b"\x00\x04tick\x00\x00"
    mpki, tgk, spi = rnd(si.key_len), rnd(si.key_len), b"\x00\x00\x00\x2a"
    resp = mikey.build_request_resp(
        request_init=req,
        psk=env["psk_a"],
        kms=KMS,
        ticket=ticket_body,
        mpki=mpki,
        tgk=tgk,
        spi=spi,
        now=NOW + 1,
    )
    ob = im.read_request_resp(resp, req, env["psk_a"], NOW)
    assert (ob.mpki, ob.tgk, ob.spi, ob.ticket["ticket_data"]) == (mpki, tgk, spi, b"tick")
    assert ob.ticket_body == ticket_body


# --- Ticket Transfer + Resolve, each message both ways -------------------------------------


def test_our_transfer_init_verifies_at_independent_responder(env):
    """Our TRANSFER_INIT resolves at the independent KMS and verifies at the independent peer."""
    si, so, rnd = env["si"], env["so"], env["rnd"]
    _, _, grant = our_grant(env)
    ti = mikey.build_transfer_init(
        grant=grant,
        initiator=ALICE,
        responder=BOB,
        now=NOW,
        csb_id=0xCAFE0001,
        rand=rnd(so.rand_len),
    )
    randrr = rnd(si.key_len)
    res = im.build_resolve_init(
        transfer_init=ti,
        suite=si,
        psk=env["psk_b"],
        csb_id=77,
        now=NOW,
        randrr=randrr,
        id_r=B,
        id_kms=K,
    )
    status, rr = env["kms"].handle(res)
    assert status == 200
    mpki, tgk, spi = im.read_resolve_resp(rr, res, env["psk_b"], NOW)
    m = im.verify_transfer_init(ti, mpki, NOW)
    assert m.cs == [
        {"cs_id": 1, "prot": 241, "s": 0, "policies": [], "session_data": b"", "spi": spi}
    ]
    assert m.v == 1 and m.one(im.PT_GEN_EXT)["data"] == b"mikey"
    tr = im.build_transfer_resp(
        transfer_init=ti, mpki=mpki, spi=spi, now=NOW, randrr=randrr, id_r=B
    )
    ours = mikey.verify_transfer_resp(tr, transfer_init=ti, mpki=grant.mpki, now=NOW)
    assert ours.rand_r == randrr and ours.sdp_ids == "mikey"
    psk_ours = mikey.derive_tls_psk(
        tgk=grant.tgk, cs_id=1, rand_i=m.one(im.PT_RANDR, 1)["rand"], rand_r=randrr, suite=so
    )
    assert psk_ours == im.responder_psk(ti, tgk, randrr)


def test_independent_transfer_init_verifies_at_our_responder(env):
    """The independent TRANSFER_INIT passes our early checks, resolve and MAC verification."""
    si, so, rnd = env["si"], env["so"], env["rnd"]
    ob = their_obtained(env)
    randri = rnd(si.key_len)
    ti = im.build_transfer_init(
        ob=ob, suite=si, csb_id=0xBEEF0002, now=NOW, randri=randri, id_i=A, id_r=B
    )
    peek = mikey.peek_transfer_init(ti)
    mikey.check_transfer_init_profile(peek, responder=BOB, now=NOW)
    rand_r = rnd(so.rand_len)
    res = mikey.build_resolve_init(
        psk=env["psk_b"],
        responder=BOB,
        kms=KMS,
        ticket=peek.ticket,
        now=NOW,
        csb_id=88,
        rand_r=rand_r,
        suite=so,
    )
    status, rr = env["kms"].handle(res)  # our RESOLVE_INIT verifies at the independent KMS
    assert status == 200, im.read_error(rr)
    resolved = mikey.read_resolve_resp(rr, resolve_init=res, psk=env["psk_b"], now=NOW)
    assert (resolved.mpki, resolved.tgk) == (ob.mpki, ob.tgk)
    ver = mikey.verify_transfer_init(ti, mpki=resolved.mpki, now=NOW)
    assert (ver.initiator, ver.responder, ver.rand_i, ver.sdp_ids) == (ALICE, BOB, randri, "mikey")
    tr = mikey.build_transfer_resp(
        transfer_init=ti, mpki=resolved.mpki, responder=BOB, rand_r=rand_r, now=NOW
    )
    m = im.verify_transfer_resp(tr, ti, ob.mpki, NOW)
    assert m.cs[0]["policies"] == [0] and m.cs[0]["spi"] == ob.spi
    sp = m.one(im.PT_SP)
    assert (sp["policy_no"], sp["prot"], sp["params"]) == (0, 241, b"")
    ours = mikey.derive_tls_psk(tgk=resolved.tgk, cs_id=1, rand_i=randri, rand_r=rand_r, suite=so)
    assert ours == im.initiator_psk(ti, tr, ob.tgk)


def test_independent_resolve_init_verifies_with_ours_and_our_resolve_resp_reads_there(env):
    """RESOLVE_INIT_PSK independent→ours, RESOLVE_RESP ours→independent."""
    si, so, rnd = env["si"], env["so"], env["rnd"]
    ob = their_obtained(env)
    ti = im.build_transfer_init(
        ob=ob, suite=si, csb_id=3, now=NOW, randri=rnd(si.key_len), id_i=A, id_r=B
    )
    randrr = rnd(si.key_len)
    res = im.build_resolve_init(
        transfer_init=ti,
        suite=si,
        psk=env["psk_b"],
        csb_id=0x0BADCAFE,
        now=NOW,
        randrr=randrr,
        id_r=B,
        id_kms=K,
    )
    ver = mikey.verify_resolve_init(res, psk=env["psk_b"], now=NOW, kms=KMS)
    assert (ver.responder, ver.rand_r, ver.suite) == (BOB, randrr, so)
    assert ver.ticket == ob.ticket_body
    rr = mikey.build_resolve_resp(
        resolve_init=res,
        psk=env["psk_b"],
        kms=KMS,
        responder=BOB,
        mpki=ob.mpki,
        tgk=ob.tgk,
        spi=ob.spi,
        now=NOW + 2,
    )
    assert im.read_resolve_resp(rr, res, env["psk_b"], NOW) == (ob.mpki, ob.tgk, ob.spi)


# --- Error --------------------------------------------------------------------------------


def test_error_messages_both_ways(env):
    """Error (data type 6) decodes both ways with PRF, CSB ID and ERR codes intact."""
    si = env["si"]
    ours = mikey.build_error(err_code=[1, 7], csb_id=0x11223344, prf=si.prf, now=NOW)
    m = im.decode(ours)
    assert (m.dtype, m.v, m.prf, m.csb_id) == (6, 0, si.prf, 0x11223344)
    assert im.read_error(ours) == [1, 7]
    theirs = im.build_error(bytes([1, 11, 0, si.prf]) + bytes.fromhex("a1b2c3d4"), 14, NOW)
    e = mikey.read_error(theirs)
    assert (e.err_codes, e.csb_id, e.prf) == ((14,), 0xA1B2C3D4, si.prf)


def test_our_error_for_failed_message_decodes_at_peer(env):
    """build_error_for copies CSB ID / PRF of the failed independent message."""
    si, rnd = env["si"], env["rnd"]
    req = im.build_request_init(
        suite=si,
        psk=env["psk_a"],
        csb_id=0x99887766,
        now=NOW,
        randri=rnd(si.key_len),
        id_i=A,
        id_kms=K,
        id_rs=[B],
    )
    err = mikey.build_error_for(req, err_code=0, now=NOW)
    m = im.decode(err)
    assert (m.csb_id, m.prf, im.read_error(err)) == (0x99887766, si.prf, [0])


# --- Negative cross-checks: each side rejects what the other has tampered with -------------


def test_our_verifier_rejects_independent_message_with_wrong_psk(env):
    """A REQUEST_INIT MACed with another key fails our verification (AuthenticationError)."""
    si, rnd = env["si"], env["rnd"]
    req = im.build_request_init(
        suite=si,
        psk=env["psk_b"],
        csb_id=1,
        now=NOW,
        randri=rnd(si.key_len),
        id_i=A,
        id_kms=K,
        id_rs=[B],
    )
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_request_init(req, psk=env["psk_a"], now=NOW)


def test_independent_kms_rejects_our_request_from_unknown_user(env):
    """Our REQUEST_INIT for an unknown IDRi is answered 403 + ERR 7 that our reader decodes."""
    so, rnd = env["so"], env["rnd"]
    req = mikey.build_request_init(
        psk=env["psk_a"],
        initiator="sip:mallory@example.net",
        kms=KMS,
        responders=[BOB],
        now=NOW,
        csb_id=5,
        rand=rnd(so.rand_len),
        suite=so,
    )
    status, body = env["kms"].handle(req)
    assert status == 403
    assert mikey.read_error(body).err_codes == (7,)


# --- the initiator must check the granted Ticket Policy (RFC 6043 §4.2.1.6) -----------------


@pytest.mark.parametrize("granted", ["DEFHNO", "DEFGNO", "DEHNO"], ids=["G0", "H0", "F0G0"])
def test_our_initiator_refuses_grants_the_profile_cannot_use(env, granted):
    """A grant lacking F, G or H (which PROFILE §4 needs) is refused when it is read."""
    env["kms"].grant_flags = frozenset(granted)
    with pytest.raises(mikey.MikeyError):
        our_grant(env)


def test_our_initiator_refuses_transfer_to_responder_not_in_ticket(env):
    """A TRANSFER_INIT to Bob is refused when the KMS granted the ticket for Eve only."""
    env["kms"].grant_responders = (b"sip:eve@example.net",)
    _req, _resp, grant = our_grant(env)
    with pytest.raises(mikey.MikeyError):
        mikey.build_transfer_init(
            grant=grant,
            initiator=ALICE,
            responder=BOB,
            now=NOW,
            csb_id=1,
            rand=env["rnd"](env["so"].rand_len),
        )


def test_our_initiator_refuses_transfer_resp_without_spi(env):
    """An independent TRANSFER_RESP with an empty CS SPI is refused (RFC 6043 §6.1.1: the SPI
    "MUST be provided in the response message")."""
    si, so, rnd = env["si"], env["so"], env["rnd"]
    _, _, grant = our_grant(env)
    # The SPI MAY be left empty in the initial message (§6.1.1); the responder then fills
    # it in, or, here, does not.
    ti = mikey.build_transfer_init(
        grant=attrs.evolve(grant, spi=b""),
        initiator=ALICE,
        responder=BOB,
        now=NOW,
        csb_id=11,
        rand=rnd(so.rand_len),
    )
    tr = im.build_transfer_resp(
        transfer_init=ti, mpki=grant.mpki, spi=b"", now=NOW, randrr=rnd(si.key_len), id_r=B
    )
    with pytest.raises(mikey.PolicyError):
        mikey.verify_transfer_resp(tr, transfer_init=ti, mpki=grant.mpki, now=NOW)


# --- primitives and MAC coverage corner cases ----------------------------------------------


@pytest.mark.parametrize("prf_func", [0, 1])
def test_prf_agrees_for_every_inkey_length(prf_func):
    """Both PRFs agree for inkeys of 1..99 bytes (multi-block XOR, exact 32-byte multiples)."""
    from mikey import crypto

    for n in range(1, 100):
        key = bytes((i * 7 + n) & 0xFF for i in range(n))
        for out in (14, 16, 20, 32, 48):
            assert crypto.prf(key, b"label", out, prf_func=prf_func) == im.prf(
                prf_func, key, b"label", out
            ), (n, out)


def test_initiator_data_is_outside_the_transfer_init_mac(env):
    """RFC 6043 §5.5: both verifiers ignore Initiator Data length + data in TRANSFER_INIT."""
    rnd = env["rnd"]
    body = im.tp_body(0, im.PROFILE_FLAGS, [im.p_idr(1, A), im.p_idr(2, B)])
    body += b"\x00\x02ab" + b"\x00\x05\x09\x00\x01zz"
    ob = im.Obtained(body, {}, rnd(16), rnd(16), b"\x00\x00\x00\x01")
    ti = im.build_transfer_init(
        ob=ob, suite=im.SUITE_128, csb_id=3, now=NOW, randri=rnd(16), id_i=A, id_r=B
    )
    for msg in (ti, ti.replace(b"\x09\x00\x01zz", b"\x09\x00\x01zy")):
        im.verify_transfer_init(msg, ob.mpki, NOW)
        mikey.verify_transfer_init(msg, mpki=ob.mpki, now=NOW)
    tampered = ti.replace(b"\x00\x02ab", b"\x00\x02ac")  # Ticket Data is covered
    with pytest.raises(mikey.AuthenticationError):
        mikey.verify_transfer_init(tampered, mpki=ob.mpki, now=NOW)
    with pytest.raises(im.PeerError):
        im.verify_transfer_init(tampered, ob.mpki, NOW)


def test_our_initiator_refuses_an_already_expired_grant(env):
    """A grant whose validity ended before it arrived is refused."""
    env["kms"].grant_lifetime = -60.0
    with pytest.raises(mikey.MikeyError):
        _req, _resp, grant = our_grant(env)
        mikey.build_transfer_init(
            grant=grant,
            initiator=ALICE,
            responder=BOB,
            now=NOW,
            csb_id=1,
            rand=env["rnd"](env["so"].rand_len),
        )
