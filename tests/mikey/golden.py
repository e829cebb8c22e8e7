"""Golden MIKEY-TICKET messages: inputs -> bytes, for regression and for interop checks.

``python -m tests.mikey.golden`` rewrites ``fixtures/golden.json`` (only do that when a
deliberate wire change is made, and say so in the commit). The JSON holds every input
(keys, times, random values, CSB IDs, identities) and the expected hex of each message,
so an independent implementation can rebuild them byte for byte.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import mikey

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "golden.json"


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


def opt(value: str | None) -> bytes | None:
    return None if value is None else _b(value)


def case_inputs(suite_name: str) -> dict[str, Any]:
    suite = mikey.SUITE_128 if suite_name == "128" else mikey.SUITE_256
    n, r = suite.key_len, suite.rand_len
    return {
        "suite": suite_name,
        "initiator": "sip:alice@example.net",
        "responder": "sip:lobby@conf.example.net",
        "kms": "sip:kms@kms.example.net",
        "psk_i": bytes((0x10 + i) % 256 for i in range(n)).hex(),
        "psk_r": bytes((0x90 + i) % 256 for i in range(n)).hex(),
        "psk_id_i": "616c6963652d6b6579" if suite_name == "256" else None,
        "psk_id_r": "6c6f6262792d6b6579" if suite_name == "256" else None,
        "tpk": bytes((0xC0 + 3 * i) % 256 for i in range(n)).hex(),
        "mpk": bytes((0x31 * i + 7) % 256 for i in range(n)).hex(),
        "tgk": bytes((0x57 * i + 3) % 256 for i in range(n)).hex(),
        "spi": "a1b2c3d4",
        "ticket_rand": bytes((0xE0 + i) % 256 for i in range(r)).hex(),
        "request_rand_i": bytes((0x20 + i) % 256 for i in range(r)).hex(),
        "rand_i": bytes((0x40 + i) % 256 for i in range(r)).hex(),
        "rand_r": bytes((0x60 + i) % 256 for i in range(r)).hex(),
        "request_csb_id": 0x11223344,
        "transfer_csb_id": 0x55667788,
        "resolve_csb_id": 0x99AABBCC,
        "valid_until": 1_767_229_200.0,
        "t_request_init": 1_767_225_600.0,
        "t_ticket": 1_767_225_601.0,
        "t_request_resp": 1_767_225_601.5,
        "t_transfer_init": 1_767_225_602.25,
        "t_resolve_init": 1_767_225_603.0,
        "t_resolve_resp": 1_767_225_603.125,
        "t_transfer_resp": 1_767_225_604.0,
        "t_error": 1_767_225_605.0,
        "error_code": 14,
        "tls_prot_type": 241,
        "sdp_ids": "mikey",
    }


def build_case(i: dict[str, Any]) -> dict[str, str]:
    """Build every message of one golden case from its inputs (hex strings out)."""
    suite = mikey.SUITE_128 if i["suite"] == "128" else mikey.SUITE_256
    ri = mikey.build_request_init(
        psk=_b(i["psk_i"]),
        initiator=i["initiator"],
        kms=i["kms"],
        responders=[i["responder"]],
        valid_until=i["valid_until"],
        now=i["t_request_init"],
        csb_id=i["request_csb_id"],
        rand=_b(i["request_rand_i"]),
        suite=suite,
        psk_id=opt(i["psk_id_i"]),
    )
    req = mikey.peek_request_init(ri)
    ticket = mikey.seal_base_ticket(
        tpk=_b(i["tpk"]),
        ticket_policy=req.ticket_policy,
        mpk=_b(i["mpk"]),
        tgk=_b(i["tgk"]),
        spi=_b(i["spi"]),
        now=i["t_ticket"],
        rand=_b(i["ticket_rand"]),
        suite=suite,
    )
    mpki = mikey.derive_mpki(mpk=_b(i["mpk"]), rand=_b(i["ticket_rand"]), suite=suite)
    rr = mikey.build_request_resp(
        request_init=ri,
        psk=_b(i["psk_i"]),
        kms=i["kms"],
        ticket=ticket,
        mpki=mpki,
        tgk=_b(i["tgk"]),
        spi=_b(i["spi"]),
        now=i["t_request_resp"],
    )
    grant = mikey.read_request_resp(
        rr, request_init=ri, psk=_b(i["psk_i"]), now=i["t_request_resp"]
    )
    ti = mikey.build_transfer_init(
        grant=grant,
        initiator=i["initiator"],
        responder=i["responder"],
        now=i["t_transfer_init"],
        csb_id=i["transfer_csb_id"],
        rand=_b(i["rand_i"]),
        sdp_ids=i["sdp_ids"],
        tls_prot_type=i["tls_prot_type"],
    )
    rs = mikey.build_resolve_init(
        psk=_b(i["psk_r"]),
        responder=i["responder"],
        kms=i["kms"],
        ticket=grant.ticket,
        now=i["t_resolve_init"],
        csb_id=i["resolve_csb_id"],
        rand_r=_b(i["rand_r"]),
        suite=suite,
        psk_id=opt(i["psk_id_r"]),
    )
    rsr = mikey.build_resolve_resp(
        resolve_init=rs,
        psk=_b(i["psk_r"]),
        kms=i["kms"],
        responder=i["responder"],
        mpki=mpki,
        tgk=_b(i["tgk"]),
        spi=_b(i["spi"]),
        now=i["t_resolve_resp"],
    )
    tr = mikey.build_transfer_resp(
        transfer_init=ti,
        mpki=mpki,
        responder=i["responder"],
        rand_r=_b(i["rand_r"]),
        now=i["t_transfer_resp"],
        sdp_ids=i["sdp_ids"],
        tls_prot_type=i["tls_prot_type"],
    )
    err = mikey.build_error(
        err_code=i["error_code"], csb_id=i["transfer_csb_id"], prf=suite.prf, now=i["t_error"]
    )
    psk = mikey.derive_tls_psk(
        tgk=_b(i["tgk"]), cs_id=1, rand_i=_b(i["rand_i"]), rand_r=_b(i["rand_r"]), suite=suite
    )
    return {
        "REQUEST_INIT_PSK": ri.hex(),
        "BASE_TICKET": ticket.hex(),
        "REQUEST_RESP": rr.hex(),
        "TRANSFER_INIT": ti.hex(),
        "RESOLVE_INIT_PSK": rs.hex(),
        "RESOLVE_RESP": rsr.hex(),
        "TRANSFER_RESP": tr.hex(),
        "ERROR": err.hex(),
        "mpki": mpki.hex(),
        "tls_psk": psk.hex(),
    }


def main() -> None:
    cases = []
    for name in ("128", "256"):
        inputs = case_inputs(name)
        cases.append({"inputs": inputs, "expected": build_case(inputs)})
    FIXTURE.write_text(json.dumps({"cases": cases}, indent=2) + "\n")


if __name__ == "__main__":
    main()
