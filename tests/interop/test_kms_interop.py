"""KMS over HTTP (PROFILE §3): independent client vs `twistd kms`, our KmsClient vs a mini KMS."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.interop import independent_mikey as im

pytestmark = pytest.mark.timeout(60)
e2e = pytest.mark.e2e  # starts `twistd kms` on loopback

TWISTD = str(Path(sys.executable).with_name("twistd"))
KMS = b"sip:kms@kms.example.net"
ALICE, BOB = b"sip:alice@example.net", b"sip:bob@example.net"
CAROL, DAVE = b"sip:carol@example.net", b"sip:dave@example.net"
KEYS = {
    ALICE: bytes.fromhex("00112233445566778899aabbccddeeff"),
    BOB: bytes.fromhex("ffeeddccbbaa99887766554433221100"),
    CAROL: bytes(range(32)),
    DAVE: bytes(range(100, 132)),
}
BASE = "/mikey-ticket/v1"
FOCUS, ROOM = b"sip:focus@conf.example.net", b"sip:lobby@conf.example.net"
FOCUS_KEY = bytes(range(50, 66))
TPK = bytes(range(200, 232))  # ticket_protection_key given to `twistd kms`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("twistd kms exited early")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError("twistd kms did not listen in time")


def _write_config(d: Path, port: int, *, tls: bool) -> Path:
    accounts = "".join(
        f'\n[[account]]\nidentity = "{uri.decode()}"\nkey = "{key.hex()}"\n'
        f'psk_id = "{uri.decode().split(":")[1].split("@")[0]}"\n'
        for uri, key in KEYS.items()
    )
    # The focus account: one key acting as every room of the conference domain (PROFILE §6).
    accounts += (
        f'\n[[account]]\nidentity = "{FOCUS.decode()}"\nkey = "{FOCUS_KEY.hex()}"\n'
        f'may_act_as = ["{FOCUS.decode()}", "sip:*@conf.example.net"]\npsk_id = "focus"\n'
    )
    listen = f"ssl:{port}:interface=127.0.0.1" if tls else f"tcp:{port}:interface=127.0.0.1"
    cfg = d / "kms.toml"
    cfg.write_text(
        f'identity = "{KMS.decode()}"\nlisten = "{listen}"\n'
        f"allow_plain_http = {'false' if tls else 'true'}\n"
        f'ticket_protection_key = "{TPK.hex()}"\n' + accounts
    )
    return cfg


@contextlib.contextmanager
def _twistd_kms(d: Path, *, tls: bool):
    port = _free_port()
    cfg = _write_config(d, port, tls=tls)
    log = (d / "twistd.log").open("wb")  # a file, not a pipe: a full pipe would block it
    proc = subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "--logfile=-", "kms", "--config", str(cfg)],
        cwd=d,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_port(port, proc, time.monotonic() + 20)
        yield port, cfg
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def plain_kms(tmp_path_factory):
    with _twistd_kms(tmp_path_factory.mktemp("kms"), tls=False) as (port, _cfg):
        yield port


def post(port: int, path: str, body: bytes, ctype: str = "application/mikey", ctx=None):
    """POST with stdlib http.client (independent of treq/kms_client)."""
    if ctx is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request("POST", BASE + path, body, {"Content-Type": ctype})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


def counter_random(seed: int):
    c = itertools.count(seed)
    return lambda n: bytes((next(c) * 89 + i * 13) & 0xFF for i in range(n))


def full_exchange(port: int, suite: im.Suite, ini: bytes, resp: bytes, ctx=None, psk_ids=False):
    """Independent initiator + responder against a KMS at *port*; returns both PSKs."""
    rnd = counter_random(int(time.time() * 1000) & 0xFFFF)
    now = time.time()
    req = im.build_request_init(
        suite=suite,
        psk=KEYS[ini],
        csb_id=int.from_bytes(rnd(4), "big"),
        now=now,
        randri=rnd(suite.key_len),
        id_i=ini,
        id_kms=KMS,
        id_rs=[resp],
        id_psk=ini.split(b":")[1].split(b"@")[0] if psk_ids else None,
    )
    st, ctype, body = post(port, "/request", req, ctx=ctx)
    assert (st, ctype) == (200, "application/mikey"), body
    ob = im.read_request_resp(body, req, KEYS[ini], time.time())
    ti = im.build_transfer_init(
        ob=ob,
        suite=suite,
        csb_id=int.from_bytes(rnd(4), "big"),
        now=time.time(),
        randri=rnd(suite.key_len),
        id_i=ini,
        id_r=resp,
    )
    randrr = rnd(suite.key_len)
    ri = im.build_resolve_init(
        transfer_init=ti,
        suite=suite,
        psk=KEYS[resp],
        csb_id=int.from_bytes(rnd(4), "big"),
        now=time.time(),
        randrr=randrr,
        id_r=resp,
        id_kms=KMS,
        id_psk=resp.split(b":")[1].split(b"@")[0] if psk_ids else None,
    )
    st, ctype, body = post(port, "/resolve", ri, ctx=ctx)
    assert (st, ctype) == (200, "application/mikey"), body
    mpki, tgk, spi = im.read_resolve_resp(body, ri, KEYS[resp], time.time())
    assert (mpki, tgk, spi) == (ob.mpki, ob.tgk, ob.spi)
    im.verify_transfer_init(ti, mpki, time.time())
    tr = im.build_transfer_resp(
        transfer_init=ti, mpki=mpki, spi=spi, now=time.time(), randrr=randrr, id_r=resp
    )
    im.verify_transfer_resp(tr, ti, ob.mpki, time.time())
    return im.initiator_psk(ti, tr, ob.tgk), im.responder_psk(ti, tgk, randrr), ob, ri


# --- independent client against `twistd kms` ----------------------------------------------


@pytest.mark.parametrize(
    ("suite", "ini", "resp"),
    [(im.SUITE_128, ALICE, BOB), (im.SUITE_256, CAROL, DAVE)],
    ids=["128", "256"],
)
@e2e
def test_independent_client_obtains_and_resolves_at_twistd_kms(plain_kms, suite, ini, resp):
    """The independent peer obtains and resolves a ticket at `twistd kms`; both PSKs agree."""
    psk_i, psk_r, ob, _ = full_exchange(plain_kms, suite, ini, resp)
    assert psk_i == psk_r and len(psk_i) == suite.key_len
    assert ob.ticket["flags"] >= {"D", "E", "F", "G", "H"}


@pytest.mark.parametrize(
    ("suite", "ini", "resp"),
    [(im.SUITE_128, ALICE, BOB), (im.SUITE_256, CAROL, DAVE)],
    ids=["128", "256"],
)
@e2e
def test_twistd_kms_ticket_is_an_appendix_a_base_ticket(plain_kms, suite, ini, resp):
    """The type-1 ticket opens per RFC 6043 Appendix A with the TPK, and its MPK gives MPKi."""
    _, _, ob, _ = full_exchange(plain_kms, suite, ini, resp)
    opened = im.open_base_ticket(ob.ticket_body, TPK)
    assert opened["mpki"] == ob.mpki
    tgks = [k for k in opened["keys"] if k["type"] == im.KEY_TGK]
    assert [(k["key"], k["spi"]) for k in tgks] == [(ob.tgk, ob.spi)]
    assert not [p for p in ob.ticket["tp_payloads"] if p["type"] == im.PT_KEMAC]


@e2e
def test_independent_client_with_idrpsk(plain_kms):
    """IDRpsk (ID type 2) names the key at `twistd kms` (PROFILE §3)."""
    psk_i, psk_r, _, _ = full_exchange(plain_kms, im.SUITE_128, ALICE, BOB, psk_ids=True)
    assert psk_i == psk_r


@e2e
def test_twistd_kms_error_answers(plain_kms):
    """Wrong key → 403/ERR 0, replay → 409/ERR 1, bad type → 415, junk → 400, big → 413."""
    now = time.time()
    req = im.build_request_init(
        suite=im.SUITE_128,
        psk=KEYS[BOB],
        csb_id=4242,
        now=now,
        randri=os.urandom(16),
        id_i=ALICE,
        id_kms=KMS,
        id_rs=[BOB],
    )
    st, _, body = post(plain_kms, "/request", req)
    assert (st, im.read_error(body)) == (403, [0])
    assert im.decode(body).csb_id == 4242
    good = im.build_request_init(
        suite=im.SUITE_128,
        psk=KEYS[ALICE],
        csb_id=4243,
        now=now,
        randri=os.urandom(16),
        id_i=ALICE,
        id_kms=KMS,
        id_rs=[BOB],
    )
    assert post(plain_kms, "/request", good)[0] == 200
    st, _, body = post(plain_kms, "/request", good)
    assert (st, im.read_error(body)) == (409, [1])
    stale = im.build_request_init(
        suite=im.SUITE_128,
        psk=KEYS[ALICE],
        csb_id=4244,
        now=now - 3600,
        randri=os.urandom(16),
        id_i=ALICE,
        id_kms=KMS,
        id_rs=[BOB],
    )
    st, _, body = post(plain_kms, "/request", stale)
    assert (st, im.read_error(body)) == (409, [1])
    assert post(plain_kms, "/request", good, ctype="text/plain")[0] == 415
    assert post(plain_kms, "/request", b"\x01\x0b\x00")[0] == 400
    assert post(plain_kms, "/request", bytes(65 * 1024))[0] == 413


@e2e
def test_twistd_kms_refuses_resolve_by_unauthorised_responder(plain_kms):
    """A ticket for Bob cannot be resolved by Carol's key as Carol (403, ERR 7 or 0)."""
    _, _, ob, _ = full_exchange(plain_kms, im.SUITE_128, ALICE, BOB)
    ti = im.build_transfer_init(
        ob=ob,
        suite=im.SUITE_128,
        csb_id=9,
        now=time.time(),
        randri=os.urandom(16),
        id_i=ALICE,
        id_r=BOB,
    )
    ri = im.build_resolve_init(
        transfer_init=ti,
        suite=im.SUITE_128,
        psk=KEYS[CAROL],
        csb_id=10,
        now=time.time(),
        randrr=os.urandom(16),
        id_r=CAROL,
        id_kms=KMS,
    )
    st, _, body = post(plain_kms, "/resolve", ri)
    assert st == 403 and im.read_error(body)[0] in (0, 7, 14)


