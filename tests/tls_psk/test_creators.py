"""TLS-PSK creators in memory: handshakes through TLSMemoryBIOFactory, config checks."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet import protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, connect

from focus import tls_psk
from focus.tls_psk import (
    DEFAULT_CIPHERS,
    CipherListError,
    TLSPSKClientCreator,
    TLSPSKConfig,
    TLSPSKError,
    TLSPSKHandshakeError,
    TLSPSKServerCreator,
    TLSPSKUnavailableError,
    check_psk_support,
    classify_tls_failure,
    expand_cipher_list,
)
from tests.tls_psk._peers import OPENSSL, Probe

PSK = bytes(range(32))


def handshake(
    server: Any, client: Any, server_probe: Probe | None = None, client_probe: Probe | None = None
) -> tuple[Probe, Probe]:
    """Run one TLS connection between two creators entirely in memory."""
    clock = Clock()
    sp = server_probe or Probe(greeting=b"from-server")
    cp = client_probe or Probe(greeting=b"from-client")
    sf = TLSMemoryBIOFactory(server, False, protocol.Factory.forProtocol(lambda: sp), clock)
    cf = TLSMemoryBIOFactory(client, True, protocol.Factory.forProtocol(lambda: cp), clock)
    s, c = sf.buildProtocol(None), cf.buildProtocol(None)
    pump = connect(s, FakeTransport(s, False), c, FakeTransport(c, True), clock=clock)
    pump.flush()
    return sp, cp


def with_server_callback(callback: Any) -> SSL.Context:
    """A fresh (unshared) server context whose PSK callback is ``callback``."""
    context = tls_psk._build_context(TLSPSKConfig(), server=True)
    _ffi, lib = tls_psk._binding()
    lib.SSL_CTX_set_psk_server_callback(context._context, callback)
    context._test_callback = callback  # type: ignore[attr-defined]  # keep it alive
    return context


@pytest.mark.parametrize("suite", DEFAULT_CIPHERS.split(":"))
def test_matching_psk_keys_the_connection(suite: str) -> None:
    """Both roles holding the same PSK complete a TLS 1.2 handshake on each default suite."""
    config = TLSPSKConfig(ciphers=suite)
    sp, cp = handshake(TLSPSKServerCreator(PSK, config), TLSPSKClientCreator(PSK, config))
    assert sp.handshake_done and cp.handshake_done
    assert (sp.cipher, sp.version) == (suite, "TLSv1.2")
    assert sp.received == b"from-client"
    assert cp.received == b"from-server"


def test_server_preference_picks_forward_secret_suite() -> None:
    """With the default list on both sides the first (ECDHE-PSK) suite is negotiated."""
    sp, _ = handshake(TLSPSKServerCreator(PSK), TLSPSKClientCreator(PSK))
    assert sp.cipher == "ECDHE-PSK-CHACHA20-POLY1305"


def test_wrong_psk_fails_both_sides_with_typed_error() -> None:
    """A different PSK on the client fails the handshake on both sides, never keying them."""
    sp, cp = handshake(TLSPSKServerCreator(PSK), TLSPSKClientCreator(bytes(32)))
    assert not sp.handshake_done and not cp.handshake_done
    assert sp.received == cp.received == b""
    for probe in (sp, cp):
        assert probe.reason is not None
        error = classify_tls_failure(probe.reason, handshake_done=False)
        assert isinstance(error, TLSPSKHandshakeError)
        assert any("bad record mac" in r for r in error.reasons)


def test_client_sends_empty_identity_and_server_ignores_it() -> None:
    """The identity reaching the server callback is empty (RFC 4279 §5.1 allows it)."""
    seen: list[bytes] = []
    ffi, _lib = tls_psk._binding()

    server = TLSPSKServerCreator(PSK)
    # A private context whose callback observes the identity, then answers as usual.

    def spy(ssl: Any, identity: Any, out: Any, max_len: int) -> int:
        seen.append(ffi.string(identity))
        return tls_psk._server_cb(ssl, identity, out, max_len)

    spy_cb = ffi.callback(tls_psk._SERVER_CB_TYPE, spy)
    server._context = with_server_callback(spy_cb)
    sp, _ = handshake(server, TLSPSKClientCreator(PSK))
    assert sp.handshake_done
    assert seen == [b""]


def test_tls13_only_client_is_refused_in_memory() -> None:
    """A TLS 1.3-only pyOpenSSL client gets no connection from our TLS 1.2-only server."""

    class TLS13Only:
        def clientConnectionForTLS(self, tls: object) -> SSL.Connection:
            ctx = SSL.Context(SSL.TLS_METHOD)
            ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
            return SSL.Connection(ctx, None)

    from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
    from zope.interface import directlyProvides

    creator = TLS13Only()
    directlyProvides(creator, IOpenSSLClientConnectionCreator)
    sp, _ = handshake(TLSPSKServerCreator(PSK), creator)
    assert not sp.handshake_done
    error = classify_tls_failure(sp.reason, handshake_done=False)  # type: ignore[arg-type]
    assert isinstance(error, TLSPSKHandshakeError)
    assert "unsupported protocol" in error.reasons


@pytest.mark.parametrize(
    ("ciphers", "why"),
    [
        ("PSK-NULL-SHA256", "NULL"),
        ("ECDHE-PSK-NULL-SHA", "NULL"),
        ("RSA-PSK-AES128-GCM-SHA256", "RSA-PSK"),
        ("PSK", "RSA-PSK"),  # the alias includes RSA-PSK (DIGEST §7.2)
        ("aPSK", "NULL"),  # the alias includes the NULL suites
        ("AES128-GCM-SHA256", "not an allowed"),
        ("NO-SUCH-SUITE", "no cipher suite"),
        ("", "no cipher suite"),
    ],
)
def test_bad_cipher_lists_are_refused_at_config_time(ciphers: str, why: str) -> None:
    """NULL, RSA-PSK, non-PSK and unknown cipher lists fail when the config is built."""
    with pytest.raises(CipherListError, match=why):
        TLSPSKConfig(ciphers=ciphers)


def test_default_cipher_list_expands_to_the_four_profile_suites() -> None:
    """The PROFILE §9 default selects exactly its four suites, in order."""
    assert expand_cipher_list(DEFAULT_CIPHERS) == tuple(DEFAULT_CIPHERS.split(":"))
    assert expand_cipher_list("aPSK:!eNULL:!aNULL")  # a safe alias expression is accepted


@pytest.mark.parametrize("length", [0, 8, 15, 65])
def test_psk_length_outside_range_is_refused(length: int) -> None:
    """PSKs shorter than 16 or longer than 64 octets are refused (RFC 4279 §5.3)."""
    with pytest.raises(TLSPSKError, match="PSK length"):
        TLSPSKServerCreator(b"k" * length)
    with pytest.raises(TLSPSKError, match="PSK length"):
        TLSPSKClientCreator(b"k" * length)


def test_psk_never_in_repr_or_config() -> None:
    """Neither creator's repr shows the PSK bytes in any encoding."""
    psk = b"\xa5" * 16
    for creator in (TLSPSKServerCreator(psk), TLSPSKClientCreator(psk)):
        text = repr(creator) + repr(creator._config)
        assert psk.hex() not in text.lower()
        assert repr(psk) not in text


