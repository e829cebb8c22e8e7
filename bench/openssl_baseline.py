"""The ceiling of one TLS-PSK stream on this machine: ``openssl s_client`` piping bytes to
``openssl s_server`` over loopback, same protocol version and cipher suite as the legs.

``openssl s_time`` cannot do PSK, so the client reads ``size`` octets from a pipe and the
server (``-naccept 1 -quiet``) writes what it decrypts to a pipe we count; the time runs
from the client's start until the server has delivered every octet.  CPU time of both
processes comes from ``os.wait4``.  Returns MB/s and, for comparison with the relays, the
same throughput expressed as 100-octet and 64 KiB frames per second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Any

OPENSSL = "/usr/bin/openssl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # Not Popen.kill(): it polls first, which would reap the child and lose its rusage.
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)


def _wait_rusage(proc: subprocess.Popen[bytes], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = 0
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.01)
    _kill(proc)
    _pid, _status, usage = os.wait4(proc.pid, 0)
    proc.returncode = -9
    return usage.ru_utime + usage.ru_stime


def wait_listening(port: int, timeout: float) -> None:
    """Wait until something listens on 127.0.0.1:port, without connecting to it (a probe
    connection would use up s_server's only accept)."""
    needle = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in open("/proc/net/tcp").read().splitlines()[1:]:  # noqa: SIM115
            fields = line.split()
            if fields[1] == needle and fields[3] == "0A":
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def measure(
    psk_hex: str, cipher: str, size: int = 200_000_000, timeout: float = 60.0
) -> dict[str, Any]:
    """One s_client -> s_server transfer of ``size`` octets."""
    port = _free_port()
    common = ["-tls1_2", "-psk", psk_hex, "-cipher", cipher]
    # s_server reads commands from stdin and stops at EOF: keep its stdin open.
    server = subprocess.Popen(
        [
            OPENSSL,
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-nocert",
            "-naccept",
            "1",
            "-quiet",
            *common,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    received = 0
    done = threading.Event()

    def count() -> None:
        nonlocal received
        assert server.stdout is not None
        while chunk := server.stdout.read1(1 << 20):
            received += len(chunk)
            if received >= size:
                done.set()
        done.set()

    client = None
    client_cpu = server_cpu = 0.0
    try:
        threading.Thread(target=count, daemon=True).start()
        wait_listening(port, 5.0)
        block = b"\0" * (1 << 20)
        started = time.monotonic()
        client = subprocess.Popen(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-quiet", *common],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert client.stdin is not None
        sent = 0
        while sent < size:
            step = min(len(block), size - sent)
            client.stdin.write(block[:step])
            sent += step
        client.stdin.flush()
        done.wait(timeout)
        elapsed = time.monotonic() - started
    finally:
        if client is not None:
            _kill(client)
            client_cpu = _wait_rusage(client, 5)
        _kill(server)
        server_cpu = _wait_rusage(server, 5)
    rate = received / elapsed
    return {
        "cipher": cipher,
        "bytes": received,
        "seconds": round(elapsed, 3),
        "mb_per_s": rate / 1e6,
        "cpu_seconds": round(client_cpu + server_cpu, 3),
        "frames_per_s_100B": rate / 104,
        "frames_per_s_64KiB": rate / (65536 + 4),
    }
