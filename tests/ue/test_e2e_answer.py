"""`focus-ue answer` against a real `twistd focus` dialling out, keyed by `twistd kms`.

The focus's room lists alice in ``dial_out``; its outbound proxy is alice's UE, so the
dial-out INVITE for ``sip:alice@example.net`` reaches it. Every process is started here,
on loopback, and every wait is bounded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._procs import (
    BIN,
    DOMAIN,
    FOCUS_ACCOUNT,
    KMS_IDENTITY,
    ROOM,
    Proc,
    free_port,
    free_port_pair,
    free_range,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ALICE = "sip:alice@example.net"


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop()


def test_focus_dials_out_to_an_answering_ue(tmp_path: Path, procs: list[Proc]) -> None:
    """The UE answers the focus's dial-out as MIKEY responder, is in the room, gets its
    nickname, and leaves with BYE when its stdin ends."""
    keys = {"alice": os.urandom(16).hex(), "focus": os.urandom(16).hex()}
    kms_port, ue_port, sip_port = free_port(), free_port_pair(), free_port_pair()
    low, high = free_range(10)
    (tmp_path / "kms.toml").write_text(
        f'identity = "{KMS_IDENTITY}"\n'
        f'listen = "ssl:{kms_port}:interface=127.0.0.1"\n\n'
        f'[[account]]\nidentity = "{ALICE}"\nkey = "{keys["alice"]}"\n\n'
        f'[[account]]\nidentity = "{FOCUS_ACCOUNT}"\nkey = "{keys["focus"]}"\n'
        f'may_act_as = ["sip:*@{DOMAIN}"]\n'
    )
    (tmp_path / "policy.toml").write_text(
        f'[[room]]\nuri = "{ROOM}"\nallow = ["{ALICE}"]\n\n'
        f'[[room.dial_out]]\nuri = "{ALICE}"\nattempts = 1\nanswer_timeout = 20.0\n'
    )
    (tmp_path / "focus.toml").write_text(
        f"""
[sip]
domain = "{DOMAIN}"
outbound_proxy = "sip:127.0.0.1:{ue_port};lr"
[[sip.listen]]
transport = "udp"
host = "127.0.0.1"
port = {sip_port}
[[sip.listen]]
transport = "tcp"
host = "127.0.0.1"
port = {sip_port}

[msrp]
host = "127.0.0.1"
port_min = {low}
port_max = {high}

[kms]
base_url = "https://127.0.0.1:{kms_port}/mikey-ticket/v1"
identity = "{KMS_IDENTITY}"
account = "{FOCUS_ACCOUNT}"
key = "{keys["focus"]}"
ca_file = "kms.ca.pem"
timeout = 2.0
retries = 0

[policy]
file = "{tmp_path / "policy.toml"}"

[log]
format = "json"
"""
    )

    def twistd(name: str) -> Proc:
        argv = [str(BIN / "twistd"), "-n", "--pidfile=", name, "--config", f"{name}.toml"]
        proc = Proc(name, argv, tmp_path)
        procs.append(proc)
        return proc

    kms = twistd("kms")
    kms.wait_for(lambda line: "listening on https://" in line, key="out")
    ue = Proc(
        "focus-ue answer",
        [
            str(BIN / "focus-ue"),
            "answer",
            "--listen",
            f"127.0.0.1:{ue_port}",
            "--identity",
            ALICE,
            "--kms-url",
            f"https://127.0.0.1:{kms_port}/mikey-ticket/v1",
            "--kms-identity",
            KMS_IDENTITY,
            "--kms-ca",
            str(tmp_path / "kms.ca.pem"),
            "--kms-key",
            keys["alice"],
            "--nickname",
            "Al",
            "--wait",
            "40",
        ],
        tmp_path,
    )
    procs.append(ue)
    ue.wait_for(lambda line: "waiting for an INVITE" in line)
    focus = twistd("focus")
    focus.wait_for(lambda line: '"ready"' in line or " ready " in line, key="out")
    ue.wait_for(lambda line: f"in the room {ROOM}" in line, timeout=30)
    ue.wait_for(lambda line: "nickname 'Al' accepted" in line)
    ue.close_stdin()
    assert ue.wait_exit() == 0, ue.text()
    assert any("BYE answered: 200" in line for line in ue.lines["err"]), ue.text()