@e2e
def test_independent_client_over_https_with_generated_ca(tmp_path):
    """Over the HTTPS default, the generated `<stem>.ca.pem` authenticates `twistd kms`."""
    with _twistd_kms(tmp_path, tls=True) as (port, cfg):
        ca = cfg.with_suffix(".ca.pem")
        ctx = ssl.create_default_context(cafile=str(ca))
        # Hostname checking stays on: the generated certificate must name 127.0.0.1.
        psk_i, psk_r, _, _ = full_exchange(port, im.SUITE_128, ALICE, BOB, ctx=ctx)
        assert psk_i == psk_r


# --- our KmsClient against the independent mini KMS (in memory, RequestTraversalAgent) ----

NOW = 1_800_000_000.0


def _mini_kms_resource(kms: im.MiniKms):
    from twisted.web.resource import Resource

    class Endpoint(Resource):
        isLeaf = True

        def render_POST(self, request):
            request.setHeader(b"content-type", b"application/mikey")
            ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip()
            if ctype.lower() != b"application/mikey":
                request.setResponseCode(415)
                return b""
            body = request.content.read(64 * 1024 + 1)
            if len(body) > 64 * 1024:
                request.setResponseCode(413)
                return b""
            status, answer = kms.handle(body)
            request.setResponseCode(status)
            return answer

    root = Resource()
    node = root
    for seg in BASE.strip("/").split("/"):
        child = Resource()
        node.putChild(seg.encode(), child)
        node = child
    node.putChild(b"request", Endpoint())
    node.putChild(b"resolve", Endpoint())
    return root


