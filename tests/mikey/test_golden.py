"""Golden fixtures (fixtures/golden.json) tested both ways: inputs -> exact bytes, and
bytes -> decoded values that verify with the fixture's keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

import mikey
from mikey.payloads import DataType, Message

from .golden import FIXTURE, build_case

CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["cases"]
IDS = [c["inputs"]["suite"] for c in CASES]


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_building_from_inputs_gives_the_golden_bytes(case: dict[str, Any]) -> None:
    """Every builder reproduces the stored message byte for byte."""
    assert build_case(case["inputs"]) == case["expected"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_golden_bytes_decode_and_verify(case: dict[str, Any]) -> None:
    """The stored messages decode to the fixture's values and verify with its keys."""
    i, e = case["inputs"], case["expected"]
    suite = mikey.SUITE_128 if i["suite"] == "128" else mikey.SUITE_256
    ri, rr = _b(e["REQUEST_INIT_PSK"]), _b(e["REQUEST_RESP"])
    ti, tr = _b(e["TRANSFER_INIT"]), _b(e["TRANSFER_RESP"])
    rs, rsr = _b(e["RESOLVE_INIT_PSK"]), _b(e["RESOLVE_RESP"])

    req = mikey.verify_request_init(ri, psk=_b(i["psk_i"]), now=i["t_request_init"], kms=i["kms"])
    assert (req.initiator, req.kms, req.responders) == (i["initiator"], i["kms"], (i["responder"],))
    assert (req.csb_id, req.rand, req.suite) == (
        i["request_csb_id"],
        _b(i["request_rand_i"]),
        suite,
    )
    assert req.valid_until == i["valid_until"] and req.timestamp == i["t_request_init"]
    assert req.psk_id == (None if i["psk_id_i"] is None else _b(i["psk_id_i"]))

    grant = mikey.read_request_resp(
        rr, request_init=ri, psk=_b(i["psk_i"]), now=i["t_request_resp"]
    )
    assert grant.ticket == _b(e["BASE_TICKET"])
    assert (grant.mpki, grant.tgk, grant.spi) == (_b(e["mpki"]), _b(i["tgk"]), _b(i["spi"]))
    assert grant.timestamp == i["t_request_resp"]

    opened = mikey.open_base_ticket(grant.ticket, tpk=_b(i["tpk"]))
    assert (opened.mpk, opened.tgk, opened.rand) == (
        _b(i["mpk"]),
        _b(i["tgk"]),
        _b(i["ticket_rand"]),
    )
    assert opened.timestamp == i["t_ticket"]

    peek = mikey.peek_transfer_init(ti)
    mikey.check_transfer_init_profile(peek, responder=i["responder"], now=i["t_transfer_init"])
    res = mikey.verify_resolve_init(rs, psk=_b(i["psk_r"]), now=i["t_resolve_init"])
    assert res.ticket == peek.ticket == grant.ticket
    assert (res.responder, res.csb_id, res.rand_r) == (
        i["responder"],
        i["resolve_csb_id"],
        _b(i["rand_r"]),
    )
    resolved = mikey.read_resolve_resp(
        rsr, resolve_init=rs, psk=_b(i["psk_r"]), now=i["t_resolve_resp"]
    )
    assert (resolved.mpki, resolved.tgk, resolved.responder) == (
        _b(e["mpki"]),
        _b(i["tgk"]),
        i["responder"],
    )

    vti = mikey.verify_transfer_init(ti, mpki=resolved.mpki, now=i["t_transfer_init"])
    assert (vti.initiator, vti.responder, vti.csb_id, vti.sdp_ids) == (
        i["initiator"],
        i["responder"],
        i["transfer_csb_id"],
        i["sdp_ids"],
    )
    assert vti.timestamp == i["t_transfer_init"]
    vtr = mikey.verify_transfer_resp(
        tr, transfer_init=ti, mpki=grant.mpki, now=i["t_transfer_resp"]
    )
    assert vtr.rand_r == _b(i["rand_r"]) and vtr.crypto_sessions[0].policies == (0,)

    psk = mikey.derive_tls_psk(
        tgk=resolved.tgk,
        cs_id=vti.crypto_sessions[0].cs_id,
        rand_i=vti.rand_i,
        rand_r=vtr.rand_r,
        suite=suite,
    )
    assert psk == _b(e["tls_psk"]) and len(psk) == suite.key_len

    err = mikey.read_error(_b(e["ERROR"]))
    assert err == mikey.MikeyErrorMessage(
        (i["error_code"],), i["transfer_csb_id"], i["t_error"], suite.prf
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_golden_headers_read_by_hand(case: dict[str, Any]) -> None:
    """The first bytes of each message spell out RFC 3830 §6.1 HDR fields as PROFILE pins."""
    e, i = case["expected"], case["inputs"]
    prf = 0 if i["suite"] == "128" else 1
    csb_req = f"{i['request_csb_id']:08x}"
    assert e["REQUEST_INIT_PSK"][:20] == f"010b05{0x80 | prf:02x}{csb_req}0001"
    assert e["REQUEST_RESP"][:20] == f"010d05{prf:02x}{csb_req}0001"
    csb_t = f"{i['transfer_csb_id']:08x}"
    assert e["TRANSFER_INIT"][:20] == f"010e05{0x80 | prf:02x}{csb_t}0102"
    # GENERIC-ID: CS ID 1, Prot type F1, S=0 #P=0, Session Data len 0, SPI len 4, SPI
    assert e["TRANSFER_INIT"][20:40] == "01" + "f1" + "00" + "0000" + "04" + "a1b2c3d4"
    assert e["TRANSFER_RESP"][:20] == f"010f05{prf:02x}{csb_t}0102"
    # ... #P=1 with Policy_no 0
    assert e["TRANSFER_RESP"][20:42] == "01" + "f1" + "01" + "00" + "0000" + "04" + "a1b2c3d4"
    csb_r = f"{i['resolve_csb_id']:08x}"
    assert e["RESOLVE_INIT_PSK"][:20] == f"011005{0x80 | prf:02x}{csb_r}0001"
    assert e["RESOLVE_RESP"][:20] == f"011205{prf:02x}{csb_r}0001"
    assert e["ERROR"][:20] == f"010605{prf:02x}{csb_t}0001"
    for name in (
        "REQUEST_INIT_PSK",
        "REQUEST_RESP",
        "TRANSFER_INIT",
        "RESOLVE_INIT_PSK",
        "RESOLVE_RESP",
        "TRANSFER_RESP",
        "ERROR",
    ):
        msg = Message.decode(_b(e[name]))
        assert msg.data_type in set(DataType)
