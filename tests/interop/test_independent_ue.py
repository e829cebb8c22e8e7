"""An independent UE (tests/interop/independent_ue.py, written from the RFCs + PROFILE.md)
joins a room of the real `twistd focus` and chats with a real `focus-ue`, keyed first by the
real `twistd kms`, then by the independent mini KMS of independent_mikey (PROFILE §3–§9).

The independent UE's signalling half runs in this process; its TLS-PSK + MSRP half runs as a
Python 3.13 child (3.11's ssl has no PSK callbacks; see the independent_ue docstring)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._procs import BIN, KMS_IDENTITY, ROOM, Deployment, Proc, wait_message
from tests.interop import independent_mikey as im
from tests.interop.independent_ue import IndependentUE, KmsAccount, UEError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ALICE, BOB = "sip:alice@example.net", "sip:bob@example.net"
FOCUS_ACCOUNT = "sip:focus@conf.example.net"


def in_room(line: str) -> bool:
    return "in the room" in line


@pytest.fixture
def lobby(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, ("alice", "bob"))
    try:
        d.start_kms()
        d.start_focus()
        yield d
    finally:
        d.stop()


def chat_both_ways(indy: IndependentUE, alice: Proc, tag: str = "") -> None:
    """The independent UE and focus-ue exchange one message each way through the focus;
    *tag* makes the texts unique when one focus-ue meets several independent UEs."""
    try:
        bound = indy.join()
        assert bound["status"] == 200
        assert indy.answer is not None
        assert indy.answer.media_level_key_mgmt  # PROFILE §8: key-mgmt under the m-line
        tls = indy.wait_event(lambda e: e["event"] == "tls")
        assert tls["version"] == "TLSv1.2"

        assert indy.say(f"hello from the independent UE{tag}")["status"] == 200
        got = wait_message(alice, f"hello from the independent UE{tag}")
        assert got["from"] == BOB
        assert got["to"] == ROOM
        assert got["private"] is False

        alice.send_line(f"hello, independent UE{tag}")
        ev = indy.wait_message(f"hello, independent UE{tag}")
        assert ev["from"] == [f"<{ALICE}>"], ev  # RFC 7701 §6.1: the sender's URI, unmodified
        assert ev["to"] == [f"<{ROOM}>"], ev
        assert ev["content_type"].startswith("text/plain"), ev
        # The focus never echoes our own message back (RFC 7701 §6.1).
        assert all(m.get("from") != [f"<{BOB}>"] for m in indy.messages())

        assert indy.leave().status == 200
    except Exception as e:
        raise AssertionError(f"{e}\n--- SIP trace ---\n{indy.sip_trace()}") from e
    finally:
        indy.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_independent_ue_chats_with_focus_ue_via_twistd_kms(
    lobby: Deployment, tmp_path: Path, transport: str
) -> None:
    """Keyed by `twistd kms`, the independent UE joins the lobby over SIP/{transport}, its
    message reaches focus-ue with the right CPIM From and focus-ue's message reaches it."""
    alice = lobby.ue("alice")
    alice.wait_for(in_room)
    indy = IndependentUE(
        identity=BOB,
        room=ROOM,
        kms=KmsAccount(
            lobby.kms_url,
            KMS_IDENTITY,
            bytes.fromhex(lobby.keys["bob"]),
            str(tmp_path / "kms.ca.pem"),
        ),
        focus=("127.0.0.1", lobby.sip_port),
        transport=transport,
    )
    chat_both_ways(indy, alice)


# --- the independent mini KMS, served over plain HTTP on loopback ----------------------------

MINI_KMS = "sip:kms@independent.example"


