"""TLS-PSK (RFC 4279) connection creators for Twisted's TLS layer.

pyOpenSSL, which ``twisted.protocols.tls`` drives, has no PSK API. OpenSSL's
``SSL_CTX_set_psk_server_callback`` / ``SSL_CTX_set_psk_client_callback`` are
nevertheless exported by the cffi binding pyOpenSSL itself uses
(``OpenSSL._util.lib`` is cryptography's ``Binding().lib``), so this module installs
the two callbacks on ``Context._context`` and hands the configured context to
Twisted through ``IOpenSSLServerConnectionCreator`` /
``IOpenSSLClientConnectionCreator``. ``TLSMemoryBIOFactory`` (directly, or through
``wrapClientTLS``) then does all the I/O. Every untyped cffi object is confined to
the ``_binding()`` helper and the two callback factories below.

Profile (PROFILE.md §9, DESIGN.md "Decisions already taken"):

- TLS 1.2 only (min = max = 1.2). RFC 4279 §5.1 allows an empty ``psk_identity``;
  RFC 8446 §4.2.11 does not (``identity<1..2^16-1>``), so TLS 1.3 cannot carry this
  profile and is refused rather than negotiated.
- Identity sent: empty. Identity (and hint) received: ignored. The PSK is bound to
  the creator: one leg = one creator = one PSK. The server therefore learns which
  PSK to use from the socket the connection arrived on (one listening port per
  passive leg), never from the identity.
- No hint is sent (RFC 4279 §5.2: without an application profile servers SHOULD NOT
  send one and clients MUST ignore it).
- Cipher suites come from configuration, forward-secret first; NULL ciphers and
  RSA-PSK (which needs a server certificate, RFC 4279 §4) are refused when the
  configuration is built, not at the first handshake.
- No session tickets or session cache and no renegotiation: every leg has its own
  PSK and its own single connection, so there is nothing to resume.

Cost per leg (bench/README.md, "Where the time and the memory go"): everything that
depends only on the configuration (the ``SSL_CTX``: protocol pins, cipher list, groups,
DH parameters, options, key log) is built once per :class:`TLSPSKConfig` and role and
shared by every leg; per leg there is only the ``SSL`` object and its PSK. The binding
exports only the ``SSL_CTX``-level PSK callbacks, so one callback per role is installed
on the shared context and finds the leg's PSK through the ``SSL*`` it is called with:
pyOpenSSL's own ``Connection._reverse_mapping`` (the map its callbacks use) gives the
``Connection``, which carries the PSK its creator bound to it. The contexts run with
``SSL_MODE_RELEASE_BUFFERS``, so an idle leg gives its record buffers back.

"Connected" is not "keyed": Twisted reports ``connectionMade`` before the handshake.
A protocol must wait for ``IHandshakeListener.handshakeCompleted``; a failed
handshake (wrong PSK shows up as ``bad record mac`` at Finished) arrives as
``connectionLost`` with an ``OpenSSL.SSL.Error``, which :func:`classify_tls_failure`
turns into a :class:`TLSPSKHandshakeError`.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Callable
from typing import Any, Final, cast

import attrs
from OpenSSL import SSL
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer  # type: ignore[import-untyped]

__all__ = [
    "DEFAULT_CIPHERS",
    "DEFAULT_GROUPS",
    "FFDHE2048_PEM",
    "CipherListError",
    "TLSPSKClientCreator",
    "TLSPSKConfig",
    "TLSPSKError",
    "TLSPSKHandshakeError",
    "TLSPSKServerCreator",
    "TLSPSKUnavailableError",
    "check_psk_support",
    "classify_tls_failure",
    "expand_cipher_list",
    "ssl_error_reasons",
]

#: PROFILE.md §9 *(config)*: forward-secret suites first, one plain-PSK fallback.
DEFAULT_CIPHERS: Final = (
    "ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES128-CBC-SHA256:"
    "DHE-PSK-AES128-GCM-SHA256:PSK-AES128-GCM-SHA256"
)

#: ECDHE groups offered/accepted for the ECDHE-PSK suites (RFC 5489 + RFC 8422 §5.1.1).
DEFAULT_GROUPS: Final = "X25519:P-256:P-384"

#: RFC 7919 Appendix A.1 ffdhe2048, PKCS#3 PEM as printed by
#: ``openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048``. A named,
#: published group: nothing secret and nothing to generate at start-up.
FFDHE2048_PEM: Final = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

# RFC 4279 §5.3: implementations MUST support PSKs up to 64 octets. The TEK of
# PROFILE.md §7 is 16 or 32 octets; below 16 octets RFC 9257 §4's 128-bit entropy
# floor cannot hold.
_MIN_PSK_LEN: Final = 16
_MAX_PSK_LEN: Final = 64

_REQUIRED_FUNCTIONS: Final = (
    "SSL_CTX_set_psk_server_callback",
    "SSL_CTX_set_psk_client_callback",
    "BIO_new_mem_buf",
    "PEM_read_bio_DHparams",
    "SSL_CTX_set_tmp_dh",
    "SSL_CTX_set1_curves_list",
)

# The C signatures as declared by cryptography's cdef (verified on this machine,
# DESIGN.md): server gets the identity and fills the PSK; client gets the hint and
# fills a NUL-terminated identity and the PSK. Both return the PSK length, 0 = fail.
_SERVER_CB_TYPE: Final = "unsigned int(*)(SSL *, char *, unsigned char *, unsigned int)"
_CLIENT_CB_TYPE: Final = (
    "unsigned int(*)(SSL *, char *, char *, unsigned int, unsigned char *, unsigned int)"
)

_log = Logger(namespace="focus.tls_psk")


class TLSPSKError(Exception):
    """Root of this module's errors. Messages never carry key material."""


