"""The focus started from a focus.toml next to the reference KMS (plain HTTP on loopback),
the way `make run` starts them: a caller gets a ticket from the KMS, dials in, and the
focus resolves it at the same KMS with its own account, then answers 200."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

import kms
from focus.config import load_config
from focus.keying import complete_initiator, start_initiator
from focus.sdp import SessionDescription, effective_key_mgmt
from focus.service import FocusService
from focus.sip.message import Response as SipResponse
from focus.sip.message import parse_message
from kms_client import KmsClient
from policies import example_path

from ._harness import invite, mikey_attr, offer_sdp
from .test_loopback import LIMIT, Phone, connect_tls

pytestmark = pytest.mark.interop

ALICE_KEY = "000102030405060708090a0b0c0d0e0f"
FOCUS_KEY = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
ROOM = "sip:lobby@conf.example.net"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_configs(tmp: Path) -> tuple[Path, Path, int]:
    kms_port = free_port()
    kms_toml = tmp / "kms.toml"
    kms_toml.write_text(
        f"""
identity = "sip:kms@example.net"
listen = "tcp:{kms_port}:interface=127.0.0.1"
allow_plain_http = true

[[account]]
identity = "sip:alice@example.net"
key = "{ALICE_KEY}"

[[account]]
identity = "sip:focus@conf.example.net"
key = "{FOCUS_KEY}"
may_act_as = ["sip:focus@conf.example.net", "sip:*@conf.example.net"]
"""
    )
    base = free_port() // 10 * 10
    focus_toml = tmp / "focus.toml"
    focus_toml.write_text(
        f"""
[sip]
domain = "conf.example.net"
[[sip.listen]]
transport = "udp"
port = {free_port(socket.SOCK_DGRAM)}

[msrp]
port_min = {base}
port_max = {base + 9}
leg_timeout = 5.0

[kms]
base_url = "http://127.0.0.1:{kms_port}/mikey-ticket/v1"
allow_plain_http = true
identity = "sip:kms@example.net"
account = "sip:focus@conf.example.net"
key = "{FOCUS_KEY}"
timeout = 3.0
retries = 0

[policy]
file = "{example_path("demo.toml")}"

[log]
format = "json"
file = "focus.log"
"""
    )
    return kms_toml, focus_toml, kms_port


@pytest_twisted.inlineCallbacks
def test_dial_in_keyed_by_the_reference_kms(tmp_path: Path) -> Any:
    """Ticket from the KMS as alice, INVITE to the lobby, the focus resolves at the KMS
    as the room, 200 with a TRANSFER_RESP alice verifies, TLS-PSK leg comes up; the
    focus's log file shows ready and join lines."""
    from twisted.internet import reactor

    kms_toml, focus_toml, kms_port = write_configs(tmp_path)
    kms_service = kms.make_service(kms.load_config(kms_toml), reactor=reactor)
    kms_service.startService()
    config = load_config(focus_toml)
    focus = FocusService(config, reactor=reactor)
    focus.startService()
    udp = None
    try:
        yield focus.ready
        alice_kms = _alice_client(reactor, kms_port)
        grant = yield alice_kms.request_ticket(initiator="sip:alice@example.net", responders=[ROOM])
        offer = start_initiator(
            grant,
            initiator="sip:alice@example.net",
            responder=ROOM,
            now=reactor.seconds(),
            csb_id=int.from_bytes(os.urandom(4), "big"),
            rand=os.urandom(16),
        )
        phone = Phone(focus.listening[0].port)
        udp = reactor.listenUDP(0, phone, interface="127.0.0.1")
        local = udp.getHost().port
        data = invite(offer_sdp(mikey_attr(offer.transfer_init)), call_id="kms1")
        phone.send(data.replace(b"127.0.0.2:5062", f"127.0.0.1:{local}".encode()))
        raw = yield phone.wait(
            lambda d: d.startswith(b"SIP/2.0 ") and not d.startswith(b"SIP/2.0 1")
        )
        response = parse_message(raw)
        assert isinstance(response, SipResponse)
        assert response.status == 200, raw[:400]
        answer = SessionDescription.parse(response.body)
        keys, _ = effective_key_mgmt(answer.media[0], answer)
        key = complete_initiator(offer, keys[0].data, now=reactor.seconds())
        client = connect_tls(answer.media[0].port, key.psk)
        yield client.keyed.addTimeout(LIMIT, reactor)
    finally:
        if udp is not None:
            yield udp.stopListening()
        yield focus.stopService()
        yield defer.maybeDeferred(kms_service.stopService)
    log = (tmp_path / "focus.log").read_text()
    assert '"event": "ready"' in log and '"event": "join"' in log
    assert FOCUS_KEY not in log and key.psk.hex() not in log


def _alice_client(reactor: Any, kms_port: int) -> KmsClient:
    from kms_client import https_agent

    return KmsClient(
        base_url=f"http://127.0.0.1:{kms_port}/mikey-ticket/v1",
        kms_identity="sip:kms@example.net",
        psk=bytes.fromhex(ALICE_KEY),
        http=https_agent(reactor),
        reactor=reactor,
        allow_plain_http=True,
    )