class MiniKmsServer:
    """independent_mikey.MiniKms behind POST <base>/request and <base>/resolve (PROFILE §3)."""

    def __init__(self, kms: im.MiniKms, base: str = "/mikey-ticket/v1") -> None:
        lock = threading.Lock()
        self.calls: list[tuple[str, int]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(n, 64 * 1024))
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if self.path not in (f"{base}/request", f"{base}/resolve"):
                    status, answer = 404, b""
                elif ctype != "application/mikey":
                    status, answer = 415, b""
                elif n > 64 * 1024:
                    status, answer = 413, b""
                else:
                    with lock:
                        status, answer = kms.handle(body)
                calls.append((self.path.rsplit("/", 1)[-1], status))
                self.send_response(status)
                self.send_header("Content-Type", "application/mikey")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}{base}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_independent_ue_chats_with_focus_ue_via_independent_kms(tmp_path: Path) -> None:
    """With a focus configured to use the independent mini KMS (its own ticket format, plain
    HTTP on loopback), the independent UE and focus-ue both join the lobby and chat."""
    d = Deployment(tmp_path, ("alice", "bob"))
    keys = {
        uri: bytes.fromhex(d.keys[name])
        for uri, name in ((ALICE, "alice"), (BOB, "bob"), (FOCUS_ACCOUNT, "focus"))
    }
    users = {
        # focus-ue names its key by IDRpsk = its identity (its --kms-psk-id default).
        ALICE.encode(): im.KmsUser(keys[ALICE], (ALICE.encode(),), psk_id=ALICE.encode()),
        BOB.encode(): im.KmsUser(keys[BOB], (BOB.encode(),)),
        # The focus resolves as the room, naming its key by IDRpsk = its account (README §9).
        FOCUS_ACCOUNT.encode(): im.KmsUser(
            keys[FOCUS_ACCOUNT], (ROOM.encode(),), psk_id=FOCUS_ACCOUNT.encode()
        ),
    }
    kms = im.MiniKms(identity=MINI_KMS.encode(), users=users, random=im_random, clock=time.time)
    server = MiniKmsServer(kms)
    config = tmp_path / "focus.toml"
    text = config.read_text()
    text = re.sub(
        r"\[kms\]\n.*?\n\n",
        f'[kms]\nbase_url = "{server.url}"\nallow_plain_http = true\n'
        f'identity = "{MINI_KMS}"\naccount = "{FOCUS_ACCOUNT}"\n'
        f'key = "{d.keys["focus"]}"\ntimeout = 2.0\nretries = 0\n\n',
        text,
        flags=re.S,
    )
    config.write_text(text)
    try:
        d.start_focus()
        alice = Proc(
            "focus-ue alice",
            [
                str(BIN / "focus-ue"),
                "join",
                ROOM,
                "--identity",
                ALICE,
                "--kms-url",
                server.url,
                "--kms-identity",
                MINI_KMS,
                "--kms-key",
                d.keys["alice"],
                "--kms-insecure-http",
                "--proxy",
                f"127.0.0.1:{d.sip_port}",
                "--linger",
                "30",
            ],
            tmp_path,
        )
        d.procs.append(alice)
        alice.wait_for(in_room)
        indy = IndependentUE(
            identity=BOB,
            room=ROOM,
            kms=KmsAccount(server.url, MINI_KMS, keys[BOB]),
            focus=("127.0.0.1", d.sip_port),
            transport="udp",
        )
        chat_both_ways(indy, alice)
        # Both tickets came from the mini KMS and the focus resolved both there.
        assert sorted(server.calls) == [
            ("request", 200),
            ("request", 200),
            ("resolve", 200),
            ("resolve", 200),
        ]
    finally:
        d.stop()
        server.close()


def im_random(n: int) -> bytes:
    import os

    return os.urandom(n)


# --- deeper checks of the focus as an RFC 7701 switch, seen by two independent UEs ---------

CAROL = "sip:carol@example.net"


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, ("alice", "bob", "carol"))
    try:
        d.start_kms()
        d.start_focus()
        yield d
    finally:
        d.stop()


def independent(d: Deployment, name: str, **kw: Any) -> IndependentUE:
    return IndependentUE(
        identity=f"sip:{name}@example.net",
        room=ROOM,
        kms=KmsAccount(
            d.kms_url, KMS_IDENTITY, bytes.fromhex(d.keys[name]), str(d.tmp / "kms.ca.pem")
        ),
        focus=("127.0.0.1", d.sip_port),
        **kw,
    )


