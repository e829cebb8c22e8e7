"""The focus configuration (``focus.toml``): model and loader.

Pure: no Twisted, no clock, no randomness; the only I/O is reading the file it is given
(and a ``kms.key_file`` it names).  Every key is documented in ``focus.example.toml``
next to this module, which is also a valid configuration for loopback use.

Errors name the file, the line and the key, ``focus.toml:12: kms.timeout: must be a
positive number``, the way the policy loader does (the key-to-line map is the policy
loader's ``policies.key_lines``/``line_of``, reused rather than copied).  Unknown keys are errors:
a typo must never leave a default silently in force.  Relative paths are relative to
the directory of the configuration file.

Sections: ``[sip]`` with ``[[sip.listen]]`` endpoints, ``[msrp]``, ``[kms]``,
``[mikey]``, ``[tls]``, ``[policy]``, ``[log]`` and the optional ``[admin]``.  Only
``[kms]`` (base URL, KMS identity, the focus's account and its key) and ``policy.file``
have no default; without ``[admin]`` there is no admin API.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from focus.keying import KeyingSettings
from mikey import SUITE_128, SUITE_256, TLS_PROT_TYPE, Suite

# The policy loader's TOML key-to-line scanner: one implementation for both files.
from policies import SourceError, key_lines, line_of, read_source
from policies.model import DEFAULT_CIPHER_SUITES

__all__ = [
    "MAX_CONFIG_SIZE",
    "AdminConfig",
    "ConfigError",
    "FocusConfig",
    "KmsSettings",
    "LogSettings",
    "MikeySettings",
    "MsrpSettings",
    "SipListen",
    "SipSettings",
    "TlsSettings",
    "example_config_path",
    "load_config",
    "parse_config",
]

MAX_CONFIG_SIZE = 256 * 1024
"""Bytes; a configuration file, not data."""

KeyPath = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration that cannot be used: ``<file>[:<line>]: [<key>: ]<reason>``.

    Never carries a key's value (the KMS key is a secret).
    """

    def __init__(
        self, reason: str, *, filename: str, line: int | None = None, key: str | None = None
    ) -> None:
        self.reason = reason
        self.filename = filename
        self.line = line
        self.key = key
        where = filename if line is None else f"{filename}:{line}"
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


# ------------------------------------------------------------------------------ model

_TRANSPORTS = ("UDP", "TCP", "TLS")


@attrs.frozen
class SipListen:
    """One SIP listening endpoint (RFC 3261 §18).  TLS needs a certificate and key."""

    transport: str
    host: str = "127.0.0.1"
    port: int = 5060
    cert_file: Path | None = None
    key_file: Path | None = None


@attrs.frozen
class SipSettings:
    """SIP: where to listen, which domain the rooms live in, whom to trust.

    ``domain`` is the host of the room URIs (Request-URIs with another host get 404);
    ``advertised_host`` goes into Via and Contact (default: the first listen host);
    ``trusted_peers`` are the source addresses whose P-Asserted-Identity is believed
    (RFC 3325 §4, PROFILE §1); ``outbound_proxy`` a SIP URI every request we originate
    is routed through (§8.1.2 pre-loaded route).
    """

    listen: tuple[SipListen, ...] = (
        SipListen("UDP", "127.0.0.1", 5060),
        SipListen("TCP", "127.0.0.1", 5060),
    )
    domain: str = "conf.example.net"
    advertised_host: str | None = None
    trusted_peers: tuple[str, ...] = ()
    outbound_proxy: str | None = None
    user_agent: str = "msrp-focus"
    idle_timeout: float = 300.0

    @property
    def host(self) -> str:
        return self.advertised_host or self.listen[0].host


@attrs.frozen
class MsrpSettings:
    """MSRP legs: where passive legs listen (one port each from the range), timeouts and
    the per-leg outgoing queue bound."""

    host: str = "127.0.0.1"
    advertised_host: str | None = None
    port_min: int = 20000
    port_max: int = 20999
    leg_timeout: float = 40.0
    """Seconds from the 200 OK until the TLS-PSK leg is up; covers the ACK (up to 64*T1
    = 32 s) plus the connect and handshake."""
    max_queued_bytes: int = 1024 * 1024
    max_message_size: int = 1024 * 1024
    """Upper bound of one reassembled MSRP message (a room's ``max_message_size`` policy
    may only lower it)."""

    @property
    def path_host(self) -> str:
        return self.advertised_host or self.host


