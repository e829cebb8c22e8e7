"""The KMS agent's connections: IP literals without a resolver, a persistent pool."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web.client import URI

from kms_client import https_agent, persistent_pool
from kms_client._http import _EndpointFactory


def test_ip_literal_hosts_connect_without_the_resolver() -> None:
    """An IPv4 or IPv6 literal connects straight to the address; a name still resolves."""
    reactor = MemoryReactorClock()
    factory = _EndpointFactory(reactor, None, 3.0)
    for url, host in ((b"http://127.0.0.1:8080/x", "127.0.0.1"), (b"http://[::1]:8080/x", "::1")):
        factory.endpointForURI(URI.fromBytes(url)).connect(None)  # type: ignore[arg-type]
        assert reactor.tcpClients[-1][:2] == (host, 8080)
        assert reactor.tcpClients[-1][3] == 3.0
    before = len(reactor.tcpClients)
    endpoint = factory.endpointForURI(URI.fromBytes(b"http://kms.example:8080/x"))
    assert type(endpoint).__name__ == "HostnameEndpoint"
    assert len(reactor.tcpClients) == before


def test_agent_reuses_one_connection_per_request_sequence() -> None:
    """Two requests in a row through a persistent pool share one TCP connection."""
    reactor = MemoryReactorClock()
    agent = https_agent(reactor, pool=persistent_pool(reactor))
    answers = []
    for _ in range(2):
        d = agent.request(b"POST", b"http://127.0.0.1:8080/mikey-ticket/v1/resolve")
        d.addCallback(answers.append)
        if len(reactor.tcpClients) == 1 and not answers:
            factory = reactor.tcpClients[0][2]
            protocol = factory.buildProtocol(None)
            transport = StringTransport()
            protocol.makeConnection(transport)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        reactor.advance(0)
    assert len(answers) == 2
    assert len(reactor.tcpClients) == 1
    assert transport.value().count(b"POST ") == 2


def test_persistent_pool_is_bounded_and_never_replays_a_post() -> None:
    """Idle connections are kept a bounded time, below the KMS's own idle timeout."""
    pool = persistent_pool(MemoryReactorClock())
    assert pool.persistent
    assert pool.maxPersistentPerHost == 32
    assert 0 < pool.cachedConnectionTimeout < 30
    assert pool.retryAutomatically is False