def test_switch_relays_unmodified_reassembles_chunks_and_routes_private_messages(
    trio: Deployment,
) -> None:
    """Between two independent UEs (one offering actpass over UDP, one active over TCP) and
    focus-ue: a relayed CPIM body arrives byte for byte, a chunked message arrives whole, and
    private messages reach only their target (RFC 7701 §6.1, §6.2; RFC 4975 §7.3.1)."""
    alice = trio.ue("alice")
    alice.wait_for(in_room)
    bob = independent(trio, "bob", setup="actpass", transport="udp")
    carol = independent(trio, "carol", setup="active", transport="tcp")
    try:
        for ue in (bob, carol):
            ue.join()
        from tests.interop.independent_ue import cpim_wrap

        body = cpim_wrap(BOB, ROOM, "exact bytes", time.time())
        body = body.replace(b"\r\n\r\n", b"\r\nSubject: kept as sent\r\n\r\n", 1)
        assert bob.send_raw(body, "message/cpim")["status"] == 200
        got = carol.wait_message("exact bytes")
        assert got["raw"].encode() == body  # RFC 7701 §6.1: MUST NOT modify the content
        assert got["ctype"].lower() == "message/cpim"
        assert ("Subject", "kept as sent") in [tuple(h) for h in got["cpim"]]
        assert wait_message(alice, "exact bytes")["from"] == BOB

        long_text = "chunked " + "x" * 3000
        body = cpim_wrap(BOB, ROOM, long_text, time.time())
        assert bob.send_raw(body, "message/cpim", cuts=[10, 2100])["status"] == 200
        assert carol.wait_message(long_text)["raw"].encode() == body
        assert wait_message(alice, long_text)["from"] == BOB

        assert bob.say("just for carol", to=CAROL)["status"] == 200
        got = carol.wait_message("just for carol")
        assert got["to"] == [f"<{CAROL}>"]
        assert got["from"] == [f"<{BOB}>"]

        alice.send_line(f"/msg {BOB} just for bob")
        assert bob.wait_message("just for bob")["to"] == [f"<{BOB}>"]

        # A later room message reaches everyone after the private ones on the same legs, so
        # its arrival shows the private ones were not copied to the others.
        assert bob.say("after the private ones")["status"] == 200
        assert wait_message(alice, "after the private ones")["from"] == BOB
        carol.wait_message("after the private ones")
        alice.send_line("alice after the private ones")
        bob.wait_message("alice after the private ones")
        carol.wait_message("alice after the private ones")
        assert all(m["body"] != "just for carol" for m in bob.messages())
        assert all(json.loads(line).get("body") != "just for carol" for line in alice.lines["out"])
        assert all(m["body"] != "just for bob" for m in carol.messages())

        for ue in (bob, carol):
            assert ue.leave().status == 200
    except Exception as e:
        raise AssertionError(f"{e}\n--- bob ---\n{bob.sip_trace()}") from e
    finally:
        bob.close()
        carol.close()


def test_switch_refuses_what_rfc_7701_says_it_must(trio: Deployment) -> None:
    """A SEND without a CPIM wrapper gets 415, a forged CPIM From 403, two CPIM To 403, a
    private message to a non-participant 404 and to a participant whose a=chatroom lacks
    private-messages 428 (RFC 7701 §6.1–§6.3, §8); the leg stays usable."""
    from tests.interop.independent_ue import cpim_wrap

    alice = trio.ue("alice")
    alice.wait_for(in_room)
    bob = independent(trio, "bob")
    carol = independent(trio, "carol", chatroom="")  # a=chatroom without tokens
    try:
        bob.join()
        carol.join()
        plain = b"no wrapper"
        assert bob.send_raw(plain, "text/plain")["status"] == 415
        forged = cpim_wrap(ALICE, ROOM, "forged", time.time())
        assert bob.send_raw(forged, "message/cpim")["status"] == 403
        two_to = cpim_wrap(BOB, ROOM, "two to", time.time()).replace(
            b"\r\nDateTime", f"\r\nTo: <{ALICE}>\r\nDateTime".encode(), 1
        )
        assert bob.send_raw(two_to, "message/cpim")["status"] == 403
        assert bob.say("to nobody", to="sip:nobody@example.net")["status"] == 404
        assert bob.say("to carol", to=CAROL)["status"] == 428  # no private-messages token
        assert bob.say("still here")["status"] == 200
        assert wait_message(alice, "still here")["from"] == BOB
        assert all(
            json.loads(line).get("body") not in ("no wrapper", "forged", "two to", "to nobody")
            for line in alice.lines["out"]
        )
        assert bob.leave().status == 200
    except Exception as e:
        raise AssertionError(f"{e}\n--- SIP trace ---\n{bob.sip_trace()}") from e
    finally:
        bob.close()
        carol.close()