class TLSPSKUnavailableError(TLSPSKError):
    """The OpenSSL binding in this process lacks a function TLS-PSK needs."""


class CipherListError(TLSPSKError, ValueError):
    """A configured cipher list is empty, unknown to OpenSSL, or not allowed here."""


class TLSPSKHandshakeError(TLSPSKError):
    """The TLS-PSK handshake failed (wrong PSK, no common suite, TLS 1.3-only peer…).

    ``reasons`` are OpenSSL's reason strings (``"bad record mac"``…): diagnostic
    text from the library, never key material.
    """

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = reasons
        super().__init__("TLS-PSK handshake failed: " + ("; ".join(reasons) or "no reason"))


# --- the one place that touches untyped cffi objects -----------------------------


@functools.cache
def _binding() -> tuple[Any, Any]:
    """Return ``(ffi, lib)`` of the binding pyOpenSSL uses (untyped cffi objects)."""
    from OpenSSL import _util

    return cast(Any, _util.ffi), cast(Any, _util.lib)


def check_psk_support() -> None:
    """Fail fast, with a clear message, when the OpenSSL binding cannot do TLS-PSK.

    Called by every creator; call it at service start-up to fail before any leg.
    """
    ffi, lib = _binding()
    missing = [name for name in _REQUIRED_FUNCTIONS if not hasattr(lib, name)]
    if missing:
        version = ffi.string(lib.OpenSSL_version(0)).decode("ascii", "replace")
        raise TLSPSKUnavailableError(
            f"the OpenSSL binding used by pyOpenSSL ({version}) does not export "
            f"{', '.join(missing)}; TLS-PSK legs need cryptography/pyOpenSSL "
            "versions inside the ranges pinned in setup.cfg"
        )


def _raw_context(context: SSL.Context) -> Any:
    # pyOpenSSL keeps the SSL_CTX* in a private attribute; there is no public
    # accessor. This is the documented trade-off of DESIGN.md.
    return context._context


#: Attribute of an ``SSL.Connection`` holding the PSK its creator bound to it.
_PSK_ATTR: Final = "_focus_tls_psk"


def _connection_psk(ssl: Any) -> bytes | None:
    """The PSK bound to the connection of ``ssl`` (an ``SSL*``), or ``None``."""
    connection = SSL.Connection._reverse_mapping.get(ssl)
    if connection is None:
        return None
    psk: bytes | None = getattr(connection, _PSK_ATTR, None)
    return psk


def _server_cb(ssl: Any, _identity: Any, psk_out: Any, max_psk_len: int) -> int:
    # RFC 4279 §5.1 allows an empty identity; the profile ignores whatever the client
    # sent: the PSK was chosen by the socket this connection came in on, and bound to
    # the connection by that leg's creator.
    psk = _connection_psk(ssl)
    if psk is None or len(psk) > max_psk_len:
        return 0
    _binding()[0].memmove(psk_out, psk, len(psk))
    return len(psk)


