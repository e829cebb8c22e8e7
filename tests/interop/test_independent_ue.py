"""An independent UE (tests/interop/independent_ue.py, written from the RFCs + PROFILE.md)
joins a room of the real `twistd focus` and chats with a real `focus-ue`, keyed first by the
real `twistd kms`, then by the independent mini KMS of independent_mikey (PROFILE §3–§9).

The independent UE's signalling half runs in this process; its TLS-PSK + MSRP half runs as a
Python 3.13 child (3.11's ssl has no PSK callbacks; see the independent_ue docstring)."""

from __future__ import annotations

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
from tests.interop.independent_ue import IndependentUE, KmsAccount

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


def chat_both_ways(indy: IndependentUE, alice: Proc) -> None:
    """The independent UE and focus-ue exchange one message each way through the focus."""
    try:
        bound = indy.join()
        assert bound["status"] == 200
        assert indy.answer is not None
        assert indy.answer.media_level_key_mgmt  # PROFILE §8: key-mgmt under the m-line
        tls = indy.wait_event(lambda e: e["event"] == "tls")
        assert tls["version"] == "TLSv1.2"

        assert indy.say("hello from the independent UE")["status"] == 200
        got = wait_message(alice, "hello from the independent UE")
        assert got["from"] == BOB
        assert got["to"] == ROOM
        assert got["private"] is False

        alice.send_line("hello, independent UE")
        ev = indy.wait_message("hello, independent UE")
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