def _run(d, stub):
    """Drive a Deferred/coroutine over an in-memory agent to completion without a real reactor."""
    from twisted.internet.defer import Deferred, ensureDeferred

    if not isinstance(d, Deferred):
        d = ensureDeferred(d)
    out: list = []
    d.addBoth(out.append)
    for _ in range(50):
        stub.flush()
        if out:
            break
    assert out, "KmsClient did not finish"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


@pytest.mark.parametrize(
    ("osuite", "isuite", "ini", "resp"),
    [("SUITE_128", im.SUITE_128, ALICE, BOB), ("SUITE_256", im.SUITE_256, CAROL, DAVE)],
    ids=["128", "256"],
)
def test_our_kms_client_against_independent_kms(osuite, isuite, ini, resp):
    """Our KmsClient obtains and resolves at the independent KMS; both ends derive one PSK."""
    from treq.testing import RequestTraversalAgent
    from twisted.internet.task import Clock

    import mikey
    from kms_client import KmsClient

    suite = getattr(mikey, osuite)
    clock = Clock()
    clock.advance(NOW)
    rnd = counter_random(3)
    kms = im.MiniKms(
        identity=KMS,
        users={u: im.KmsUser(k, (u,)) for u, k in KEYS.items()},
        random=rnd,
        clock=clock.seconds,
    )
    stub = RequestTraversalAgent(_mini_kms_resource(kms))
    url = "http://kms.test" + BASE

    def client(uri: bytes) -> KmsClient:
        return KmsClient(
            base_url=url,
            kms_identity=KMS.decode(),
            psk=KEYS[uri],
            http=stub,
            reactor=clock,
            suite=suite,
            allow_plain_http=True,
            random_bytes=rnd,
        )

    grant = _run(
        client(ini).request_ticket(initiator=ini.decode(), responders=[resp.decode()]), stub
    )
    rec = next(iter(kms.tickets.values()))
    assert (grant.mpki, grant.tgk, grant.spi) == (rec["mpki"], rec["tgk"], rec["spi"])
    ti = mikey.build_transfer_init(
        grant=grant,
        initiator=ini.decode(),
        responder=resp.decode(),
        now=NOW,
        csb_id=77,
        rand=rnd(suite.rand_len),
    )
    peek = mikey.peek_transfer_init(ti)
    res = _run(client(resp).resolve_ticket(responder=resp.decode(), ticket=peek.ticket), stub)
    assert (res.mpki, res.tgk, res.spi) == (grant.mpki, grant.tgk, grant.spi)
    mikey.verify_transfer_init(ti, mpki=res.mpki, now=NOW)
    tr = mikey.build_transfer_resp(
        transfer_init=ti, mpki=res.mpki, responder=resp.decode(), rand_r=res.rand_r, now=NOW
    )
    # The independent initiator side checks the TRANSFER_RESP our responder built.
    im.verify_transfer_resp(tr, ti, grant.mpki, NOW)
    assert im.initiator_psk(ti, tr, grant.tgk) == mikey.derive_tls_psk(
        tgk=res.tgk, cs_id=1, rand_i=peek.rand_i, rand_r=res.rand_r, suite=suite
    )