def _client_cb(
    ssl: Any,
    _hint: Any,
    identity_out: Any,
    max_identity_len: int,
    psk_out: Any,
    max_psk_len: int,
) -> int:
    # Any hint is ignored (RFC 4279 §5.2). The identity is the empty string, written as
    # its NUL terminator (the callback contract is a C string).
    psk = _connection_psk(ssl)
    if psk is None or max_identity_len < 1 or len(psk) > max_psk_len:
        return 0
    ffi = _binding()[0]
    ffi.memmove(identity_out, b"\0", 1)
    ffi.memmove(psk_out, psk, len(psk))
    return len(psk)


@functools.cache
def _psk_callback(server: bool) -> Any:
    """The one ``ffi.callback`` per role (RFC 4279 §2), shared by every context; it lives
    as long as the process, so OpenSSL's raw pointer to it never dangles."""
    ffi, _ = _binding()
    if server:
        return ffi.callback(_SERVER_CB_TYPE, _server_cb, onerror=_callback_error)
    return ffi.callback(_CLIENT_CB_TYPE, _client_cb, onerror=_callback_error)


def _callback_error(exc_type: Any, exc_value: Any, _tb: Any) -> int:
    """cffi ``onerror``: an exception inside a PSK callback means "no PSK" (0).

    The exception is logged by type only; its text could, in principle, quote the
    buffers the callback was handling.
    """
    _log.error("TLS-PSK callback raised {exc_type}", exc_type=getattr(exc_type, "__name__", "?"))
    return 0


def _load_dh_pem(context: SSL.Context, pem: bytes) -> None:
    """``Context.load_tmp_dh`` without a file: same three OpenSSL calls, on memory."""
    ffi, lib = _binding()
    bio = lib.BIO_new_mem_buf(pem, len(pem))
    if bio == ffi.NULL:
        raise TLSPSKError("cannot allocate a memory BIO for the DH parameters")
    bio = ffi.gc(bio, lib.BIO_free)
    dh = lib.PEM_read_bio_DHparams(bio, ffi.NULL, ffi.NULL, ffi.NULL)
    if dh == ffi.NULL:
        lib.ERR_clear_error()
        raise TLSPSKError("the built-in ffdhe2048 parameters did not parse")
    dh = ffi.gc(dh, lib.DH_free)
    if lib.SSL_CTX_set_tmp_dh(_raw_context(context), dh) != 1:
        lib.ERR_clear_error()
        raise TLSPSKError("OpenSSL refused the DH parameters")


def _set_groups(context: SSL.Context, groups: str) -> None:
    _ffi, lib = _binding()
    if lib.SSL_CTX_set1_curves_list(_raw_context(context), groups.encode("ascii")) != 1:
        lib.ERR_clear_error()
        raise TLSPSKError(f"OpenSSL does not know the ECDHE groups {groups!r}")


# --- configuration ----------------------------------------------------------------


def expand_cipher_list(ciphers: str) -> tuple[str, ...]:
    """Return the TLS 1.2 suites OpenSSL selects for ``ciphers``, in preference order.

    Raises :class:`CipherListError` if the string names nothing OpenSSL knows, or if
    any selected suite is a NULL cipher, RSA-PSK, or not PSK-authenticated at all
    (PROFILE.md §9; DIGEST.md §7.2: the alias ``PSK`` silently includes RSA-PSK).

    The answer depends only on the string and the OpenSSL in this process, so it is
    remembered: a :class:`TLSPSKConfig` is re-validated for every leg that picks a
    room's cipher list (``attrs.evolve``), and expanding means building a throw-away
    ``SSL_CTX`` and ``SSL``.
    """
    return _expand_cipher_list(ciphers)


@functools.lru_cache(maxsize=64)
def _expand_cipher_list(ciphers: str) -> tuple[str, ...]:
    tokens = [t for t in ciphers.split(":") if t]
    for token in tokens:
        if token.startswith(("!", "-")):
            continue
        upper = token.lstrip("+").upper()
        if "NULL" in upper:
            raise CipherListError(f"cipher list entry {token!r}: NULL ciphers are not allowed")
        if upper.startswith(("RSA-PSK", "KRSAPSK")):
            raise CipherListError(
                f"cipher list entry {token!r}: RSA-PSK suites need a server certificate"
            )
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError) as exc:
        raise CipherListError(f"OpenSSL selects no cipher suite from {ciphers!r}") from exc
    # TLS 1.3 suites ("TLS_AES_…") are listed too but can never be negotiated: the
    # contexts built here are pinned to TLS 1.2.
    suites = tuple(
        name
        for name in SSL.Connection(context, None).get_cipher_list()
        if not name.startswith("TLS_")
    )
    if not suites:
        raise CipherListError(f"OpenSSL selects no TLS 1.2 cipher suite from {ciphers!r}")
    for name in suites:
        if "NULL" in name or name.startswith("RSA-PSK") or "PSK" not in name:
            raise CipherListError(
                f"cipher list {ciphers!r} selects {name}, which is not an allowed "
                "TLS-PSK suite (PSK, DHE-PSK or ECDHE-PSK with encryption only)"
            )
    return suites