def test_missing_binding_functions_fail_with_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A binding without the PSK functions fails at start-up, naming what is missing."""
    ffi, lib = tls_psk._binding()

    class NoPSK:
        def __getattr__(self, name: str) -> Any:
            if name.startswith("SSL_CTX_set_psk"):
                raise AttributeError(name)
            return getattr(lib, name)

    monkeypatch.setattr(tls_psk, "_binding", lambda: (ffi, NoPSK()))
    with pytest.raises(TLSPSKUnavailableError, match="SSL_CTX_set_psk_server_callback"):
        check_psk_support()
    with pytest.raises(TLSPSKUnavailableError, match="SSL_CTX_set_psk_client_callback"):
        TLSPSKClientCreator(PSK)


def test_callback_exception_means_no_psk() -> None:
    """An exception inside a PSK callback returns 0 (no PSK): the handshake fails cleanly."""
    ffi, _ = tls_psk._binding()

    def broken(*_args: Any) -> int:
        raise RuntimeError("boom")

    cb = ffi.callback(tls_psk._SERVER_CB_TYPE, broken, onerror=tls_psk._callback_error)
    server = TLSPSKServerCreator(PSK)
    server._context = with_server_callback(cb)
    sp, cp = handshake(server, TLSPSKClientCreator(PSK))
    assert not sp.handshake_done and not cp.handshake_done
    assert isinstance(classify_tls_failure(sp.reason, handshake_done=False), TLSPSKHandshakeError)  # type: ignore[arg-type]


def test_keylog_written_only_when_configured(tmp_path: pathlib.Path) -> None:
    """An NSS key log line per connection is written when, and only when, a path is set."""
    keylog = tmp_path / "keys.log"
    config = TLSPSKConfig(keylog_path=keylog)
    sp, _ = handshake(TLSPSKServerCreator(PSK, config), TLSPSKClientCreator(PSK))
    assert sp.handshake_done
    lines = keylog.read_bytes().splitlines()
    assert lines and all(line.startswith(b"CLIENT_RANDOM ") for line in lines)
    assert PSK.hex().encode() not in keylog.read_bytes()
    # The key log decrypts every leg: only its owner may read it.
    assert keylog.stat().st_mode & 0o077 == 0

    other = tmp_path / "unused.log"
    handshake(TLSPSKServerCreator(PSK), TLSPSKClientCreator(PSK))
    assert not other.exists()
    assert len(keylog.read_bytes().splitlines()) == len(lines)


def test_dh_parameters_from_file(tmp_path: pathlib.Path) -> None:
    """A configured DH parameter file is loaded and used by the DHE-PSK suite."""
    pem = tmp_path / "dh.pem"
    pem.write_bytes(tls_psk.FFDHE2048_PEM)
    config = TLSPSKConfig(ciphers="DHE-PSK-AES128-GCM-SHA256", dh_params_path=pem)
    sp, _ = handshake(TLSPSKServerCreator(PSK, config), TLSPSKClientCreator(PSK, config))
    assert sp.cipher == "DHE-PSK-AES128-GCM-SHA256"


def test_builtin_dh_parameters_are_rfc7919_ffdhe2048() -> None:
    """The shipped DH group is byte for byte what openssl prints for RFC 7919 ffdhe2048."""
    out = subprocess.run(
        [OPENSSL, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout
    assert out == tls_psk.FFDHE2048_PEM


def test_non_tls_loss_is_not_a_tls_failure() -> None:
    """A plain TCP loss is left to the caller: classify_tls_failure returns None."""
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    assert classify_tls_failure(Failure(ConnectionLost()), handshake_done=True) is None


def test_unknown_groups_are_refused_at_config_time() -> None:
    """An ECDHE group list OpenSSL does not know fails when the config is built."""
    with pytest.raises(TLSPSKError, match="groups"):
        TLSPSKConfig(groups="NOT-A-CURVE")


def test_unreadable_dh_file_is_refused_at_config_time(tmp_path: pathlib.Path) -> None:
    """A DH parameter path that is missing or not PEM fails when the config is built."""
    with pytest.raises(TLSPSKError, match="DH parameters"):
        TLSPSKConfig(dh_params_path=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a pem file")
    with pytest.raises(TLSPSKError, match="DH parameters"):
        TLSPSKConfig(dh_params_path=garbage)


def test_unwritable_keylog_does_not_break_the_handshake(tmp_path: pathlib.Path) -> None:
    """A key log path that cannot be written is logged; the handshake still completes."""
    config = TLSPSKConfig(keylog_path=tmp_path / "missing-dir" / "keys.log")
    sp, cp = handshake(TLSPSKServerCreator(PSK, config), TLSPSKClientCreator(PSK))
    assert sp.handshake_done and cp.handshake_done


def test_callback_lives_as_long_as_the_connection() -> None:
    """The PSK callback survives the creator: a connection alone keeps its context and
    callback alive through garbage collection and still completes the handshake."""
    import gc

    server_conn = TLSPSKServerCreator(PSK).serverConnectionForTLS(None)
    client_conn = TLSPSKClientCreator(PSK).clientConnectionForTLS(None)
    gc.collect()
    server_conn.set_accept_state()
    client_conn.set_connect_state()
    for _ in range(10):
        for conn, peer in ((client_conn, server_conn), (server_conn, client_conn)):
            with contextlib.suppress(SSL.WantReadError):
                conn.do_handshake()
            with contextlib.suppress(SSL.WantReadError):
                peer.bio_write(conn.bio_read(65536))
    assert server_conn.get_cipher_name() == "ECDHE-PSK-CHACHA20-POLY1305"
    client_conn.send(b"keyed")
    server_conn.bio_write(client_conn.bio_read(65536))
    assert server_conn.recv(100) == b"keyed"


def test_legs_of_one_config_share_a_context_but_not_a_psk() -> None:
    """Two legs with the same config share one SSL_CTX, yet each connection keys only
    with its own creator's PSK (the shared callback reads the PSK per connection)."""
    other = bytes(range(100, 132))
    a, b = TLSPSKServerCreator(PSK), TLSPSKServerCreator(other)
    assert a._context is b._context
    assert TLSPSKClientCreator(PSK)._context is TLSPSKClientCreator(other)._context
    sp, cp = handshake(a, TLSPSKClientCreator(other))
    assert not sp.handshake_done and not cp.handshake_done
    sp, cp = handshake(b, TLSPSKClientCreator(other))
    assert sp.handshake_done and cp.handshake_done
    sp, cp = handshake(a, TLSPSKClientCreator(PSK))
    assert sp.handshake_done and cp.handshake_done