def test_our_kms_client_maps_independent_kms_refusal():
    """A 403 + ERR 7 from the independent KMS surfaces as KmsRejected(err_code=7)."""
    from treq.testing import RequestTraversalAgent
    from twisted.internet.task import Clock

    from kms_client import KmsClient, KmsRejected

    clock = Clock()
    clock.advance(NOW)
    kms = im.MiniKms(identity=KMS, users={}, random=os.urandom, clock=clock.seconds)
    stub = RequestTraversalAgent(_mini_kms_resource(kms))
    c = KmsClient(
        base_url="http://kms.test" + BASE,
        kms_identity=KMS.decode(),
        psk=KEYS[ALICE],
        http=stub,
        reactor=clock,
        allow_plain_http=True,
    )
    with pytest.raises(KmsRejected) as ei:
        _run(c.request_ticket(initiator=ALICE.decode(), responders=[BOB.decode()]), stub)
    assert ei.value.err_code == 7


# --- policy handling at `twistd kms` (RFC 6043 §4.2.1.4-5, §6.10) ---------------------------


def _ask(port: int, **knobs):
    """POST a REQUEST_INIT_PSK with policy knobs; return (status, granted TICKET, KEMAC keys)."""
    now = time.time()
    csb = int.from_bytes(os.urandom(4), "big")
    randri = os.urandom(16)
    req = im.build_request_init(
        suite=im.SUITE_128,
        psk=KEYS[ALICE],
        csb_id=csb,
        now=now,
        randri=randri,
        id_i=ALICE,
        id_kms=KMS,
        id_rs=[BOB],
        **knobs,
    )
    st, _, body = post(port, "/request", req)
    if st != 200:
        return st, im.read_error(body), None
    m = im.decode(body)
    enc, auth, salt = im.message_keys(im.SUITE_128, KEYS[ALICE], csb, 2, randri, None)
    im.verify(m, im.SUITE_128, auth, req)
    return st, m.one(im.PT_TICKET), im.decrypt_kemac(m, enc, salt)


