"""TLS-PSK interop on loopback with peers we did not write (openssl 3.0, Python 3.13 ssl).

Every test starts the processes it needs, on random free loopback ports, under a hard
timeout of a few seconds.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from OpenSSL import SSL
from twisted.internet import protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.protocols.tls import TLSMemoryBIOFactory

from focus.tls_psk import (
    DEFAULT_CIPHERS,
    TLSPSKClientCreator,
    TLSPSKConfig,
    TLSPSKHandshakeError,
    TLSPSKServerCreator,
    classify_tls_failure,
)
from tests.tls_psk._peers import OPENSSL, PYTHON313, Probe, deadline, free_port, spawn

pytestmark = pytest.mark.interop

SUITES = DEFAULT_CIPHERS.split(":")
PSK = bytes.fromhex("3f1e2d4c5b6a79880f1e2d3c4b5a6978")
WRONG_PSK = bytes.fromhex("00112233445566778899aabbccddeeff")
LIMIT = 10.0


def _reactor():  # type: ignore[no-untyped-def]
    from twisted.internet import reactor

    return reactor


def _listen(psk: bytes, probe: Probe, ciphers: str = DEFAULT_CIPHERS):  # type: ignore[no-untyped-def]
    """Our TLS-PSK server role on a random loopback port, serving ``probe``."""
    creator = TLSPSKServerCreator(psk, TLSPSKConfig(ciphers=ciphers))
    factory = TLSMemoryBIOFactory(
        creator, False, protocol.Factory.forProtocol(lambda: probe), _reactor()
    )
    return _reactor().listenTCP(0, factory, interface="127.0.0.1")


def _s_client(port: int, psk: bytes, *extra: str, identity: str = "") -> list[str]:
    return [
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-psk",
        psk.hex(),
        "-psk_identity",
        identity,
        "-ign_eof",
        *extra,
    ]


async def _serve_s_client(psk: bytes, client_psk: bytes, *extra: str, identity: str = ""):  # type: ignore[no-untyped-def]
    probe = Probe(greeting=b"focus-hello\n", expect=b"ping")
    port = _listen(psk, probe)
    try:
        proc = spawn(
            _reactor(),
            _s_client(port.getHost().port, client_psk, *extra, identity=identity),
            timeout=LIMIT,
        )
        proc.write(b"ping\n")
        await deadline(_reactor(), probe.lost, LIMIT)
        result = await proc.ended
    finally:
        await port.stopListening()
    return probe, probe.reason, result


@pytest.mark.parametrize("suite", SUITES)
@pytest_twisted.ensureDeferred
async def test_our_server_with_openssl_s_client(suite: str) -> None:
    """Our server completes a TLS 1.2 PSK handshake with s_client for each default suite."""
    probe, _reason, result = await _serve_s_client(PSK, PSK, "-tls1_2", "-cipher", suite)
    assert probe.handshake_done
    assert probe.cipher == suite
    assert probe.version == "TLSv1.2"
    assert b"ping" in probe.received
    assert b"focus-hello" in result.out


@pytest.mark.parametrize("suite", SUITES)
@pytest_twisted.ensureDeferred
async def test_our_client_with_openssl_s_server(suite: str) -> None:
    """Our client (empty identity) completes a handshake with s_server -nocert for each suite."""
    port = free_port()
    server = spawn(
        _reactor(),
        [
            OPENSSL,
            "s_server",
            "-nocert",
            "-tls1_2",
            "-psk",
            PSK.hex(),
            "-cipher",
            suite,
            "-accept",
            f"127.0.0.1:{port}",
            "-naccept",
            "1",
            "-rev",
        ],
        timeout=LIMIT,
        marker=b"ACCEPT",
    )
    await deadline(_reactor(), server.ready, LIMIT)
    probe = Probe(greeting=b"ping\n", expect=b"gnip")
    endpoint = wrapClientTLS(
        TLSPSKClientCreator(PSK), TCP4ClientEndpoint(_reactor(), "127.0.0.1", port, timeout=5)
    )
    await connectProtocol(endpoint, probe)
    await deadline(_reactor(), probe.lost, LIMIT)
    result = await server.ended
    assert probe.cipher == suite
    assert b"gnip" in probe.received
    assert result.code == 0


@pytest_twisted.ensureDeferred
async def test_wrong_psk_fails_our_server() -> None:
    """A client holding another PSK fails the handshake; our server reports a typed error."""
    probe, reason, result = await _serve_s_client(PSK, WRONG_PSK, "-tls1_2")
    assert not probe.handshake_done
    failure = classify_tls_failure(reason, handshake_done=False)
    assert isinstance(failure, TLSPSKHandshakeError)
    assert any("bad record mac" in r for r in failure.reasons)
    assert b"focus-hello" not in result.out
    assert result.code != 0


@pytest_twisted.ensureDeferred
async def test_wrong_psk_fails_our_client() -> None:
    """A server holding another PSK fails the handshake; our client reports a typed error."""
    port = free_port()
    server = spawn(
        _reactor(),
        [
            OPENSSL,
            "s_server",
            "-nocert",
            "-tls1_2",
            "-psk",
            WRONG_PSK.hex(),
            "-accept",
            f"127.0.0.1:{port}",
            "-naccept",
            "1",
            "-rev",
        ],
        timeout=LIMIT,
        marker=b"ACCEPT",
    )
    await deadline(_reactor(), server.ready, LIMIT)
    probe = Probe(greeting=b"ping\n")
    endpoint = wrapClientTLS(
        TLSPSKClientCreator(PSK), TCP4ClientEndpoint(_reactor(), "127.0.0.1", port, timeout=5)
    )
    await connectProtocol(endpoint, probe)
    await deadline(_reactor(), probe.lost, LIMIT)
    reason = probe.reason
    await server.ended
    assert not probe.handshake_done
    failure = classify_tls_failure(reason, handshake_done=False)
    assert isinstance(failure, TLSPSKHandshakeError)
    assert any("bad record mac" in r for r in failure.reasons)


@pytest_twisted.ensureDeferred
async def test_tls13_only_client_is_refused() -> None:
    """A TLS 1.3-only client is refused: the legs are pinned to TLS 1.2.

    The client gets a one-byte identity: OpenSSL cannot even build a TLS 1.3
    ClientHello with an empty one (RFC 8446 §4.2.11), which is why the profile is 1.2.
    """
    probe, reason, result = await _serve_s_client(PSK, PSK, "-tls1_3", identity="x")
    assert not probe.handshake_done
    assert isinstance(reason.value, SSL.Error)
    failure = classify_tls_failure(reason, handshake_done=False)
    assert isinstance(failure, TLSPSKHandshakeError)
    assert "unsupported protocol" in failure.reasons
    assert b"alert protocol version" in result.err
    assert result.code != 0


PY313_CLIENT = r"""
import socket, ssl, sys
port, psk, cipher = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers(cipher)
ctx.set_psk_client_callback(lambda hint: (None, psk))
with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
    with ctx.wrap_socket(raw) as tls:
        tls.sendall(b"ping\n")
        data = b""
        while b"focus-hello" not in data:
            chunk = tls.recv(100)
            if not chunk:
                break
            data += chunk
        print(tls.cipher()[0], tls.version(), data)
"""


@pytest.mark.parametrize("suite", SUITES)
@pytest_twisted.ensureDeferred
async def test_our_server_with_python313_ssl(suite: str) -> None:
    """Python 3.13's stdlib ssl PSK client (no identity) interoperates with our server."""
    probe = Probe(greeting=b"focus-hello\n", expect=b"ping")
    port = _listen(PSK, probe)
    try:
        proc = spawn(
            _reactor(),
            [PYTHON313, "-c", PY313_CLIENT, str(port.getHost().port), PSK.hex(), suite],
            timeout=LIMIT,
        )
        await deadline(_reactor(), probe.lost, LIMIT)
        result = await proc.ended
    finally:
        await port.stopListening()
    assert result.code == 0, result.err
    assert result.out.split()[:2] == [suite.encode(), b"TLSv1.2"]
    assert b"focus-hello" in result.out
    assert probe.cipher == suite
