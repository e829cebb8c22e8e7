"""The KMS service built from a config file: listening, TLS files, accounts, SIGHUP reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from treq.testing import RequestTraversalAgent
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher

from kms import build_resource, load_config
from kms._service import KmsService, make_service
from kms._tls import ensure_self_signed
from kms_client import KmsClient, KmsRejected, RetryPolicy
from mikey import TicketGrant
from tests.kms.conftest import NOW, counting_random

ALICE_KEY, BOB_KEY, CAROL_KEY = "11" * 16, "22" * 32, "33" * 16
CONFIG = f"""\
identity = "sip:kms@example.net"
listen = "ssl:0:interface=127.0.0.1"

[[account]]
identity = "sip:alice@example.net"
key = "{ALICE_KEY}"

[[account]]
identity = "sip:bob@example.net"
key = "{BOB_KEY}"
may_act_as = ["sip:bob@example.net"]
"""
CAROL = f"""
[[account]]
identity = "sip:carol@example.net"
key = "{CAROL_KEY}"
"""


@pytest.fixture
def reactor() -> MemoryReactorClock:
    reactor = MemoryReactorClock()
    reactor.advance(NOW)
    return reactor


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "kms.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def events() -> Iterator[list[dict]]:
    captured: list[dict] = []
    globalLogPublisher.addObserver(captured.append)
    yield captured
    globalLogPublisher.removeObserver(captured.append)


def client_for(service: KmsService, reactor: MemoryReactorClock, key_hex: str) -> KmsClient:
    agent = RequestTraversalAgent(build_resource(service.engine, clock=reactor))
    return KmsClient(
        base_url="http://kms.test/mikey-ticket/v1",
        kms_identity="sip:kms@example.net",
        psk=bytes.fromhex(key_hex),
        http=agent,
        reactor=reactor,
        allow_plain_http=True,
        random_bytes=counting_random(),
        retry=RetryPolicy(max_attempts=1),
    ), agent


def settle(pair: tuple[KmsClient, RequestTraversalAgent], call) -> object:
    results: list[object] = []
    call(pair[0]).addBoth(results.append)
    for _ in range(20):
        if results:
            break
        pair[1].flush()
    return results[0]


def request(service, reactor, key, initiator, responders):
    return settle(
        client_for(service, reactor, key),
        lambda c: c.request_ticket(initiator=initiator, responders=responders),
    )


def resolve(service, reactor, key, responder, ticket):
    return settle(
        client_for(service, reactor, key),
        lambda c: c.resolve_ticket(responder=responder, ticket=ticket),
    )


def test_two_accounts_ticket_resolves_only_for_the_named_one(
    config_path: Path, reactor: MemoryReactorClock
) -> None:
    """From a real config: Alice's ticket for Bob resolves for Bob and not for Alice."""
    service = make_service(
        load_config(config_path), reactor=reactor, random_bytes=counting_random()
    )
    grant = request(service, reactor, ALICE_KEY, "sip:alice@example.net", ["sip:bob@example.net"])
    assert isinstance(grant, TicketGrant)
    bob = resolve(service, reactor, BOB_KEY, "sip:bob@example.net", grant.ticket)
    assert bob.tgk == grant.tgk  # type: ignore[attr-defined]
    alice = resolve(service, reactor, ALICE_KEY, "sip:alice@example.net", grant.ticket)
    assert alice.check(KmsRejected) and alice.value.http_status == 403  # type: ignore[attr-defined]


def test_start_creates_a_ca_and_server_pair_and_listens_with_tls(
    config_path: Path, reactor: MemoryReactorClock, events: list[dict]
) -> None:
    """Without configured TLS files, start makes CA/cert/key beside the config and logs the CA."""
    service = make_service(load_config(config_path), reactor=reactor)
    service.startService()
    try:
        assert len(reactor.sslServers) == 1
        port, _factory, _context, _backlog, interface = reactor.sslServers[0]
        assert (port, interface) == (0, "127.0.0.1")
        ca = config_path.parent / "kms.ca.pem"
        key = config_path.parent / "kms.key.pem"
        assert ca.exists() and (config_path.parent / "kms.cert.pem").exists()
        assert key.stat().st_mode & 0o077 == 0, "the private key must not be readable by others"
        assert any(str(ca) in str(e.get("ca", "")) for e in events)
        assert any(e.get("scheme") == "https" and e.get("port") == 0 for e in events)
    finally:
        service.stopService()