def test_contexts_differ_per_config_and_release_idle_buffers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another cipher list gets its own context; every context is built with
    SSL_MODE_RELEASE_BUFFERS so idle legs hold no record buffers."""
    one = TLSPSKServerCreator(PSK)._context
    two = TLSPSKServerCreator(PSK, TLSPSKConfig(ciphers="PSK-AES128-GCM-SHA256"))._context
    assert one is not two
    modes: list[int] = []
    real = SSL.Context.set_mode

    def spy(self: SSL.Context, mode: int) -> int:
        modes.append(mode)
        return real(self, mode)

    monkeypatch.setattr(SSL.Context, "set_mode", spy)
    for server in (True, False):
        modes.clear()
        tls_psk._build_context(TLSPSKConfig(), server=server)
        assert any(m & SSL.MODE_RELEASE_BUFFERS for m in modes)


def test_connection_without_bound_psk_gets_no_psk() -> None:
    """A connection made on the shared context without a creator's PSK cannot key."""
    server = TLSPSKServerCreator(PSK)
    bare = SSL.Connection(server._context, None)
    client = TLSPSKClientCreator(PSK).clientConnectionForTLS(None)
    bare.set_accept_state()
    client.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        client.do_handshake()
    bare.bio_write(client.bio_read(65536))
    with pytest.raises(SSL.Error):
        bare.do_handshake()