def _check_ciphers(_instance: object, _attribute: object, value: str) -> None:
    expand_cipher_list(value)


def _check_groups(_instance: object, _attribute: object, value: str) -> None:
    _known_groups(value)


@functools.lru_cache(maxsize=64)
def _known_groups(groups: str) -> None:
    """Raise unless OpenSSL knows ``groups`` (a failure is not remembered, a success is)."""
    _set_groups(SSL.Context(SSL.TLS_METHOD), groups)


def _check_dh_path(_instance: object, _attribute: object, value: pathlib.Path | None) -> None:
    if value is not None:
        _load_dh_file(SSL.Context(SSL.TLS_METHOD), value)


def _load_dh_file(context: SSL.Context, path: pathlib.Path) -> None:
    try:
        context.load_tmp_dh(str(path))
    except (SSL.Error, OSError) as exc:
        raise TLSPSKError(f"cannot load DH parameters (PEM) from {path}") from exc


@attrs.frozen
class TLSPSKConfig:
    """TLS settings shared by every leg; validated when built, so a bad cipher list,
    group list or DH file fails at start-up, not at the first handshake.

    - ``ciphers``: OpenSSL cipher string, PROFILE.md §9 *(config)*.
    - ``groups``: ECDHE groups for the ECDHE-PSK suites.
    - ``dh_params_path``: PEM DH parameters for DHE-PSK; ``None`` = built-in
      RFC 7919 ffdhe2048.
    - ``keylog_path``: append NSS key log lines (SSLKEYLOGFILE format) here. A
      debugging aid that lets anyone holding the file decrypt the legs: off unless an
      operator sets it explicitly (PROFILE.md §9).
    """

    ciphers: str = attrs.field(default=DEFAULT_CIPHERS, validator=_check_ciphers)
    groups: str = attrs.field(default=DEFAULT_GROUPS, validator=_check_groups)
    dh_params_path: pathlib.Path | None = attrs.field(default=None, validator=_check_dh_path)
    keylog_path: pathlib.Path | None = None


# --- the creators -----------------------------------------------------------------


def _check_psk(psk: bytes) -> None:
    if not isinstance(psk, bytes):
        raise TypeError("the PSK must be bytes")
    if not _MIN_PSK_LEN <= len(psk) <= _MAX_PSK_LEN:
        # The length is not secret (the TEK length follows from the MIKEY suite).
        raise TLSPSKError(
            f"PSK length {len(psk)} outside {_MIN_PSK_LEN}..{_MAX_PSK_LEN} octets "
            "(RFC 4279 §5.3, RFC 9257 §4)"
        )


def _keylog_writer(path: pathlib.Path) -> Callable[[SSL.Connection, bytes], None]:
    def write(_conn: SSL.Connection, line: bytes) -> None:
        # One short append per secret; only ever enabled for debugging. An unwritable
        # file must not break the handshake (this runs inside an OpenSSL callback).
        # The file lets anyone decrypt every leg: create it readable by us only.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as f:
                f.write(line + b"\n")
        except OSError as exc:
            _log.error(
                "cannot append to the TLS key log {path}: {why}", path=str(path), why=exc.strerror
            )

    return write


