"""A tiny in-memory KMS built only from mikey's public functions (for tests)."""

from __future__ import annotations

import attrs

import mikey


@attrs.define
class MiniKms:
    """Issues base tickets and resolves them for users whose PSKs it knows."""

    uri: str
    psks: dict[str, bytes]
    tpk: bytes
    suite: mikey.Suite = mikey.SUITE_128

    def request(
        self, data: bytes, *, now: float, mpk: bytes, tgk: bytes, spi: bytes, rand: bytes
    ) -> bytes:
        peek = mikey.peek_request_init(data)
        req = mikey.verify_request_init(data, psk=self.psks[peek.initiator], now=now)
        ticket = mikey.seal_base_ticket(
            tpk=self.tpk,
            ticket_policy=req.ticket_policy,
            mpk=mpk,
            tgk=tgk,
            spi=spi,
            now=now,
            rand=rand,
            suite=req.suite,
        )
        mpki = mikey.derive_mpki(mpk=mpk, rand=rand, suite=req.suite)
        return mikey.build_request_resp(
            request_init=data,
            psk=self.psks[req.initiator],
            kms=self.uri,
            ticket=ticket,
            mpki=mpki,
            tgk=tgk,
            spi=spi,
            now=now,
        )

    def resolve(self, data: bytes, *, now: float) -> bytes:
        peek = mikey.peek_resolve_init(data)
        res = mikey.verify_resolve_init(data, psk=self.psks[peek.responder], now=now)
        contents = mikey.open_base_ticket(res.ticket, tpk=self.tpk)
        responders = contents.policy.identities(2)
        if res.responder.encode() not in responders:
            raise mikey.PolicyError("not authorised", mikey.ErrCode.INVALID_ID)
        return mikey.build_resolve_resp(
            resolve_init=data,
            psk=self.psks[res.responder],
            kms=self.uri,
            responder=res.responder,
            mpki=contents.mpki,
            tgk=contents.tgk,
            spi=contents.spi,
            now=now,
        )
