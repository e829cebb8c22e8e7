"""Our encodings read by Wireshark's independent MIKEY dissector (tshark 4.0).

tshark dissects RFC 3830 payloads and IDR but stops at RANDR/TP/TICKET and at
HMAC-SHA-256 (DIGEST §9.2), so the checks use messages made only of what it knows:
an RFC 3830 PSK message built with our codec, RESOLVE_RESP and Error from the golden
fixtures (128-bit suite).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

from mikey import payloads as p

from .golden import FIXTURE

pytestmark = pytest.mark.interop

FIELDS = [
    "mikey.type",
    "mikey.csb_id",
    "mikey.srtp_id.ssrc",
    "mikey.rand.data",
    "mikey.id.role",
    "mikey.id.data",
    "mikey.sp.param.type",
    "mikey.kemac.encr_alg",
    "mikey.key.type",
    "mikey.key.data",
    "mikey.key.salt",
    "mikey.key.kv.spi",
    "mikey.kemac.mac",
    "mikey.v.auth_alg",
    "mikey.v.ver_data",
    "mikey.err.no",
    "mikey.ext.type",
    "mikey.t.ntp",
]

BYTE_FIELDS = {
    "mikey.rand.data",
    "mikey.key.data",
    "mikey.key.salt",
    "mikey.key.kv.spi",
    "mikey.kemac.mac",
    "mikey.v.ver_data",
}


def tshark_fields(message: bytes, tmp_path: pathlib.Path) -> dict[str, str]:
    """Dissect ``message`` as MIKEY over UDP port 2269 and return the chosen fields."""
    assert shutil.which("tshark") and shutil.which("text2pcap"), "installed by system-deps"
    dump = tmp_path / "m.txt"
    lines = [
        f"{i:06x} " + " ".join(f"{b:02x}" for b in message[i : i + 16])
        for i in range(0, len(message), 16)
    ]
    dump.write_text("\n".join(lines) + "\n")
    pcap = tmp_path / "m.pcap"
    subprocess.run(
        ["text2pcap", "-q", "-u", "40000,2269", str(dump), str(pcap)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    args = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60)
    values = out.stdout.strip().split("|")
    # Byte fields may print as aa:bb:cc depending on the tshark version.
    return {
        f: v.replace(":", "") if f in BYTE_FIELDS else v
        for f, v in zip(FIELDS, values, strict=True)
    }


def test_rfc3830_psk_message_matches_wireshark(tmp_path: pathlib.Path) -> None:
    """An RFC 3830 I_MESSAGE with every common payload dissects to the values we encoded."""
    key = p.KeyData(
        p.KeyType.TEK_SALT, bytes(range(16)), p.KvSpi(b"\x00\x00\x00\x2f"), bytes(range(100, 114))
    )
    msg = p.Message(
        p.Header(
            0, 0xA1B2C3D4, p.SrtpIdMap((p.SrtpCs(0, 0x1234, 0), p.SrtpCs(0, 0x5678, 0))), 0, True
        ),
        (
            p.Timestamp(0, 0xEB5BD8D0_00000000),
            p.Rand(bytes(range(16))),
            p.Id(1, b"sip:alice@example.net"),
            p.SecurityPolicy(0, 0, (p.PolicyParam(0, b"\x01"), p.PolicyParam(2, b"\x01"))),
            p.GeneralExtension(1, b"mikey"),
            p.Kemac(0, p.encode_key_data([key]), 1, bytes(range(20))),
        ),
    )
    f = tshark_fields(msg.encode(), tmp_path)
    assert f["mikey.type"] == "0" and f["mikey.csb_id"] == "0xa1b2c3d4"
    assert f["mikey.srtp_id.ssrc"] == "0x00001234,0x00005678"
    assert f["mikey.rand.data"] == bytes(range(16)).hex()
    assert f["mikey.id.data"] == "sip:alice@example.net"
    assert f["mikey.sp.param.type"] == "0,2"
    assert f["mikey.ext.type"] == "1"
    assert f["mikey.key.type"] == "3" and f["mikey.key.data"] == bytes(range(16)).hex()
    assert f["mikey.key.salt"] == bytes(range(100, 114)).hex()
    assert f["mikey.key.kv.spi"] == "0000002f"
    assert f["mikey.kemac.mac"] == bytes(range(20)).hex()


def test_golden_resolve_resp_and_error_match_wireshark(tmp_path: pathlib.Path) -> None:
    """RESOLVE_RESP (HDR, T, IDRkms, KEMAC, IDRr, V) and Error dissect as we encoded them."""
    case = json.loads(FIXTURE.read_text())["cases"][0]
    assert case["inputs"]["suite"] == "128"
    data = bytes.fromhex(case["expected"]["RESOLVE_RESP"])
    f = tshark_fields(data, tmp_path)
    assert f["mikey.type"] == "18" and f["mikey.csb_id"] == "0x99aabbcc"
    assert f["mikey.id.role"] == "3,2"
    assert f["mikey.id.data"] == "sip:kms@kms.example.net,sip:lobby@conf.example.net"
    assert f["mikey.kemac.encr_alg"] == "1"
    assert f["mikey.v.auth_alg"] == "1" and f["mikey.v.ver_data"] == data[-20:].hex()
    assert f["mikey.t.ntp"].startswith("Jan  1, 2026 00:00:03.125")
    err = tshark_fields(bytes.fromhex(case["expected"]["ERROR"]), tmp_path)
    assert (err["mikey.type"], err["mikey.err.no"]) == ("6", "14")
    assert err["mikey.t.ntp"].startswith("Jan  1, 2026 00:00:05.000")
