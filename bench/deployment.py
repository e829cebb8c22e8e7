"""A reference ``twistd kms`` and a ``twistd focus`` on loopback, configured for load.

:class:`Deployment` writes a KMS configuration with ``accounts`` participant accounts
(``sip:u<i>@example.net``, keys derived from the identity, see :func:`account_key`) and
the focus's own account, a policy with one room (``sip:bench@conf.example.net``) open to
``sip:*@example.net`` with limits raised for benchmarking (participants, rate limit,
message size), and a focus configuration with a wide leg port range.  Both run as real
``twistd -n`` processes; the focus is ready when its event log says ``ready``.  Every
process is stopped on exit.  The KMS speaks plain HTTP on loopback, the way
``make run`` and the focus's own loopback tests run it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pathlib
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from bench._procs import ROOT, stop

ROOM = "sip:bench@conf.example.net"
KMS_IDENTITY = "sip:kms@example.net"
FOCUS_ACCOUNT = "sip:focus@conf.example.net"
FOCUS_KEY = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
TWISTD = str(pathlib.Path(sys.executable).with_name("twistd"))


def identity(number: int) -> str:
    return f"sip:u{number}@example.net"


def account_key(who: str) -> str:
    """The bench account key of ``who`` (hex, 16 octets): derived, so every process can
    compute it without passing keys around.  Test keys, not anyone's secret."""
    return hashlib.sha256(b"msrp-focus bench " + who.encode()).hexdigest()[:32]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_listen_port() -> int:
    """A port free for both TCP and UDP, below the ephemeral range (32768-60999 here), so
    that no outgoing connection of another process takes it between now and the bind."""
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(27000, 32000)
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u,
            ):
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port in 27000-31999")


def _wait_tcp(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Deployment:
    """See the module docstring; use as a context manager."""

    def __init__(
        self,
        *,
        accounts: int,
        port_range: tuple[int, int] = (20000, 24999),
        max_queued_bytes: int = 4 * 1024 * 1024,
        kms_timeout: float = 3.0,
        kms_retries: int = 0,
        leg_timeout: float = 10.0,
        focus_kms_url: str | None = None,
        sip_idle_timeout: float = 300.0,
        extra_focus: str = "",
        nodelay_patch: bool = False,
    ) -> None:
        self.accounts = accounts
        self.port_range = port_range
        self.max_queued_bytes = max_queued_bytes
        self.kms_timeout = kms_timeout
        self.kms_retries = kms_retries
        self.leg_timeout = leg_timeout
        self.focus_kms_url = focus_kms_url
        self.sip_idle_timeout = sip_idle_timeout
        self.nodelay_patch = nodelay_patch
        self.extra_focus = extra_focus
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="focus-bench-"))
        self.kms_port = free_listen_port()
        self.sip_port = free_listen_port()
        self.kms: subprocess.Popen[bytes] | None = None
        self.focus: subprocess.Popen[bytes] | None = None

    @property
    def kms_url(self) -> str:
        return f"http://127.0.0.1:{self.kms_port}/mikey-ticket/v1"

    def _write(self) -> None:
        lines = [
            f'identity = "{KMS_IDENTITY}"',
            f'listen = "tcp:{self.kms_port}:interface=127.0.0.1"',
            "allow_plain_http = true",
            "",
            "[[account]]",
            f'identity = "{FOCUS_ACCOUNT}"',
            f'key = "{FOCUS_KEY}"',
            f'may_act_as = ["{FOCUS_ACCOUNT}", "sip:*@conf.example.net"]',
        ]
        for n in range(self.accounts):
            who = identity(n)
            lines += ["", "[[account]]", f'identity = "{who}"', f'key = "{account_key(who)}"']
        (self.dir / "kms.toml").write_text("\n".join(lines) + "\n")
        (self.dir / "policy.toml").write_text(
            f"""
[defaults]
max_participants = 100000
require_cpim = true
accept_wrapped_types = ["*"]
max_message_size = 1048576
leg_bind_timeout = 10.0
nicknames = true
private_messages = true

[defaults.rate_limit]
messages_per_second = 1000000.0
burst = 1000000

[[room]]
uri = "{ROOM}"
allow = ["sip:*@example.net"]
"""
        )
        low, high = self.port_range
        (self.dir / "focus.toml").write_text(
            f"""
[sip]
domain = "conf.example.net"
idle_timeout = {self.sip_idle_timeout}
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
port_min = {low}
port_max = {high}
leg_timeout = {self.leg_timeout}
max_queued_bytes = {self.max_queued_bytes}
max_message_size = 1048576

[kms]
base_url = "{self.focus_kms_url or self.kms_url}"
allow_plain_http = true
identity = "{KMS_IDENTITY}"
account = "{FOCUS_ACCOUNT}"
key = "{FOCUS_KEY}"
timeout = {self.kms_timeout}
retries = {self.kms_retries}

[policy]
file = "policy.toml"

[log]
format = "json"
file = "focus.log"
{self.extra_focus}
"""
        )

    def restart_focus(self, **settings: Any) -> None:
        """Stop the focus, change some of the constructor's settings, start it again."""
        self.stop_focus()
        for name, value in settings.items():
            if not hasattr(self, name):
                raise TypeError(f"unknown setting {name}")
            setattr(self, name, value)
        self._write()
        self.start_focus()

    def start_kms(self) -> None:
        self.kms = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "--logfile=kms.log", "kms", "--config", "kms.toml"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        _wait_tcp(self.kms_port, 30)

    def start_focus(self) -> None:
        """Start ``twistd focus``; if its SIP port was taken meanwhile, pick another."""
        for attempt in range(3):
            try:
                self._start_focus_once()
                return
            except RuntimeError as exc:
                if "listen_failed" not in str(exc) or attempt == 2:
                    raise
                self.stop_focus()
                self.sip_port = free_listen_port()
                self._write()

    def _start_focus_once(self) -> None:
        log = self.dir / "focus.log"
        log.write_text("")
        self.focus = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "--logfile=twistd.log", "focus", "--config", "focus.toml"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if '"ready"' in text:
                return
            if '"listen_failed"' in text:
                raise RuntimeError(f"twistd focus: listen_failed: {text[-500:]}")
            if self.focus.poll() is not None:
                raise RuntimeError(
                    f"twistd focus exited: {(self.dir / 'twistd.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        tail = (self.dir / "twistd.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"twistd focus not ready within 30 s; twistd.log ends: {tail}")

    def stop_focus(self) -> None:
        if self.focus is not None:
            stop(self.focus)  # type: ignore[arg-type]
            self.focus = None

    def events(self) -> list[dict[str, Any]]:
        """The focus's structured log, one dict per line."""
        out = []
        for line in (self.dir / "focus.log").read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def __enter__(self) -> Deployment:
        self._write()
        try:
            self.start_kms()
            self.start_focus()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_focus()
        if self.kms is not None:
            stop(self.kms)  # type: ignore[arg-type]
            self.kms = None


@contextlib.contextmanager
def deployment(**kwargs: Any) -> Iterator[Deployment]:
    with Deployment(**kwargs) as d:
        yield d
