"""Frames written by the connection core, as Wireshark's MSRP dissector reads them."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from focus.msrp import (
    FrameParser,
    MsrpConfig,
    MsrpConnection,
    MsrpUri,
    Request,
    Response,
    SendBytes,
    SessionParams,
    SessionRegistry,
)

pytestmark = pytest.mark.interop

ALICE = MsrpUri.parse("msrp://alice.example.com:7777/as3ss10n;tcp")
BOB = MsrpUri.parse("msrp://bob.example.com:2855/bs3ss10n;tcp")


def _exchange() -> list[bytes]:
    """One conversation: binding SEND, a two-chunk message with success report, answers."""
    counter = itertools.count(1)

    def random(n: int) -> bytes:
        return next(counter).to_bytes(n, "big")

    config = MsrpConfig(chunk_size=4096)
    alice_registry, bob_registry = SessionRegistry(), SessionRegistry()
    alice_params = SessionParams(local_uri=ALICE, peer_path=(BOB,))
    alice_registry.add(alice_params)
    bob_registry.add(SessionParams(local_uri=BOB, peer_path=(ALICE,)))
    alice = MsrpConnection(registry=alice_registry, random=random, config=config)
    bob = MsrpConnection(registry=bob_registry, random=random, config=config, auto_accept=True)
    wire: list[bytes] = []
    pending = [c.data for c in alice.open_session(alice_params, 0.0) if isinstance(c, SendBytes)]
    _, out = alice.send_message(ALICE, "text/plain", b"x" * 5000, 0.0, success_report=True)
    pending += [c.data for c in out if isinstance(c, SendBytes)]
    for data in pending:
        wire.append(data)
        for command in bob.receive_data(data, 1.0):
            if isinstance(command, SendBytes):
                wire.append(command.data)
                alice.receive_data(command.data, 1.0)
    return wire


def _pcap(frames: list[bytes], directory: Path) -> Path:
    """Write each frame as one TCP segment (text2pcap, Wireshark's own tool)."""
    dump = directory / "frames.txt"
    lines = []
    for frame in frames:
        for offset in range(0, len(frame), 16):
            chunk = frame[offset : offset + 16]
            lines.append(f"{offset:06x} " + " ".join(f"{b:02x}" for b in chunk))
    dump.write_text("\n".join(lines) + "\n")
    pcap = directory / "frames.pcap"
    text2pcap = shutil.which("text2pcap")
    assert text2pcap is not None, "text2pcap (Wireshark) is required"
    subprocess.run(
        [text2pcap, "-q", "-T", "40000,2855", str(dump), str(pcap)], check=True, timeout=30
    )
    return pcap


def test_tshark_decodes_our_frames(tmp_path: Path) -> None:
    """tshark sees the same transaction ids, methods, codes, flags and Byte-Ranges we wrote."""
    tshark = shutil.which("tshark")
    assert tshark is not None, "tshark is required"
    frames = _exchange()
    pcap = _pcap(frames, tmp_path)
    fields = [
        "msrp.transaction.id",
        "msrp.method",
        "msrp.status.code",
        "msrp.cnt.flg",
        "msrp.byte.range",
        "msrp.messageid",
    ]
    command = [tshark, "-r", str(pcap), "-d", "tcp.port==2855,msrp", "-T", "fields"]
    command += ["-E", "occurrence=f"]  # the id appears in the start line and end-line
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, check=True, timeout=60, capture_output=True, text=True)
    seen = [line.split("\t") for line in result.stdout.splitlines() if line.strip()]
    expected = []
    for data in frames:
        (frame,) = FrameParser().feed(data)
        if isinstance(frame, Request):
            expected.append(
                [
                    frame.transaction_id,
                    frame.method,
                    "",
                    frame.continuation.value,
                    "" if frame.byte_range is None else str(frame.byte_range),
                    frame.message_id or "",
                ]
            )
        else:
            assert isinstance(frame, Response)
            expected.append([frame.transaction_id, "", str(frame.code), "$", "", ""])
    assert [row[:6] + [""] * (6 - len(row)) for row in seen] == expected
    methods = [row[1] for row in expected]
    assert methods.count("SEND") == 3 and methods.count("REPORT") == 1