def _build_context(config: TLSPSKConfig, *, server: bool) -> SSL.Context:
    """A TLS 1.2-only context for ``config`` and role carrying the role's PSK callback.

    Shared by every leg with that configuration (:func:`_shared_context`); nothing in it
    is per leg: the PSK comes from the connection (:func:`_connection_psk`).
    """
    check_psk_support()
    _, lib = _binding()
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(
        SSL.OP_NO_TICKET
        | SSL.OP_NO_COMPRESSION
        | SSL.OP_NO_RENEGOTIATION
        | SSL.OP_CIPHER_SERVER_PREFERENCE
    )
    # An idle leg holds no read/write record buffers (up to ~34 KiB per connection).
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    context.set_cipher_list(config.ciphers.encode("ascii"))
    _set_groups(context, config.groups)
    raw = _raw_context(context)
    psk_callback = _psk_callback(server)
    if server:
        if config.dh_params_path is not None:
            _load_dh_file(context, config.dh_params_path)
        else:
            _load_dh_pem(context, FFDHE2048_PEM)
        lib.SSL_CTX_set_psk_server_callback(raw, psk_callback)
    else:
        lib.SSL_CTX_set_psk_client_callback(raw, psk_callback)
    if config.keylog_path is not None:
        _log.warn(
            "TLS key log enabled ({path}): whoever reads it can decrypt these legs",
            path=str(config.keylog_path),
        )
        context.set_keylog_callback(_keylog_writer(config.keylog_path))
    return context


@functools.lru_cache(maxsize=64)
def _shared_context(config: TLSPSKConfig, server: bool) -> SSL.Context:
    """One context per configuration and role (configurations are few: the focus-wide
    one and the rooms' own cipher lists); the cache keeps it, and so its settings,
    alive for every leg built on it."""
    return _build_context(config, server=server)


def _connection(context: SSL.Context, psk: bytes, tls_protocol: object) -> SSL.Connection:
    connection = SSL.Connection(context, None)
    setattr(connection, _PSK_ATTR, psk)
    connection.set_app_data(tls_protocol)
    return connection


@implementer(IOpenSSLServerConnectionCreator)
class TLSPSKServerCreator:
    """TLS-PSK server role for one passive leg: ``TLSMemoryBIOFactory(creator, False, f)``.

    ``psk`` is the leg's TEK (PROFILE.md §7); it is held only by the creator and the
    connections it makes, and never appears in ``repr``, logs or errors.
    """

    __slots__ = ("_config", "_context", "_psk")

    def __init__(self, psk: bytes, config: TLSPSKConfig | None = None) -> None:
        check_psk_support()
        _check_psk(psk)
        self._config = config if config is not None else TLSPSKConfig()
        self._psk = psk
        self._context = _shared_context(self._config, True)

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        """Twisted's hook: a fresh server-side connection bound to the leg's PSK."""
        return _connection(self._context, self._psk, tlsProtocol)

    def __repr__(self) -> str:
        return f"<TLSPSKServerCreator ciphers={self._config.ciphers!r}>"


@implementer(IOpenSSLClientConnectionCreator)
class TLSPSKClientCreator:
    """TLS-PSK client role for one active leg: ``wrapClientTLS(creator, endpoint)``.

    Sends an empty identity and ignores any hint (RFC 4279 §5.1, §5.2).
    """

    __slots__ = ("_config", "_context", "_psk")

    def __init__(self, psk: bytes, config: TLSPSKConfig | None = None) -> None:
        check_psk_support()
        _check_psk(psk)
        self._config = config if config is not None else TLSPSKConfig()
        self._psk = psk
        self._context = _shared_context(self._config, False)

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        """Twisted's hook: a fresh client-side connection bound to the leg's PSK."""
        return _connection(self._context, self._psk, tlsProtocol)

    def __repr__(self) -> str:
        return f"<TLSPSKClientCreator ciphers={self._config.ciphers!r}>"


# --- failures ---------------------------------------------------------------------


def ssl_error_reasons(error: SSL.Error) -> tuple[str, ...]:
    """OpenSSL's reason strings from an ``SSL.Error`` (library text, no key material)."""
    reasons: list[str] = []
    for item in error.args[0] if error.args and isinstance(error.args[0], list) else []:
        if isinstance(item, tuple) and item:
            reasons.append(str(item[-1]))
    return tuple(reasons)


def classify_tls_failure(reason: Failure, *, handshake_done: bool) -> TLSPSKError | None:
    """Translate a ``connectionLost`` reason into this module's error, or ``None``.

    ``None`` means the loss is not a TLS failure (plain TCP close or reset); the
    caller keeps its own classification for that.
    """
    error = reason.value
    if not isinstance(error, SSL.Error):
        return None
    reasons = ssl_error_reasons(error)
    if not handshake_done:
        return TLSPSKHandshakeError(reasons)
    return TLSPSKError("TLS record layer failure: " + ("; ".join(reasons) or "no reason"))