@attrs.frozen
class KmsSettings:
    """The KMS (PROFILE §3) and the focus's account there.

    ``account`` is the focus's own identity at the KMS, sent as IDRpsk so the KMS finds
    the focus's key while the focus resolves as each room URI (PROFILE §6).
    """

    base_url: str
    identity: str
    account: str
    key: bytes = attrs.field(repr=False)
    ca_file: Path | None = None
    allow_plain_http: bool = False
    timeout: float = 5.0
    retries: int = 2
    retry_after: int = 30
    """Seconds put in Retry-After of the 503 sent when the KMS is unreachable."""


@attrs.frozen
class MikeySettings:
    """PROFILE §2/§5 choices marked *(config)*."""

    prf: int = 0
    max_clock_skew: float = 300.0
    tls_prot_type: int = TLS_PROT_TYPE
    replay_cache_size: int = 10_000

    @property
    def suite(self) -> Suite:
        return SUITE_256 if self.prf == 1 else SUITE_128

    def keying(self) -> KeyingSettings:
        return KeyingSettings(
            suite=self.suite,
            max_clock_skew=self.max_clock_skew,
            tls_prot_type=self.tls_prot_type,
        )


@attrs.frozen
class TlsSettings:
    """TLS on the MSRP legs (PROFILE §9).  ``keylog_file`` writes an NSS key log that
    lets anyone holding it decrypt every leg: a debugging aid, off by default."""

    cipher_suites: tuple[str, ...] = DEFAULT_CIPHER_SUITES
    dh_params_file: Path | None = None
    keylog_file: Path | None = None

    @property
    def cipher_string(self) -> str:
        return ":".join(self.cipher_suites)


@attrs.frozen
class LogSettings:
    """Structured logs: ``json`` lines or ``text``, to a file or stdout (None)."""

    format: str = "json"
    file: Path | None = None


def _admin_token(_inst: object, _attribute: object, value: str) -> None:
    if len(value) < 16 or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError("the admin token must be at least 16 printable characters, no spaces")


@attrs.frozen
class AdminConfig:
    """``[admin]``: the admin API and ``/metrics`` (:mod:`focus.admin`).  Loopback by
    default; every ``/api/`` request needs ``Authorization: Bearer <token>``."""

    token: str = attrs.field(repr=False, validator=_admin_token)
    host: str = "127.0.0.1"
    port: int = 8089
    metrics_need_token: bool = False


@attrs.frozen
class FocusConfig:
    """The whole configuration."""

    kms: KmsSettings
    policy_file: Path
    sip: SipSettings = attrs.field(factory=SipSettings)
    msrp: MsrpSettings = attrs.field(factory=MsrpSettings)
    mikey: MikeySettings = attrs.field(factory=MikeySettings)
    tls: TlsSettings = attrs.field(factory=TlsSettings)
    log: LogSettings = attrs.field(factory=LogSettings)
    admin: AdminConfig | None = None
    """None: no admin API (the section is absent)."""
    source: str | None = attrs.field(default=None, eq=False)


# ----------------------------------------------------------------------------- loader