@e2e
def test_twistd_kms_response_header_copies_request(plain_kms):
    """REQUEST_RESP copies version/PRF/CSB ID/#CS/map type and sets V=0 (§4.2.1.5)."""
    st, _, body = post(
        plain_kms,
        "/request",
        im.build_request_init(
            suite=im.SUITE_128,
            psk=KEYS[ALICE],
            csb_id=0x5A5A5A5A,
            now=time.time(),
            randri=os.urandom(16),
            id_i=ALICE,
            id_kms=KMS,
            id_rs=[BOB],
        ),
    )
    m = im.decode(body)
    assert (st, m.v, m.prf, m.csb_id, m.cs_map, m.cs) == (200, 0, 0, 0x5A5A5A5A, 1, [])
    assert abs(im.ntp_to_unix(m.t64) - time.time()) < 30  # fresh T (§4.2.1.5)


@e2e
def test_twistd_kms_does_not_grant_forking_it_cannot_honour(plain_kms):
    """A request for I=1 gets either I=0 (K=1) or a REQUEST_RESP carrying MPKi and MPKr."""
    st, ticket, keys = _ask(plain_kms, flags=im.PROFILE_FLAGS | {"I"})
    assert st == 200
    mpks = [k for k in keys if k["type"] == im.KEY_MPK]
    assert "I" not in ticket["flags"] or len(mpks) == 2
    if "I" not in ticket["flags"]:
        assert "K" in ticket["flags"]


@e2e
def test_twistd_kms_marks_its_tickets_kms_generated(plain_kms):
    """The granted policy of a KMS-made ticket has D=1 even when the request said D=0."""
    st, ticket, _ = _ask(plain_kms, flags=frozenset("EFGHLNO"))
    assert st == 200
    assert "D" in ticket["flags"] and "K" in ticket["flags"]


@e2e
def test_twistd_kms_sets_k_when_it_changes_the_policy(plain_kms):
    """When the granted PRF Func differs from the requested one, K=1."""
    st, ticket, _ = _ask(plain_kms, tp_prf=1)
    assert st == 200
    assert ticket["prf"] == 1 or "K" in ticket["flags"]


