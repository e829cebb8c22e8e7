"""`twistd -n kms` as a real process on loopback, spoken to over HTTPS by the client."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from kms._tls import ensure_self_signed
from kms_client import KmsClient, KmsUnavailable, RetryPolicy, https_agent

TWISTD = str(Path(sys.executable).with_name("twistd"))
ALICE, BOB, CAROL = "sip:alice@example.net", "sip:bob@example.net", "sip:carol@example.net"
KEYS = {ALICE: "a1" * 16, BOB: "b2" * 32, CAROL: "c3" * 16}
CONFIG = f"""\
identity = "sip:kms@example.net"
listen = "ssl:0:interface=127.0.0.1"

[[account]]
identity = "{ALICE}"
key = "{KEYS[ALICE]}"

[[account]]
identity = "{BOB}"
key = "{KEYS[BOB]}"
"""
CAROL_ACCOUNT = f"""
[[account]]
identity = "{CAROL}"
key = "{KEYS[CAROL]}"
"""


class KmsProcess(ProcessProtocol):
    """Collects the KMS's log output and lets the test wait for a line, with a timeout."""

    def __init__(self) -> None:
        self.text = ""
        self.ended: Deferred[None] = Deferred()
        self._waiters: list[tuple[re.Pattern[str], Deferred[re.Match[str]]]] = []

    def outReceived(self, data: bytes) -> None:
        self.text += data.decode("utf-8", "replace")
        for waiter in list(self._waiters):
            match = waiter[0].search(self.text)
            if match:
                self._waiters.remove(waiter)
                waiter[1].callback(match)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        for _, d in self._waiters:
            d.errback(RuntimeError(f"twistd kms exited:\n{self.text}"))
        self._waiters.clear()
        self.ended.callback(None)

    def wait_for(self, pattern: str, timeout: float) -> Deferred[re.Match[str]]:
        from twisted.internet import reactor

        compiled = re.compile(pattern)
        d: Deferred[re.Match[str]] = Deferred()
        match = compiled.search(self.text)
        if match:
            d.callback(match)
        else:
            self._waiters.append((compiled, d))
        return d.addTimeout(timeout, reactor)


def kms_client(reactor, port: int, ca: Path, who: str, **kw) -> KmsClient:
    return KmsClient(
        base_url=f"https://127.0.0.1:{port}/mikey-ticket/v1",
        kms_identity="sip:kms@example.net",
        psk=bytes.fromhex(KEYS[who]),
        http=https_agent(reactor, ca_file=ca, connect_timeout=5),
        reactor=reactor,
        **kw,
    )


@pytest.mark.e2e
@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_twistd_kms_issues_resolves_reloads_and_stops(tmp_path: Path) -> None:
    """A real `twistd -n kms` issues and resolves over HTTPS, reloads on SIGHUP, and stops."""
    from twisted.internet import reactor

    config = tmp_path / "kms.toml"
    config.write_text(CONFIG)
    process = KmsProcess()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    transport = reactor.spawnProcess(
        process,
        TWISTD,
        [TWISTD, "-n", "--pidfile=", "kms", "--config", str(config)],
        env=env,
        path=str(tmp_path),
    )
    try:
        listening = await process.wait_for(r"listening on https://127\.0\.0\.1:(\d+)/", 30)
        port = int(listening[1])
        ca = tmp_path / "kms.ca.pem"
        assert str(ca) in process.text, "the KMS logs where its CA file is"

        grant = await kms_client(reactor, port, ca, ALICE).request_ticket(
            initiator=ALICE, responders=[BOB], validity=300
        )
        resolution = await kms_client(reactor, port, ca, BOB).resolve_ticket(
            responder=BOB, ticket=grant.ticket
        )
        assert (resolution.tgk, resolution.spi) == (grant.tgk, grant.spi)

        # A client that trusts another CA does not talk to this KMS.
        other = tmp_path / "other"
        other.mkdir()
        wrong_ca = ensure_self_signed(other / "x.toml", names=["127.0.0.1"], now=reactor.seconds())
        assert wrong_ca.ca is not None
        quick = RetryPolicy(timeout=5, max_attempts=1)
        with pytest.raises(KmsUnavailable):
            await kms_client(reactor, port, wrong_ca.ca, ALICE, retry=quick).request_ticket(
                initiator=ALICE, responders=[BOB]
            )

        # SIGHUP: a new account works without a restart.
        config.write_text(CONFIG + CAROL_ACCOUNT)
        transport.signalProcess("HUP")
        await process.wait_for(r"accounts reloaded .*: 3 accounts", 15)
        carol = await kms_client(reactor, port, ca, CAROL).request_ticket(
            initiator=CAROL, responders=[ALICE]
        )
        assert carol.responders == (ALICE,)

        assert re.search(r"kms request identity=sip:alice@example.net outcome=ok", process.text)
        for key in KEYS.values():
            assert key not in process.text, "a key reached the log"

        transport.signalProcess("TERM")
        ended = process.ended
        ended.addTimeout(15, reactor)
        await ended
    finally:
        if transport.pid is not None:
            transport.signalProcess("KILL")

    # The KMS is gone: the client gives up after its bounded retries, it does not hang.
    started = reactor.seconds()
    retry = RetryPolicy(timeout=2, max_attempts=2, backoff=0.1)
    with pytest.raises(KmsUnavailable):
        await kms_client(reactor, port, ca, ALICE, retry=retry).request_ticket(
            initiator=ALICE, responders=[BOB]
        )
    assert reactor.seconds() - started < 10
