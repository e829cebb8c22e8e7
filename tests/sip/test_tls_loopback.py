"""SIP over TLS on loopback: our UAC and our UAS, certificate and key from PEM files."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, ssl

from focus.adapters.sip_transport import SipStack
from focus.sip.message import Response
from focus.sip.ua import OutgoingRequest, UAConfig

from .uas_app import ANSWER_SDP, TestUAS


def make_cert(tmp: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "focus.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("focus.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp / "cert.pem").write_bytes(cert_pem)
    (tmp / "key.pem").write_bytes(key_pem)
    return tmp / "cert.pem", tmp / "key.pem", cert_pem


def final(out_d: defer.Deferred[Response]) -> Any:
    def handler(out: OutgoingRequest, resp: Response) -> None:
        if resp.status >= 200 and not out_d.called:
            out_d.callback(resp)

    return handler


@pytest_twisted.inlineCallbacks
def test_invite_and_bye_over_tls(tmp_path: Path) -> Any:
    """A UAC stack INVITEs a UAS stack over TLS, gets 200 with SDP, ACKs and says BYE,
    all over one reused TLS connection."""
    from twisted.internet import reactor

    cert, key, cert_pem = make_cert(tmp_path)
    app = TestUAS(reactor)
    server = SipStack(reactor, UAConfig(host="127.0.0.1", listen=()), app, os.urandom)
    lp = yield server.listen_tls(0, "127.0.0.1", cert_path=str(cert), key_path=str(key))
    port = lp.getHost().port
    trust = ssl.Certificate.loadPEM(cert_pem)
    client = SipStack(
        reactor,
        UAConfig(host="127.0.0.1", listen=()),
        TestUAS(reactor),
        os.urandom,
        tls_client_options=lambda host: ssl.optionsForClientTLS("focus.test", trustRoot=trust),
    )
    client.listen_udp(0, "127.0.0.1")
    try:
        got: defer.Deferred[Response] = defer.Deferred()
        got.addTimeout(10, reactor)
        out = client.ua.invite(
            f"sip:room@127.0.0.1:{port};transport=tls",
            from_="<sip:alice@example.net>",
            now=client.now(),
            handler=final(got),
            body=b"v=0\r\n",
        )
        client.flush()
        resp = yield got
        assert resp.status == 200 and resp.body == ANSWER_SDP
        assert out.dialog is not None
        # Both ends saw the handshake complete: no handshake timer left to abort them.
        protos = [*server._connections.values(), *client._connections.values()]
        assert len(protos) == 2 and all(p._handshake is None for p in protos)
        bye: defer.Deferred[Response] = defer.Deferred()
        bye.addTimeout(10, reactor)
        client.ua.bye(out.dialog, client.now(), final(bye))
        client.flush()
        resp = yield bye
        assert resp.status == 200
        assert len(app.acks) == 1 and app.ended == ["bye"]
        assert len(server._connections) == 1
    finally:
        yield client.stop()
        yield server.stop()
