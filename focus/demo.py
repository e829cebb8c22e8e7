"""`make run`: a reference KMS and the conference focus on loopback, in the foreground.

On first start this creates ``run/`` (ignored by git) with:

- a fresh 16-byte KMS key for each demo account (``run/keys/*.key``, mode 0600) — the
  participants ``sip:alice@example.net``, ``sip:bob@example.net``,
  ``sip:carol@example.net`` and the focus itself (``sip:focus@conf.example.net``, which
  may act as every room URI of ``conf.example.net``, PROFILE.md section 6);
- ``run/kms.toml`` (HTTPS on 127.0.0.1; the KMS writes its CA to ``run/kms.ca.pem``);
- ``run/focus.toml`` using the demo policy ``policies/examples/demo.toml`` (room
  ``sip:lobby@conf.example.net``); the focus's structured events go to
  ``run/focus-events.jsonl``.

Keys are generated here, never committed. Then it starts ``twistd -n kms`` and
``twistd -n focus``, waits until both listen, prints the ``focus-ue`` commands that join
the lobby, and stays in the foreground; Ctrl-C stops both cleanly.

Ports can be moved with the environment variables DEMO_KMS_PORT (default 18443),
DEMO_SIP_PORT (5060, UDP and TCP) and DEMO_MSRP_PORTS (default 20000-20099).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "run"
BIN = Path(sys.executable).parent
ROOM = "sip:lobby@conf.example.net"
DOMAIN = "conf.example.net"
FOCUS_ACCOUNT = "sip:focus@conf.example.net"
KMS_IDENTITY = "sip:kms@example.net"
PARTICIPANTS = ("alice", "bob", "carol")
START_TIMEOUT = 30.0  # seconds to wait for each server to listen
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


class DemoError(Exception):
    """Something the person running the demo must fix (busy port, failed start …)."""


def _env_port(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    try:
        port = int(text)
    except ValueError:
        raise DemoError(f"{name}={text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise DemoError(f"{name}={port} is not a port number")
    return port


def _port_range() -> tuple[int, int]:
    text = os.environ.get("DEMO_MSRP_PORTS", "20000-20099")
    try:
        low, high = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise DemoError(f"DEMO_MSRP_PORTS={text!r} must look like 20000-20099") from None
    if not 0 < low <= high < 65536:
        raise DemoError(f"DEMO_MSRP_PORTS={text!r} is not a port range")
    return low, high


def _key_file(name: str) -> Path:
    """The hex key file of one demo account, created with a fresh key on first use."""
    path = RUN / "keys" / f"{name}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
    return path


def _uri(name: str) -> str:
    return f"sip:{name}@example.net"


def write_kms_config(kms_port: int) -> Path:
    accounts = []
    for name in PARTICIPANTS:
        accounts.append(
            "[[account]]\n"
            f'identity = "{_uri(name)}"\n'
            f'key_file = "keys/{name}.key"\n'
            f'may_act_as = ["{_uri(name)}"]\n'
        )
    accounts.append(
        "[[account]]\n"
        f'identity = "{FOCUS_ACCOUNT}"\n'
        'key_file = "keys/focus.key"\n'
        "# The focus resolves tickets as the room URIs it hosts (PROFILE.md section 6).\n"
        f'may_act_as = ["sip:*@{DOMAIN}", "sip:*@adhoc.{DOMAIN}"]\n'
    )
    for name in (*PARTICIPANTS, "focus"):
        _key_file(name)
    text = (
        "# Written by `make run` (focus/demo.py); edit freely, it is rewritten only if missing.\n"
        f'identity = "{KMS_IDENTITY}"\n'
        f'listen = "ssl:{kms_port}:interface=127.0.0.1"\n\n' + "\n".join(accounts)
    )
    path = RUN / "kms.toml"
    path.write_text(text)
    return path


def write_focus_config(kms_port: int, sip_port: int, msrp_ports: tuple[int, int]) -> Path:
    policy = ROOT / "policies" / "examples" / "demo.toml"
    text = f"""\
# Written by `make run` (focus/demo.py). The format is documented in
# focus/focus.example.toml.
[sip]
domain = "{DOMAIN}"
advertised_host = "127.0.0.1"

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
port_min = {msrp_ports[0]}
port_max = {msrp_ports[1]}

