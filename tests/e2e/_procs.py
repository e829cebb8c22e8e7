"""Real processes on loopback for the end-to-end tests: `twistd kms`, `twistd focus`
and `focus-ue`, each started with its own files in a temporary folder and stopped at the
end. Every wait is bounded; a failed wait shows what the process printed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOMAIN = "conf.example.net"
ROOM = f"sip:lobby@{DOMAIN}"
KMS_IDENTITY = "sip:kms@example.net"
FOCUS_ACCOUNT = f"sip:focus@{DOMAIN}"
WAIT = 20.0  # seconds any single expected event may take on a loaded 2-core machine


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port free for both TCP and UDP (SIP listens on both)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free for both TCP and UDP")


def free_range(size: int) -> tuple[int, int]:
    """*size* consecutive TCP ports that are free right now."""
    for _ in range(50):
        base = free_port() // 100 * 100
        if base + size >= 65000 or base < 10000:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base, base + size - 1
    raise RuntimeError("no free port range")


class Proc:
    """A child process whose stdout and stderr lines are collected by threads."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None):
        self.name = name
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._new = threading.Condition()
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._pumps: list[threading.Thread] = []
        for key, stream in (("out", self.popen.stdout), ("err", self.popen.stderr)):
            assert stream is not None
            pump = threading.Thread(target=self._pump, args=(key, stream), daemon=True)
            pump.start()
            self._pumps.append(pump)

    def _pump(self, key: str, stream: IO[bytes]) -> None:
        # The stream may be closed under us by stop() if the process outlived its wait.
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(stream.readline, b""):
                with self._new:
                    self.lines[key].append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self._new.notify_all()
        with self._new:
            self._new.notify_all()

    def text(self) -> str:
        with self._new:
            return "\n".join(self.lines["out"] + ["-- stderr --"] + self.lines["err"])

    def wait_for(
        self, match: Callable[[str], bool], key: str = "err", timeout: float = WAIT
    ) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._new:
            while True:
                lines = self.lines[key]
                for line in lines[seen:]:
                    if match(line):
                        return line
                seen = len(lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: expected line not seen within {timeout:g} s:\n{self.text()}"
                    )
                self._new.wait(min(left, 0.5))

    def send_line(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line.encode() + b"\n")
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.close()

    def wait_exit(self, timeout: float = WAIT) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            msg = f"{self.name} did not exit within {timeout:g} s:\n{self.text()}"
            raise AssertionError(msg) from None

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        for pump in self._pumps:  # the pipes reach EOF once the process is gone
            pump.join(timeout=5)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Deployment:
    """A reference KMS (HTTPS, its own generated CA) and a focus, on loopback."""

    def __init__(
        self, tmp: Path, participants: tuple[str, ...], *, focus_kms_port: int | None = None
    ) -> None:
        self.tmp = tmp
        self.keys = {name: os.urandom(16).hex() for name in (*participants, "focus")}
        self.kms_port = free_port()
        self.sip_port = free_port_pair()
        self.msrp_ports = free_range(20)
        self.procs: list[Proc] = []
        accounts = "".join(
            f'[[account]]\nidentity = "sip:{name}@example.net"\nkey = "{self.keys[name]}"\n\n'
            for name in participants
        )
        (tmp / "kms.toml").write_text(
            f'identity = "{KMS_IDENTITY}"\n'
            f'listen = "ssl:{self.kms_port}:interface=127.0.0.1"\n\n{accounts}'
            f'[[account]]\nidentity = "{FOCUS_ACCOUNT}"\nkey = "{self.keys["focus"]}"\n'
            f'may_act_as = ["sip:*@{DOMAIN}"]\n'
        )
        policy = ROOT / "policies" / "examples" / "demo.toml"
        (tmp / "focus.toml").write_text(
            f"""
[sip]
domain = "{DOMAIN}"
[[sip.listen]]
transport = "udp"
host = "127.0.0.1"
port = {self.sip_port}
[[sip.listen]]
transport = "tcp"
host = "127.0.0.1"
port = {self.sip_port}

[msrp]
host = "127.0.0.1"
port_min = {self.msrp_ports[0]}
port_max = {self.msrp_ports[1]}

[kms]
base_url = "https://127.0.0.1:{focus_kms_port or self.kms_port}/mikey-ticket/v1"
identity = "{KMS_IDENTITY}"
account = "{FOCUS_ACCOUNT}"
key = "{self.keys["focus"]}"
ca_file = "kms.ca.pem"
timeout = 2.0
retries = 0

[policy]
file = "{policy}"

[log]
format = "json"
"""
        )

    @property
    def kms_url(self) -> str:
        return f"https://127.0.0.1:{self.kms_port}/mikey-ticket/v1"

    def _twistd(self, name: str) -> Proc:
        argv = [str(BIN / "twistd"), "-n", "--pidfile=", name, "--config", f"{name}.toml"]
        proc = Proc(name, argv, self.tmp)
        self.procs.append(proc)
        return proc

    def start_kms(self) -> Proc:
        kms = self._twistd("kms")
        kms.wait_for(lambda line: "listening on https://" in line, key="out")
        return kms

    def start_focus(self) -> Proc:
        focus = self._twistd("focus")
        focus.wait_for(lambda line: '"ready"' in line or " ready " in line, key="out")
        return focus

    def ue(self, name: str, *extra: str, linger: float = 30.0) -> Proc:
        argv = [
            str(BIN / "focus-ue"),
            "join",
            ROOM,
            "--identity",
            f"sip:{name}@example.net",
            "--kms-url",
            self.kms_url,
            "--kms-identity",
            KMS_IDENTITY,
            "--kms-key",
            self.keys[name],
            "--kms-ca",
            str(self.tmp / "kms.ca.pem"),
            "--proxy",
            f"127.0.0.1:{self.sip_port}",
            "--linger",
            str(linger),
            *extra,
        ]
        proc = Proc(f"focus-ue {name}", argv, self.tmp)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def messages(proc: Proc) -> Iterator[dict[str, Any]]:
    for line in list(proc.lines["out"]):
        yield json.loads(line)


def wait_message(proc: Proc, body: str) -> dict[str, Any]:
    line = proc.wait_for(lambda line: json.loads(line).get("body") == body, key="out")
    return dict(json.loads(line))


__all__ = ["ROOM", "Deployment", "Proc", "messages", "wait_message"]
