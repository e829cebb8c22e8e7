"""The KMS's TLS certificate: the configured pair, or a local CA and server pair made once.

PROFILE.md section 3: HTTPS by default, the client checks the server certificate
against a configured CA. For a KMS without a configured certificate (development,
tests, `make run`) we make a small CA on first start, sign a server certificate with it,
and throw the CA's private key away: clients trust the CA file, and nobody can mint
another certificate under it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "ensure_self_signed", "generated_paths"]

_CA_DAYS = 3650
_SERVER_DAYS = 825  # the CA/Browser Forum ceiling; clients may enforce it


@attrs.frozen
class TlsFiles:
    certificate: Path
    key: Path
    ca: Path | None  # the generated CA, None for a configured pair
    created: bool


def generated_paths(config_path: Path) -> TlsFiles:
    """Where the generated files live: beside the config, named after it."""
    stem = config_path.parent / config_path.stem
    return TlsFiles(
        certificate=Path(f"{stem}.cert.pem"),
        key=Path(f"{stem}.key.pem"),
        ca=Path(f"{stem}.ca.pem"),
        created=False,
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically, with *mode* from the start (a key is never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def ensure_self_signed(config_path: Path, *, names: Iterable[str], now: float) -> TlsFiles:
    """Return the generated CA/server files beside *config_path*, making them if missing.

    *names* are the DNS names and IP addresses the server certificate covers (loopback
    addresses, `localhost`, the listen interface and the host of the KMS identity).
    """
    paths = generated_paths(config_path)
    assert paths.ca is not None
    if paths.certificate.exists() and paths.key.exists() and paths.ca.exists():
        return paths
    start = datetime.datetime.fromtimestamp(now, tz=datetime.UTC) - datetime.timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msrp-focus KMS local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msrp-focus KMS")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(
        paths.key,
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        0o600,
    )
    _write(paths.certificate, server_cert.public_bytes(pem), 0o644)
    _write(paths.ca, ca_cert.public_bytes(pem), 0o644)
    return attrs.evolve(paths, created=True)