@e2e
def test_twistd_kms_caps_open_ended_or_overlong_validity(plain_kms):
    """No TRe or a TRe beyond max_ticket_lifetime is granted with TRe = now + the maximum
    (default 1 day) and K=1 (RFC 6043 §4.2.1.4 "possibly with a modified Ticket Policy")."""
    for validity in (None, 3 * 86400):
        before = time.time()
        st, ticket, _ = _ask(plain_kms, validity=validity)
        assert st == 200 and ticket["flags"] == im.PROFILE_FLAGS | {"K"}
        ends = [p for p in ticket["tp_payloads"] if p["type"] == im.PT_TR and p["role"] == 3]
        assert len(ends) == 1
        assert before + 86400 - 30 < im.ntp_to_unix(ends[0]["value"]) < time.time() + 86400 + 30


@e2e
def test_twistd_kms_accepts_request_without_idrkms(plain_kms):
    """A REQUEST_INIT without IDRkms (RFC 6043 §4.2.1.1 MAY) is answered; its MAC covers the
    KMS's configured identity (DIGEST §2.19), and the answer verifies."""
    st, ticket, keys = _ask(plain_kms, send_idr_kms=False)
    assert st == 200 and ticket["flags"] == im.PROFILE_FLAGS
    assert [k["type"] for k in keys] == [im.KEY_MPK, im.KEY_TGK]


def _fixed_answer(status: int, ctype: bytes, body: bytes):
    from twisted.web.resource import Resource

    class Fixed(Resource):
        isLeaf = True

        def render_POST(self, request):
            request.setResponseCode(status)
            request.setHeader(b"content-type", ctype)
            return body

    return Fixed()


@pytest.mark.parametrize(
    ("status", "ctype", "body", "error", "err_code"),
    [
        (409, b"application/mikey", "ERR1", "KmsRejected", 1),
        (403, b"application/mikey", "ERR0", "KmsRejected", 0),
        (400, b"text/plain", "junk", "KmsRejected", None),
        (200, b"text/plain", "ERR1", "KmsProtocolError", None),
        (200, b"application/mikey", "junk", "KmsProtocolError", None),
    ],
    ids=["409", "403", "400-plain", "200-wrong-type", "200-junk"],
)
def test_our_kms_client_maps_profile_http_answers(status, ctype, body, error, err_code):
    """PROFILE §3 answers from an independent server map to KmsRejected / KmsProtocolError."""
    from treq.testing import RequestTraversalAgent
    from twisted.internet.task import Clock

    import kms_client

    clock = Clock()
    clock.advance(NOW)
    raw = {
        "ERR1": im.build_error(bytes(8), 1, NOW),
        "ERR0": im.build_error(bytes(8), 0, NOW),
        "junk": b"\x01\x02garbage",
    }[body]
    agent = RequestTraversalAgent(_fixed_answer(status, ctype, raw))
    c = kms_client.KmsClient(
        base_url="http://kms.test" + BASE,
        kms_identity=KMS.decode(),
        psk=KEYS[ALICE],
        http=agent,
        reactor=clock,
        allow_plain_http=True,
    )
    with pytest.raises(getattr(kms_client, error)) as ei:
        _run(c.request_ticket(initiator=ALICE.decode(), responders=[BOB.decode()]), agent)
    if err_code is not None:
        assert ei.value.err_code == err_code


def _room_ticket(port: int):
    """Alice obtains a ticket for the conference room; returns (Obtained, TRANSFER_INIT)."""
    now = time.time()
    req = im.build_request_init(
        suite=im.SUITE_128,
        psk=KEYS[ALICE],
        csb_id=21,
        now=now,
        randri=os.urandom(16),
        id_i=ALICE,
        id_kms=KMS,
        id_rs=[ROOM],
    )
    st, _, body = post(port, "/request", req)
    assert st == 200
    ob = im.read_request_resp(body, req, KEYS[ALICE], time.time())
    ti = im.build_transfer_init(
        ob=ob,
        suite=im.SUITE_128,
        csb_id=22,
        now=time.time(),
        randri=os.urandom(16),
        id_i=ALICE,
        id_r=ROOM,
    )
    return ob, ti