class _Invalid(Exception):
    def __init__(self, path: KeyPath, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _fail(path: KeyPath, reason: str) -> NoReturn:
    raise _Invalid(path, reason)


def _render(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _bool(value: object, path: KeyPath) -> bool:
    if not isinstance(value, bool):
        _fail(path, "must be true or false")
    return value


def _int(value: object, path: KeyPath, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "must be an integer")
    if value < low or (high is not None and value > high):
        _fail(path, f"must be between {low} and {high}" if high else f"must be at least {low}")
    return value


def _port(value: object, path: KeyPath) -> int:
    return _int(value, path, 1, 65535)


def _seconds(value: object, path: KeyPath) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        _fail(path, "must be a positive number")
    return float(value)


def _text(value: object, path: KeyPath) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    if not value or any(c in value for c in "\r\n\x00"):
        _fail(path, "must be a non-empty single line")
    return value


def _host(value: object, path: KeyPath) -> str:
    text = _text(value, path)
    if not re.fullmatch(r"[A-Za-z0-9.\-:]+", text):
        _fail(path, "must be a host name or IP address")
    return text


def _ip(value: object, path: KeyPath) -> str:
    text = _text(value, path)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        _fail(path, "must be an IP address")


def _sip_uri(value: object, path: KeyPath) -> str:
    text = _text(value, path)
    if not re.fullmatch(r"sips?:[^\s<>]+", text):
        _fail(path, "must be a sip: or sips: URI without angle brackets")
    return text


def _list(value: object, path: KeyPath) -> list[object]:
    if not isinstance(value, list):
        _fail(path, "must be a list")
    return value


def _table(value: object, path: KeyPath) -> Mapping[str, object]:
    if not isinstance(value, dict):
        _fail(path, "must be a table")
    return value


def _suggest(key: str, allowed: set[str]) -> str | None:
    import difflib  # only on the error path

    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return close[0] if close else None


def _check_keys(table: Mapping[str, object], allowed: set[str], path: KeyPath) -> None:
    for key in table:
        if key not in allowed:
            hint = _suggest(key, allowed)
            _fail((*path, key), "unknown key" + (f" (did you mean {hint}?)" if hint else ""))


Checker = Callable[[object, KeyPath], Any]


class _Section:
    """One table: checks its keys, converts values, resolves relative paths."""

    def __init__(self, value: object, path: KeyPath, keys: set[str], base: Path) -> None:
        self.table = _table(value, path)
        self.path = path
        self.base = base
        _check_keys(self.table, keys, path)

    def get(self, key: str, check: Checker, default: Any = None) -> Any:
        if key not in self.table:
            return default
        return check(self.table[key], (*self.path, key))

    def require(self, key: str, check: Checker) -> Any:
        if key not in self.table:
            _fail(self.path, f"missing required key {key!r}")
        return check(self.table[key], (*self.path, key))

    def file(self, key: str, *, must_exist: bool = True) -> Path | None:
        if key not in self.table:
            return None
        where = (*self.path, key)
        path = Path(_text(self.table[key], where))
        if not path.is_absolute():
            path = self.base / path
        if must_exist and not path.is_file():
            _fail(where, f"no such file: {path}")
        return path


def _listen(value: object, path: KeyPath, base: Path) -> SipListen:
    s = _Section(value, path, {"transport", "host", "port", "cert_file", "key_file"}, base)
    transport = str(s.require("transport", _text)).upper()
    if transport not in _TRANSPORTS:
        _fail((*path, "transport"), "must be udp, tcp or tls")
    default_port = 5061 if transport == "TLS" else 5060
    cert, key = s.file("cert_file"), s.file("key_file")
    if transport == "TLS" and (cert is None or key is None):
        _fail(path, "a tls endpoint needs cert_file and key_file")
    if transport != "TLS" and (cert is not None or key is not None):
        _fail(path, "cert_file and key_file belong to tls endpoints only")
    return SipListen(
        transport=transport,
        host=s.get("host", _ip, "127.0.0.1"),
        port=s.get("port", _port, default_port),
        cert_file=cert,
        key_file=key,
    )


def _sip(value: object, base: Path) -> SipSettings:
    keys = {
        "listen",
        "domain",
        "advertised_host",
        "trusted_peers",
        "outbound_proxy",
        "user_agent",
        "idle_timeout",
    }
    s = _Section(value, ("sip",), keys, base)
    defaults = SipSettings()
    listen = defaults.listen
    if "listen" in s.table:
        items = _list(s.table["listen"], ("sip", "listen"))
        if not items:
            _fail(("sip", "listen"), "needs at least one endpoint")
        listen = tuple(_listen(v, ("sip", "listen", i), base) for i, v in enumerate(items))
        seen: set[str] = set()
        for i, item in enumerate(listen):
            if item.transport in seen:
                _fail(("sip", "listen", i, "transport"), f"a second {item.transport} endpoint")
            seen.add(item.transport)
    peers = tuple(
        _ip(v, ("sip", "trusted_peers", i)) for i, v in enumerate(s.get("trusted_peers", _list, []))
    )
    return SipSettings(
        listen=listen,
        domain=s.get("domain", _host, defaults.domain).lower(),
        advertised_host=s.get("advertised_host", _host),
        trusted_peers=peers,
        outbound_proxy=s.get("outbound_proxy", _sip_uri),
        user_agent=s.get("user_agent", _text, defaults.user_agent),
        idle_timeout=s.get("idle_timeout", _seconds, defaults.idle_timeout),
    )


def _msrp(value: object, base: Path) -> MsrpSettings:
    keys = {
        "host",
        "advertised_host",
        "port_min",
        "port_max",
        "leg_timeout",
        "max_queued_bytes",
        "max_message_size",
    }
    s = _Section(value, ("msrp",), keys, base)
    d = MsrpSettings()
    port_min = s.get("port_min", _port, d.port_min)
    port_max = s.get("port_max", _port, d.port_max)
    if port_max < port_min:
        _fail(("msrp", "port_max"), "must not be below port_min")
    return MsrpSettings(
        host=s.get("host", _ip, d.host),
        advertised_host=s.get("advertised_host", _host),
        port_min=port_min,
        port_max=port_max,
        leg_timeout=s.get("leg_timeout", _seconds, d.leg_timeout),
        max_queued_bytes=s.get("max_queued_bytes", _int, d.max_queued_bytes),
        max_message_size=s.get("max_message_size", _int, d.max_message_size),
    )


def _hex_key(text: str, path: KeyPath) -> bytes:
    cleaned = "".join(text.split())
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        _fail(path, "must be hexadecimal")  # the value itself is never echoed
    if len(key) not in (16, 32):
        _fail(path, f"must be 16 or 32 bytes, not {len(key)}")
    return key


def _kms(value: object, base: Path) -> KmsSettings:
    keys = {
        "base_url",
        "identity",
        "account",
        "key",
        "key_file",
        "ca_file",
        "allow_plain_http",
        "timeout",
        "retries",
        "retry_after",
    }
    s = _Section(value, ("kms",), keys, base)
    url = s.require("base_url", _text)
    allow_plain = s.get("allow_plain_http", _bool, False)
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        _fail(("kms", "base_url"), "must be an https:// URL")
    if url.startswith("http://") and not allow_plain:
        _fail(("kms", "base_url"), "plain http:// needs allow_plain_http = true (PROFILE §3)")
    if "key" in s.table and "key_file" in s.table:
        _fail(("kms", "key_file"), "give key or key_file, not both")
    if "key" in s.table:
        key = _hex_key(_text(s.table["key"], ("kms", "key")), ("kms", "key"))
    elif "key_file" in s.table:
        key_path = s.file("key_file")
        assert key_path is not None
        try:
            text = key_path.read_text("ascii")
        except (OSError, UnicodeDecodeError):
            _fail(("kms", "key_file"), f"cannot read {key_path} as hex text")
        key = _hex_key(text, ("kms", "key_file"))
    else:
        _fail(("kms",), "missing required key 'key' (or 'key_file')")
    return KmsSettings(
        base_url=url,
        identity=s.require("identity", _sip_uri),
        account=s.require("account", _sip_uri),
        key=key,
        ca_file=s.file("ca_file"),
        allow_plain_http=allow_plain,
        timeout=s.get("timeout", _seconds, 5.0),
        retries=s.get("retries", lambda v, p: _int(v, p, 0, 10), 2),
        retry_after=s.get("retry_after", lambda v, p: _int(v, p, 1, 3600), 30),
    )


def _mikey(value: object, base: Path) -> MikeySettings:
    keys = {"prf", "max_clock_skew", "tls_prot_type", "replay_cache_size"}
    s = _Section(value, ("mikey",), keys, base)
    d = MikeySettings()
    return MikeySettings(
        prf=s.get("prf", lambda v, p: _int(v, p, 0, 1), d.prf),
        max_clock_skew=s.get("max_clock_skew", _seconds, d.max_clock_skew),
        tls_prot_type=s.get("tls_prot_type", lambda v, p: _int(v, p, 0, 255), d.tls_prot_type),
        replay_cache_size=s.get("replay_cache_size", _int, d.replay_cache_size),
    )


_CIPHER_RE = re.compile(r"[A-Z0-9][A-Z0-9\-]*")


def _cipher_suites(value: object, path: KeyPath) -> tuple[str, ...]:
    if isinstance(value, str):
        names: list[object] = list(value.split(":"))
    else:
        names = _list(value, path)
    out: list[str] = []
    for i, name in enumerate(names):
        where = (*path, i)
        text = _text(name, where)
        if not _CIPHER_RE.fullmatch(text) or "PSK" not in text:
            _fail(where, "is not an OpenSSL TLS-PSK suite name")
        if "NULL" in text or text.startswith("RSA-PSK"):
            _fail(where, "is forbidden (PROFILE §9: no NULL ciphers, no RSA-PSK)")
        out.append(text)
    if not out:
        _fail(path, "must name at least one suite")
    return tuple(out)


def _tls(value: object, base: Path) -> TlsSettings:
    s = _Section(value, ("tls",), {"cipher_suites", "dh_params_file", "keylog_file"}, base)
    return TlsSettings(
        cipher_suites=s.get("cipher_suites", _cipher_suites, DEFAULT_CIPHER_SUITES),
        dh_params_file=s.file("dh_params_file"),
        keylog_file=s.file("keylog_file", must_exist=False),
    )


def _log(value: object, base: Path) -> LogSettings:
    s = _Section(value, ("log",), {"format", "file"}, base)
    fmt = s.get("format", _text, "json")
    if fmt not in ("json", "text"):
        _fail(("log", "format"), "must be json or text")
    file: Path | None = None
    if "file" in s.table and s.table["file"] != "-":
        file = s.file("file", must_exist=False)
    return LogSettings(format=fmt, file=file)


def _admin(value: object, base: Path) -> AdminConfig:
    keys = {"host", "port", "token", "token_file", "metrics_need_token"}
    s = _Section(value, ("admin",), keys, base)
    if "token" in s.table and "token_file" in s.table:
        _fail(("admin", "token_file"), "give token or token_file, not both")
    if "token" in s.table:
        where: KeyPath = ("admin", "token")
        token = _text(s.table["token"], where)
    elif "token_file" in s.table:
        where = ("admin", "token_file")
        token_path = s.file("token_file")
        assert token_path is not None
        try:
            token = token_path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            _fail(where, f"cannot read {token_path}")
    else:
        _fail(("admin",), "missing required key 'token' (or 'token_file')")
    try:
        _admin_token(None, None, token)
    except ValueError as exc:
        _fail(where, str(exc))  # the value itself is never echoed
    return AdminConfig(
        token=token,
        host=s.get("host", _ip, "127.0.0.1"),
        port=s.get("port", _port, 8089),
        metrics_need_token=s.get("metrics_need_token", _bool, False),
    )


def _config(document: Mapping[str, object], base: Path, source: str) -> FocusConfig:
    _check_keys(document, {"sip", "msrp", "kms", "mikey", "tls", "policy", "log", "admin"}, ())
    if "kms" not in document:
        _fail((), "missing required section [kms]")
    if "policy" not in document:
        _fail((), "missing required section [policy]")
    kms = _kms(document["kms"], base)
    policy = _Section(document["policy"], ("policy",), {"file"}, base)
    policy_file = policy.file("file")
    if policy_file is None:
        _fail(("policy",), "missing required key 'file'")
    return FocusConfig(
        kms=kms,
        policy_file=policy_file,
        sip=_sip(document.get("sip", {}), base),
        msrp=_msrp(document.get("msrp", {}), base),
        mikey=_mikey(document.get("mikey", {}), base),
        tls=_tls(document.get("tls", {}), base),
        log=_log(document.get("log", {}), base),
        admin=_admin(document["admin"], base) if "admin" in document else None,
        source=source,
    )


_SYNTAX_POSITION_RE = re.compile(r"\(at line (\d+), column (\d+)\)|\(at end of document\)")


def parse_config(
    text: str, filename: str = "<focus.toml>", base: Path | None = None
) -> FocusConfig:
    """Build a :class:`FocusConfig` from TOML text; raise :class:`ConfigError` (only).

    ``base`` is the directory relative paths start from (default: the file's)."""
    base_dir = base if base is not None else Path(filename).parent
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _SYNTAX_POSITION_RE.search(message)
        reason = _SYNTAX_POSITION_RE.sub("", message).strip()
        line = None
        if m is not None and m.group(1) is not None:
            line = int(m.group(1))
        elif m is not None:
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
        raise ConfigError(f"TOML syntax: {reason}", filename=filename, line=line) from None
    try:
        return _config(document, base_dir, filename)
    except _Invalid as exc:
        raise ConfigError(
            exc.reason,
            filename=filename,
            line=line_of(key_lines(text), exc.path),
            key=_render(exc.path) or None,
        ) from None


def load_config(path: str | os.PathLike[str]) -> FocusConfig:
    """Read and parse a configuration file (UTF-8 TOML, at most 256 KiB)."""
    filename = os.fspath(path)
    try:
        text = read_source(filename, MAX_CONFIG_SIZE)
    except SourceError as exc:
        raise ConfigError(exc.reason, filename=filename, line=exc.line) from None
    return parse_config(text, filename, Path(filename).resolve().parent)


def example_config_path() -> Path:
    """The shipped, documented example (``focus/focus.example.toml``)."""
    return Path(__file__).with_name("focus.example.toml")