def test_focus_refuses_offer_without_key_mgmt_or_with_foreign_identity(trio: Deployment) -> None:
    """An offer without a=key-mgmt gets 488 with a RFC 3261 §20.43 Warning 399 (PROFILE §8);
    a ticket for bob under a SIP From of carol gets 403 (PROFILE §1)."""
    bare = independent(trio, "bob", key_mgmt=False)
    try:
        with pytest.raises(UEError):
            bare.join()
        assert bare.final is not None
        assert bare.final.status == 488, bare.sip_trace()
        assert re.fullmatch(r'399 \S+ "[^"]+"', bare.final.get("warning") or ""), bare.sip_trace()
    finally:
        bare.close()
    masked = independent(trio, "bob", sip_from=CAROL)
    try:
        with pytest.raises(UEError):
            masked.join()
        assert masked.final is not None
        assert masked.final.status == 403, masked.sip_trace()
    finally:
        masked.close()


VARIANTS = ("compact", "folded", "session-key-mgmt", "mixed-case-types", "lf-sdp")


def test_focus_accepts_legal_variants_of_the_offer(lobby: Deployment) -> None:
    """Legal spellings an outside UE may use (compact or folded SIP headers, session-level
    a=key-mgmt, Message/CPIM in mixed case, LF-only SDP) still join the room and chat."""
    alice = lobby.ue("alice")
    alice.wait_for(in_room)
    for variant in VARIANTS:
        indy = independent(lobby, "bob", variants=frozenset({variant}))
        try:
            chat_both_ways(indy, alice, tag=f" ({variant})")
        except AssertionError as e:
            raise AssertionError(f"variant {variant!r}: {e}") from e


FORBIDDEN: list[tuple[str, dict[str, Any], str | int]] = [
    ("wrong PSK", {"psk_xor": True}, "tls-fails"),  # the PSK authenticates (PROFILE §7, §9)
    ("TLS 1.3", {"tls13": True}, "tls-fails"),  # TLS 1.2 only (PROFILE §9)
    # never NULL ciphers (PROFILE §9); SECLEVEL=0 so that our side does offer it
    ("NULL cipher", {"ciphers": "PSK-NULL-SHA256:@SECLEVEL=0"}, "tls-fails"),
    ("wrong To-Path", {"bind_to_path": "msrps://127.0.0.1:9/nosuchsession;tcp"}, 481),
]


def test_msrp_leg_refuses_what_the_profile_forbids(lobby: Deployment) -> None:
    """A leg refuses a wrong PSK, TLS 1.3 and a NULL cipher with a TLS alert, and a binding
    SEND to a session that is not its own with 481 (RFC 4975 §7.3); the dialog then ends,
    by the focus's BYE or by ours."""
    for name, knob, expect in FORBIDDEN:
        indy = independent(lobby, "bob")
        try:
            ev = indy.join(expect_bound=False, **knob)
            if expect == "tls-fails":
                assert ev["event"] == "error" and "ALERT" in ev["msg"], ev  # the focus refused
                # The focus may end the dialog itself once the leg failed (RFC 3261 §15).
                if indy.hung_up.wait(3):
                    continue
            else:
                assert ev["event"] == "response" and ev["status"] == expect, ev
            assert indy.leave().status == 200
        except Exception as e:
            raise AssertionError(f"{name}: {e}\n--- SIP trace ---\n{indy.sip_trace()}") from e
        finally:
            indy.close()


def test_bound_leg_takes_no_second_connection(lobby: Deployment) -> None:
    """Once bound, a leg accepts no second connection, even with the right PSK (PROFILE §9;
    RFC 4975 §5.4 would answer 506), and the first connection keeps working."""
    alice = lobby.ue("alice")
    alice.wait_for(in_room)
    indy = independent(lobby, "bob")
    try:
        indy.join()
        probe = indy.probe_second_connection()
        assert probe["outcome"] != "status" or probe["status"] == 506, probe
        assert indy.say("first connection still works")["status"] == 200
        assert wait_message(alice, "first connection still works")["from"] == BOB
        assert indy.leave().status == 200
    finally:
        indy.close()