@pytest.mark.parametrize("with_idrpsk", [True, False], ids=["IDRpsk", "no-IDRpsk"])
@e2e
def test_focus_resolves_as_room_with_its_own_key(plain_kms, with_idrpsk):
    """A focus key allowed `sip:*@conf.example.net` resolves as the room URI (PROFILE §6)."""
    ob, ti = _room_ticket(plain_kms)
    ri = im.build_resolve_init(
        transfer_init=ti,
        suite=im.SUITE_128,
        psk=FOCUS_KEY,
        csb_id=23,
        now=time.time(),
        randrr=os.urandom(16),
        id_r=ROOM,
        id_kms=KMS,
        id_psk=b"focus" if with_idrpsk else None,
    )
    # Without IDRpsk the KMS finds the key from IDRr (PROFILE §3) through may_act_as.
    st, _, body = post(plain_kms, "/resolve", ri)
    assert st == 200, im.read_error(body)
    mpki, tgk, _spi = im.read_resolve_resp(body, ri, FOCUS_KEY, time.time())
    assert (mpki, tgk) == (ob.mpki, ob.tgk)


@e2e
def test_focus_key_cannot_resolve_outside_its_domain(plain_kms):
    """The focus key may not resolve a ticket for Bob (not in its may_act_as)."""
    _, _, ob, _ = full_exchange(plain_kms, im.SUITE_128, ALICE, BOB)
    ti = im.build_transfer_init(
        ob=ob,
        suite=im.SUITE_128,
        csb_id=31,
        now=time.time(),
        randri=os.urandom(16),
        id_i=ALICE,
        id_r=BOB,
    )
    ri = im.build_resolve_init(
        transfer_init=ti,
        suite=im.SUITE_128,
        psk=FOCUS_KEY,
        csb_id=32,
        now=time.time(),
        randrr=os.urandom(16),
        id_r=BOB,
        id_kms=KMS,
        id_psk=b"focus",
    )
    st, _, body = post(plain_kms, "/resolve", ri)
    assert (st, im.read_error(body)) == (403, [7])


@e2e
def test_twistd_kms_refuses_foreign_or_tampered_tickets(plain_kms):
    """Unknown ticket type, a flipped MAC byte or a flipped policy flag → 403 + ERR 14."""
    _, _, ob, _ = full_exchange(plain_kms, im.SUITE_128, ALICE, BOB)
    foreign = im.tp_body(0, im.PROFILE_FLAGS, [im.p_idr(2, BOB)])
    foreign = b"\xf0\x00" + foreign[2:] + b"\x00\x04abcd\x00\x00"
    bad_mac = bytearray(ob.ticket_body)
    bad_mac[-10] ^= 1
    bad_flag = bytearray(ob.ticket_body)
    bad_flag[5] ^= 0x04  # J
    for body in (foreign, bytes(bad_mac), bytes(bad_flag)):
        o = im.Obtained(body, {}, ob.mpki, ob.tgk, ob.spi)
        ti = im.build_transfer_init(
            ob=o,
            suite=im.SUITE_128,
            csb_id=5,
            now=time.time(),
            randri=os.urandom(16),
            id_i=ALICE,
            id_r=BOB,
        )
        ri = im.build_resolve_init(
            transfer_init=ti,
            suite=im.SUITE_128,
            psk=KEYS[BOB],
            csb_id=6,
            now=time.time(),
            randrr=os.urandom(16),
            id_r=BOB,
            id_kms=KMS,
        )
        st, _, answer = post(plain_kms, "/resolve", ri)
        assert (st, im.read_error(answer)) == (403, [14])