[kms]
base_url = "https://127.0.0.1:{kms_port}/mikey-ticket/v1"
identity = "{KMS_IDENTITY}"
account = "{FOCUS_ACCOUNT}"
key_file = "keys/focus.key"
ca_file = "kms.ca.pem"

[policy]
file = "{policy}"

# twistd already prints every event on the terminal; the structured copy (one JSON
# object per line) goes to a file, as an operator would collect it.
[log]
format = "json"
file = "focus-events.jsonl"
"""
    path = RUN / "focus.toml"
    path.write_text(text)
    return path


def _check_free(port: int, kind: int, what: str) -> None:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise DemoError(
                f"{what} port 127.0.0.1:{port} is busy ({e.strerror}); "
                "stop what uses it or choose another with the DEMO_* variables"
            ) from None


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"{what} exited with status {proc.returncode}; see its log above")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f} s")


def _pump(prefix: str, stream: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{prefix} {line.decode('utf-8', 'replace')}")
        sys.stdout.flush()


def _start(name: str, config: Path) -> subprocess.Popen[bytes]:
    cmd = [str(BIN / "twistd"), "-n", "--pidfile=", "--logfile=-", name, "--config", str(config)]
    proc = subprocess.Popen(  # noqa: S603  (our own twistd with our own arguments)
        cmd, cwd=RUN, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    assert proc.stdout is not None
    threading.Thread(target=_pump, args=(f"[{name}]", proc.stdout), daemon=True).start()
    return proc


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def join_commands(kms_port: int, sip_port: int) -> list[str]:
    lines = []
    for name in PARTICIPANTS:
        argv = [
            str(BIN / "focus-ue"),
            "join",
            ROOM,
            "--identity",
            _uri(name),
            "--kms-url",
            f"https://127.0.0.1:{kms_port}/mikey-ticket/v1",
            "--kms-identity",
            KMS_IDENTITY,
            "--kms-key-file",
            str(RUN / "keys" / f"{name}.key"),
            "--kms-ca",
            str(RUN / "kms.ca.pem"),
            "--proxy",
            f"127.0.0.1:{sip_port}",
            "--nickname",
            name,
        ]
        lines.append(shlex.join(argv))
    return lines


def main() -> int:
    try:
        kms_port = _env_port("DEMO_KMS_PORT", 18443)
        sip_port = _env_port("DEMO_SIP_PORT", 5060)
        msrp_ports = _port_range()
        _check_free(kms_port, socket.SOCK_STREAM, "KMS")
        _check_free(sip_port, socket.SOCK_STREAM, "SIP/TCP")
        _check_free(sip_port, socket.SOCK_DGRAM, "SIP/UDP")
        RUN.mkdir(exist_ok=True)
        kms_config = write_kms_config(kms_port)
        focus_config = write_focus_config(kms_port, sip_port, msrp_ports)
    except DemoError as e:
        print(f"make run: {e}", file=sys.stderr)
        return 2
    procs: list[subprocess.Popen[bytes]] = []
    names: dict[int, str] = {}
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        procs.append(_start("kms", kms_config))
        names[procs[-1].pid] = "the KMS"
        _wait_listening(kms_port, procs[-1], "the KMS")
        procs.append(_start("focus", focus_config))
        names[procs[-1].pid] = "the focus"
        _wait_listening(sip_port, procs[-1], "the focus")
        print("\nThe KMS and the focus are running. Join the lobby from three terminals:\n")
        for line in join_commands(kms_port, sip_port):
            print(f"  {line}\n")
        print(
            "Type a line to send it; '/msg sip:bob@example.net hi' is private; "
            "Ctrl-C here stops both servers."
        )
        sys.stdout.flush()
        while not stopping.is_set():
            for proc in procs:
                if proc.poll() is not None:
                    raise DemoError(f"{names[proc.pid]} exited with status {proc.returncode}")
            stopping.wait(0.5)
        return 0
    except DemoError as e:
        print(f"make run: {e}", file=sys.stderr)
        return 1
    finally:
        _stop(procs)


if __name__ == "__main__":
    raise SystemExit(main())