def test_switch_follows_rfc_4975_report_rules(lobby: Deployment) -> None:
    """Success-Report: yes gets a success REPORT (Status 000 200, our Message-ID, the whole
    byte range) and Failure-Report: no gets no response, while both messages are relayed
    (RFC 4975 §7.1.3, §7.2; RFC 7701 §6.3)."""
    from tests.interop.independent_ue import cpim_wrap

    alice = lobby.ue("alice")
    alice.wait_for(in_room)
    indy = independent(lobby, "bob")
    try:
        indy.join()
        body = cpim_wrap(BOB, ROOM, "report me", time.time())
        resp = indy.send_raw(body, "message/cpim", extra=[("Success-Report", "yes")])
        assert resp["status"] == 200
        report = indy.wait_event(lambda e: e["event"] == "report")
        headers = {k.lower(): v for k, v in report["headers"]}
        assert headers["message-id"] == resp["message_id"], report
        assert headers["status"].startswith("000 200"), report
        assert headers["byte-range"] == f"1-{len(body)}/{len(body)}", report
        assert headers["to-path"] == indy.path, report
        assert "success-report" not in headers and "failure-report" not in headers, report
        assert wait_message(alice, "report me")["from"] == BOB

        body = cpim_wrap(BOB, ROOM, "do not answer", time.time())
        sent = indy.send_raw(
            body, "message/cpim", extra=[("Failure-Report", "no")], expect_response=False
        )
        assert wait_message(alice, "do not answer")["from"] == BOB
        assert indy.say("answered")["status"] == 200  # responses come in order on one leg
        assert not [
            e for e in indy.events if e["event"] == "response" and e.get("tid") == sent["tid"]
        ]
        assert indy.leave().status == 200
    except Exception as e:
        raise AssertionError(f"{e}\n--- SIP trace ---\n{indy.sip_trace()}") from e
    finally:
        indy.close()


def test_independent_ue_with_the_256_bit_suite(lobby: Deployment) -> None:
    """A UE that asks for its ticket and keys its leg with the 256-bit suite (PRF-HMAC-SHA-256,
    AES-CM-256, HMAC-SHA-256-256, 32-byte TLS PSK) joins and chats (PROFILE §2, §7)."""
    alice = lobby.ue("alice")
    alice.wait_for(in_room)
    indy = independent(lobby, "bob", prf=1)
    chat_both_ways(indy, alice)


def test_focus_dials_out_to_an_independent_ue(tmp_path: Path) -> None:
    """The focus invites a member of the room's dial_out list: the independent UE, as MIKEY
    responder, resolves the focus's ticket at `twistd kms`, answers a=setup:active with its
    TRANSFER_RESP, connects the leg and chats with a dialled-in focus-ue (PROFILE §5–§8)."""
    d = Deployment(tmp_path, ("alice", "bob"))
    indy = independent(d, "bob")
    host, port = indy.listen()
    policy = tmp_path / "dialout.toml"
    policy.write_text(
        f'[[room]]\nuri = "{ROOM}"\nallow = ["{ALICE}"]\n\n[[room.dial_out]]\nuri = "{BOB}"\n'
    )
    text = (tmp_path / "focus.toml").read_text()
    text = re.sub(r'(?m)^file = ".*"$', f'file = "{policy}"', text)
    # Our UE is the focus's outbound proxy, so the INVITE for sip:bob@example.net reaches it.
    text = text.replace("[sip]\n", f'[sip]\noutbound_proxy = "sip:{host}:{port};lr"\n', 1)
    (tmp_path / "focus.toml").write_text(text)
    try:
        d.start_kms()
        d.start_focus()
        bound = indy.answer_dial_out(timeout=10)
        assert bound["status"] == 200
        alice = d.ue("alice")
        alice.wait_for(in_room)
        assert indy.say("answered the focus")["status"] == 200
        assert wait_message(alice, "answered the focus")["from"] == BOB
        alice.send_line("welcome, dialled member")
        ev = indy.wait_message("welcome, dialled member")
        assert ev["from"] == [f"<{ALICE}>"]
        assert indy.leave().status == 200
    except Exception as e:
        raise AssertionError(f"{e}\n--- SIP trace ---\n{indy.sip_trace()}") from e
    finally:
        indy.close()
        d.stop()