def test_second_start_reuses_the_generated_files(config_path: Path) -> None:
    """The self-signed pair is made on first start only."""
    first = ensure_self_signed(config_path, names=["localhost"], now=NOW)
    second = ensure_self_signed(config_path, names=["localhost"], now=NOW)
    assert first.created and not second.created
    assert first.certificate.read_bytes() == second.certificate.read_bytes()


def test_generated_certificate_names_loopback_and_is_signed_by_the_ca(config_path: Path) -> None:
    """The server certificate covers 127.0.0.1 and localhost and chains to the CA file."""
    files = ensure_self_signed(config_path, names=["localhost", "127.0.0.1"], now=NOW)
    cert = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())  # type: ignore[union-attr]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cert.verify_directly_issued_by(ca)


def test_plain_http_service_listens_on_tcp(tmp_path: Path, reactor: MemoryReactorClock) -> None:
    """allow_plain_http with a loopback tcp: endpoint listens without TLS files."""
    path = tmp_path / "plain.toml"
    path.write_text("allow_plain_http = true\n" + CONFIG.replace("ssl:0:", "tcp:18080:"))
    service = make_service(load_config(path), reactor=reactor)
    service.startService()
    service.stopService()
    assert reactor.tcpServers[0][0] == 18080
    assert not list(tmp_path.glob("*.pem"))


def test_reload_takes_new_accounts(config_path: Path, reactor: MemoryReactorClock) -> None:
    """After reload_accounts, an account added to the file can request tickets."""
    service = make_service(load_config(config_path), reactor=reactor)
    before = request(service, reactor, CAROL_KEY, "sip:carol@example.net", ["sip:bob@example.net"])
    assert before.check(KmsRejected)  # type: ignore[attr-defined]
    config_path.write_text(CONFIG + CAROL)
    assert service.reload_accounts()
    after = request(service, reactor, CAROL_KEY, "sip:carol@example.net", ["sip:bob@example.net"])
    assert isinstance(after, TicketGrant)


def test_broken_reload_keeps_the_old_accounts_and_says_where(
    config_path: Path, reactor: MemoryReactorClock, events: list[dict]
) -> None:
    """A reload from a broken file keeps serving the old accounts and logs file and line."""
    service = make_service(load_config(config_path), reactor=reactor)
    config_path.write_text(CONFIG + CAROL.replace(CAROL_KEY, "zz"))
    assert not service.reload_accounts()
    errors = [e for e in events if "NOT reloaded" in str(e.get("log_format", ""))]
    assert errors and errors[0]["line"] == 15 and errors[0]["file"] == str(config_path)
    assert errors[0]["key"] == "account[2].key"
    grant = request(service, reactor, ALICE_KEY, "sip:alice@example.net", ["sip:bob@example.net"])
    assert isinstance(grant, TicketGrant)


def test_sighup_handler_is_installed_and_restored(
    config_path: Path, reactor: MemoryReactorClock
) -> None:
    """With handle_sighup the service owns SIGHUP while running and gives it back at stop."""
    import signal

    previous = signal.getsignal(signal.SIGHUP)
    service = make_service(load_config(config_path), reactor=reactor, handle_sighup=True)
    service.startService()
    try:
        assert signal.getsignal(signal.SIGHUP) == service._on_sighup
    finally:
        service.stopService()
    assert signal.getsignal(signal.SIGHUP) == previous


def test_configured_tls_pair_is_used_and_nothing_is_generated(
    tmp_path: Path, reactor: MemoryReactorClock
) -> None:
    """With tls_certificate and tls_key set, the KMS serves them and makes no files."""
    elsewhere = tmp_path / "pki"
    elsewhere.mkdir()
    pair = ensure_self_signed(elsewhere / "x.toml", names=["127.0.0.1"], now=NOW)
    path = tmp_path / "kms.toml"
    path.write_text(f'tls_certificate = "{pair.certificate}"\ntls_key = "{pair.key}"\n' + CONFIG)
    service = make_service(load_config(path), reactor=reactor)
    service.startService()
    service.stopService()
    assert len(reactor.sslServers) == 1
    assert service.tls is not None and service.tls.certificate == pair.certificate
    assert not list(tmp_path.glob("*.pem"))
