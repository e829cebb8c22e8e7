"""The KMS client: ticket request (PROFILE.md section 4) and resolve (section 6) over HTTP.

One KmsClient per KMS account: it holds the account's pre-shared key and may speak for
any identity the KMS lets that key act as (a focus resolves as each room URI). Time comes
from the injected reactor, random values and CSB IDs from an injected source.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import hyperlink
from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.web.iweb import IAgent

from mikey import (
    SUITE_128,
    MikeyError,
    Suite,
    TicketGrant,
    build_request_init,
    build_resolve_init,
    read_error,
    read_request_resp,
    read_resolve_resp,
)
from mikey.crypto import suite_for_prf
from mikey.payloads import Ticket

from ._errors import KmsProtocolError, KmsRejected
from ._http import MIKEY_CONTENT_TYPE, HttpAnswer, RetryPolicy, Scheduler, post_with_retries, run

__all__ = ["KmsClient", "TicketResolution"]


@attrs.frozen
class TicketResolution:
    """What a responder learns by resolving a ticket (RFC 6043 section 4.2.3).

    `rand_r` is the RANDRr sent in RESOLVE_INIT; PROFILE.md section 6 requires the same
    value in the TRANSFER_RESP that follows. `responder` is the IDRr the KMS answered
    for (the one we asked as, when the KMS did not name one). There is deliberately no
    suite here: the TEK derivation uses the ticket's suite (TRANSFER_INIT), which may
    differ from the suite of the responder's own exchange with the KMS.
    """

    mpki: bytes = attrs.field(repr=False)
    tgk: bytes = attrs.field(repr=False)
    spi: bytes
    responder: str
    rand_r: bytes


def _to_http_client(http: HTTPClient | IAgent) -> HTTPClient:
    if isinstance(http, HTTPClient):
        return http
    return HTTPClient(http)


class KmsClient:
    """Requests and resolves MIKEY-TICKET tickets at one KMS for one account.

    *http* is a treq HTTPClient or an IAgent (see `https_agent` for CA checking);
    *reactor* gives the time (`seconds()`) and the timers of the timeouts and back-off.
    Plain http:// base URLs are refused unless *allow_plain_http* is set (PROFILE.md
    section 3: loopback tests only).
    """

    def __init__(
        self,
        *,
        base_url: str,
        kms_identity: str,
        psk: bytes,
        http: HTTPClient | IAgent,
        reactor: Scheduler,
        psk_id: bytes | None = None,
        suite: Suite = SUITE_128,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (frozen value)
        allow_plain_http: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_clock_skew: float = 300.0,
    ) -> None:
        url = hyperlink.URL.from_text(base_url)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError(f"KMS base URL must be https://host/...: {base_url!r}")
        if url.scheme == "http" and not allow_plain_http:
            raise ValueError("plain http:// to the KMS needs allow_plain_http=True")
        if len(psk) not in (16, 32):
            raise ValueError("the KMS pre-shared key must be 16 or 32 bytes")
        base = url.to_text().rstrip("/")
        self._request_url = base + "/request"
        self._resolve_url = base + "/resolve"
        self.kms_identity = kms_identity
        self._psk = psk
        self._psk_id = psk_id
        self._http = _to_http_client(http)
        self._reactor = reactor
        self._suite = suite
        self._retry = retry
        self._random = random_bytes
        self._skew = max_clock_skew

    def __repr__(self) -> str:
        return f"<KmsClient {self._request_url.rsplit('/', 1)[0]} as {self.kms_identity}>"

    # PROFILE.md section 2: RANDs of 16 bytes, or as long as the longest key in play.
    def _rand(self, *also: Suite) -> bytes:
        return self._random(max(16, self._suite.key_len, *(s.key_len for s in also)))

    def _csb_id(self) -> int:
        return int.from_bytes(self._random(4), "big")

    def _jitter(self) -> float:
        return self._random(1)[0] / 255.0

    def request_ticket(
        self, *, initiator: str, responders: Sequence[str], validity: float = 3600.0
    ) -> Deferred[TicketGrant]:
        """Ask the KMS for a ticket from *initiator* to *responders*, valid *validity* s.

        Fires with the mikey TicketGrant (ticket, MPKi, TGK with its SPI, suite,
        responders, valid_until); fails with KmsUnavailable, KmsRejected or
        KmsProtocolError.
        """
        if not responders:
            raise ValueError("a ticket needs at least one responder")
        if validity <= 0:
            raise ValueError("validity must be positive")
        sent: list[bytes] = []

        def make_body() -> bytes:
            now = self._reactor.seconds()
            body = build_request_init(
                psk=self._psk,
                initiator=initiator,
                kms=self.kms_identity,
                responders=list(responders),
                valid_until=now + validity,
                now=now,
                csb_id=self._csb_id(),
                rand=self._rand(),
                suite=self._suite,
                psk_id=self._psk_id,
            )
            sent.append(body)
            return body

        def on_answer(answer: HttpAnswer) -> TicketGrant:
            _check_answer(answer)
            try:
                return read_request_resp(
                    answer.body,
                    request_init=sent[-1],
                    psk=self._psk,
                    now=self._reactor.seconds(),
                    max_skew=self._skew,
                )
            except MikeyError as e:
                raise KmsProtocolError(f"REQUEST_RESP not accepted: {e}") from e

        return self._post(self._request_url, make_body, on_answer)

    def resolve_ticket(
        self, *, responder: str, ticket: bytes, rand_r: bytes | None = None
    ) -> Deferred[TicketResolution]:
        """Ask the KMS for the keys of *ticket*, as *responder* (RFC 6043 section 4.2.3).

        *ticket* is the TICKET payload value from TRANSFER_INIT, unchanged. *rand_r* is
        drawn from the random source when not given; the result carries it. The same
        RANDRr goes into the TRANSFER_RESP, so it is as long as the longest key of both
        exchanges (PROFILE.md section 2, RFC 6043 section 12.1): this account's suite and
        the ticket's, which its TP PRF Func tells (32 bytes with the 256-bit suite).
        """
        rand = self._rand(*_ticket_suite(ticket)) if rand_r is None else rand_r
        sent: list[bytes] = []

        def make_body() -> bytes:
            body = build_resolve_init(
                psk=self._psk,
                responder=responder,
                kms=self.kms_identity,
                ticket=ticket,
                now=self._reactor.seconds(),
                csb_id=self._csb_id(),
                rand_r=rand,
                suite=self._suite,
                psk_id=self._psk_id,
            )
            sent.append(body)
            return body

        def on_answer(answer: HttpAnswer) -> TicketResolution:
            _check_answer(answer)
            try:
                resolved = read_resolve_resp(
                    answer.body,
                    resolve_init=sent[-1],
                    psk=self._psk,
                    now=self._reactor.seconds(),
                    max_skew=self._skew,
                )
            except MikeyError as e:
                raise KmsProtocolError(f"RESOLVE_RESP not accepted: {e}") from e
            return TicketResolution(
                mpki=resolved.mpki,
                tgk=resolved.tgk,
                spi=resolved.spi,
                responder=resolved.responder or responder,
                rand_r=rand,
            )

        return self._post(self._resolve_url, make_body, on_answer)

    def _post(
        self, url: str, make_body: Callable[[], bytes], on_answer: Callable[[HttpAnswer], Any]
    ) -> Deferred[Any]:
        # The first message is built now, so that bad arguments (a ticket that does not
        # decode, a key of the wrong size for the suite) raise mikey's error at the call
        # instead of failing the Deferred later. Retries build fresh ones.
        first = [make_body()]

        def next_body() -> bytes:
            return first.pop() if first else make_body()

        return run(
            post_with_retries(
                http=self._http,
                url=url,
                make_body=next_body,
                scheduler=self._reactor,
                policy=self._retry,
                jitter=self._jitter,
                on_answer=on_answer,
            )
        )


def _ticket_suite(ticket: bytes) -> tuple[Suite, ...]:
    """The suite the ticket's policy names, if it decodes and names one we know; a ticket
    that does not decode is refused by build_resolve_init just after."""
    try:
        return (suite_for_prf(Ticket.decode_value(ticket).policy.prf),)
    except MikeyError:
        return ()


def _check_answer(answer: HttpAnswer) -> None:
    """Turn a non-5xx answer that is not a usable 200 into the client's error."""
    if answer.status == 200:
        if answer.media_type != MIKEY_CONTENT_TYPE:
            raise KmsProtocolError(f"200 with content type {answer.media_type!r}")
        return
    if 400 <= answer.status <= 499:
        err_code: int | None = None
        if answer.media_type == MIKEY_CONTENT_TYPE and answer.body:
            try:
                err_code = read_error(answer.body).err_codes[0]
            except MikeyError:
                err_code = None
        raise KmsRejected(http_status=answer.status, err_code=err_code)
    raise KmsProtocolError(f"unexpected HTTP status {answer.status}")
