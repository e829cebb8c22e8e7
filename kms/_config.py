"""The KMS configuration file (TOML): settings, TLS files and accounts.

Errors name the file, the line (from tomllib for syntax errors, from a scan of the
source for a bad value) and the key, so an operator can fix a file without guessing.
The format is documented on `load_config`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ._accounts import Account, AccountStore
from ._errors import ConfigError
from ._identity import IdentityPattern, InvalidIdentity, normalise_uri

__all__ = [
    "DEFAULT_BASE_PATH",
    "KmsConfig",
    "ListenSpec",
    "load_accounts",
    "load_config",
    "parse_listen",
]

DEFAULT_BASE_PATH = "/mikey-ticket/v1"  # PROFILE.md section 3
_KEY_LENGTHS = (16, 32)  # PROFILE.md section 2: the 128- and 256-bit suites

_TOP_KEYS = frozenset(
    {
        "identity",
        "listen",
        "base_path",
        "tls_certificate",
        "tls_key",
        "allow_plain_http",
        "ticket_protection_key",
        "ticket_protection_key_file",
        "max_clock_skew",
        "max_ticket_lifetime",
        "replay_cache_size",
        "account",
    }
)
_ACCOUNT_KEYS = frozenset({"identity", "key", "key_file", "may_act_as", "psk_id"})


@attrs.frozen
class ListenSpec:
    """The listen endpoint, split into what the KMS must check about it."""

    kind: str  # "ssl" or "tcp"
    port: int
    interface: str | None
    has_tls_files: bool  # the endpoint string itself names privateKey= (ssl only)


@attrs.frozen
class KmsConfig:
    """Everything `twistd kms` needs, loaded from one TOML file."""

    path: Path
    identity: str
    listen: str
    listen_spec: ListenSpec
    base_path: str
    tls_certificate: Path | None
    tls_key: Path | None
    allow_plain_http: bool
    ticket_protection_key: bytes | None = attrs.field(repr=False)
    max_clock_skew: float
    max_ticket_lifetime: float
    replay_cache_size: int
    accounts: AccountStore

    @property
    def uses_tls(self) -> bool:
        return self.listen_spec.kind == "ssl"


class _Source:
    """One file's text, to find the line on which a key is set for an error message."""

    _HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str, *, table: str | None = None, index: int = 0) -> int | None:
        """Line (1-based) where *key* is assigned in the top level or in `[[table]]` #index."""
        current: tuple[str | None, int] = (None, 0)
        seen: dict[str, int] = {}
        assign = re.compile(rf"\s*{re.escape(key)}\s*=")
        for number, line in enumerate(self.lines, start=1):
            header = self._HEADER.match(line)
            if header:
                name = header[2]
                count = seen.get(name, -1) + 1
                seen[name] = count
                current = (name, count)
                if key == "" and current == (table, index):
                    return number
                continue
            if current == (table, index) and assign.match(line):
                return number
        return None

    def error(
        self, message: str, key: str, *, table: str | None = None, index: int = 0
    ) -> ConfigError:
        bare = key.rsplit(".", 1)[-1] if table else key
        line = self.line_of(bare, table=table, index=index)
        if line is None and table is not None:
            line = self.line_of("", table=table, index=index)
        return ConfigError(message, file=self.path, line=line, key=key)


def _parse(path: Path) -> tuple[_Source, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=path) from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("not UTF-8 text", file=path, line=raw[: e.start].count(b"\n") + 1) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)) or "invalid TOML"
        message = re.sub(r"\s*\(at end of document\)", "", message)
        at_end = "(at end of document)" in str(e)
        line: int | None = int(found[1]) if found else (len(text.splitlines()) if at_end else None)
        raise ConfigError(f"TOML syntax: {message}", file=path, line=line) from e
    return _Source(path, text), data


def _string(src: _Source, data: Mapping[str, Any], key: str, **where: Any) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise src.error(
            f"must be a string, not {type(value).__name__}", _dotted(key, where), **where
        )
    return value


def _number(
    src: _Source, data: Mapping[str, Any], key: str, default: float, *, minimum: float
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise src.error(f"must be a number, not {type(value).__name__}", key)
    if value < minimum:
        raise src.error(f"must be at least {minimum}", key)
    return float(value)


def _dotted(key: str, where: Mapping[str, Any]) -> str:
    table = where.get("table")
    return key if table is None else f"{table}[{where.get('index', 0)}].{key}"


def _hex_key(src: _Source, text: str, key: str, **where: Any) -> bytes:
    cleaned = "".join(text.split())
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise src.error("must be hexadecimal", _dotted(key, where), **where) from None
    if len(value) not in _KEY_LENGTHS:
        raise src.error(
            f"must be 16 or 32 bytes (32 or 64 hex digits), got {len(value)} bytes",
            _dotted(key, where),
            **where,
        )
    return value


def _key_from(
    src: _Source, data: Mapping[str, Any], key: str, file_key: str, **where: Any
) -> bytes | None:
    """A key given inline as hex (`key`) or as a file holding hex (`file_key`)."""
    inline = _string(src, data, key, **where)
    file_name = _string(src, data, file_key, **where)
    if inline is not None and file_name is not None:
        raise src.error(f"give {key} or {file_key}, not both", _dotted(file_key, where), **where)
    if inline is not None:
        return _hex_key(src, inline, key, **where)
    if file_name is None:
        return None
    key_path = _resolve(src.path, file_name)
    try:
        text = key_path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not ASCII hex"
        raise src.error(
            f"cannot read {key_path}: {reason}", _dotted(file_key, where), **where
        ) from e
    try:
        return _hex_key(src, text, file_key, **where)
    except ConfigError as e:
        raise src.error(f"{key_path}: {e.message}", _dotted(file_key, where), **where) from None


def _resolve(config_path: Path, name: str) -> Path:
    """Paths in the file are relative to the file's own directory."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else config_path.parent / path


def _unknown_keys(
    src: _Source, data: Mapping[str, Any], known: frozenset[str], **where: Any
) -> None:
    for key in data:
        if key not in known:
            raise src.error(
                f"unknown setting (known: {', '.join(sorted(known))})",
                _dotted(key, where),
                **where,
            )


def _accounts(src: _Source, data: Mapping[str, Any]) -> AccountStore:
    raw = data.get("account", [])
    if not isinstance(raw, list):
        raise src.error("must be an array of tables: [[account]]", "account")
    accounts: list[Account] = []
    seen_identities: set[str] = set()
    seen_psk_ids: set[bytes] = set()
    for index, entry in enumerate(raw):
        where: dict[str, Any] = {"table": "account", "index": index}
        if not isinstance(entry, dict):
            raise src.error("must be a table", f"account[{index}]", **where)
        _unknown_keys(src, entry, _ACCOUNT_KEYS, **where)
        identity = _string(src, entry, "identity", **where)
        if identity is None:
            raise src.error("missing", _dotted("identity", where), **where)
        try:
            normalised = normalise_uri(identity)
        except InvalidIdentity as e:
            raise src.error(str(e), _dotted("identity", where), **where) from None
        if normalised in seen_identities:
            raise src.error(
                f"duplicate account identity {identity!r}", _dotted("identity", where), **where
            )
        seen_identities.add(normalised)
        key = _key_from(src, entry, "key", "key_file", **where)
        if key is None:
            raise src.error("missing (give key or key_file)", _dotted("key", where), **where)
        patterns_raw = entry.get("may_act_as", [identity])
        if not isinstance(patterns_raw, list) or not all(isinstance(p, str) for p in patterns_raw):
            raise src.error("must be a list of strings", _dotted("may_act_as", where), **where)
        try:
            patterns = tuple(IdentityPattern.parse(p) for p in patterns_raw)
        except InvalidIdentity as e:
            raise src.error(str(e), _dotted("may_act_as", where), **where) from None
        psk_id_text = _string(src, entry, "psk_id", **where)
        psk_id = (psk_id_text if psk_id_text is not None else identity).encode("utf-8")
        if psk_id in seen_psk_ids:
            raise src.error(
                "duplicate psk_id (an account's psk_id defaults to its identity)",
                _dotted("psk_id", where),
                **where,
            )
        seen_psk_ids.add(psk_id)
        accounts.append(Account(identity=identity, key=key, may_act_as=patterns, psk_id=psk_id))
    return AccountStore.of(accounts)


def parse_listen(text: str) -> ListenSpec:
    """Split a Twisted server endpoint string (`ssl:8443:interface=127.0.0.1`).

    Only the `ssl` and `tcp` endpoint types are accepted: the KMS must know whether it
    speaks TLS (PROFILE.md section 3) and on which address it listens.
    """
    parts = re.split(r"(?<!\\):", text)
    kind = parts[0].strip().lower()
    if kind not in ("ssl", "tcp"):
        raise ValueError(f"endpoint type must be ssl or tcp, not {parts[0]!r}")
    positional: list[str] = []
    options: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if sep:
            options[name.strip()] = value.replace("\\:", ":")
        else:
            positional.append(part)
    port_text = options.get("port", positional[0] if positional else "")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"no port number in {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    interface = options.get("interface")
    return ListenSpec(
        kind=kind, port=port, interface=interface, has_tls_files="privateKey" in options
    )


def _is_loopback(interface: str | None) -> bool:
    if interface is None:
        return False
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def load_accounts(path: Path | str) -> AccountStore:
    """Load only the `[[account]]` tables of *path* (what SIGHUP reloads)."""
    src, data = _parse(Path(path))
    return _accounts(src, data)


def load_config(path: Path | str) -> KmsConfig:
    """Load and check a KMS configuration file.

    Format (TOML; relative paths are relative to the file's directory)::

        identity = "sip:kms@example.net"          # required: the KMS's IDRkms URI
        listen = "ssl:8443:interface=127.0.0.1"   # Twisted endpoint syntax, ssl or tcp
        base_path = "/mikey-ticket/v1"            # default
        tls_certificate = "kms.crt"               # both or neither; when neither, a CA and
        tls_key = "kms.key"                       #   a server pair are made beside this file
        allow_plain_http = false                  # true allows tcp: on a loopback address only
        ticket_protection_key = "hex"             # or ticket_protection_key_file; default:
                                                  #   random at each start
        max_clock_skew = 300.0                    # seconds (PROFILE.md section 2)
        max_ticket_lifetime = 86400.0             # seconds; a missing or later TRe is capped (K=1)
        replay_cache_size = 100000                # entries

        [[account]]
        identity = "sip:alice@example.net"
        key = "hex of 16 or 32 bytes"             # or key_file = "alice.key" (hex text)
        may_act_as = ["sip:alice@example.net"]    # exact URIs or "sip:*@domain"; default
                                                  #   [identity]
        psk_id = "alice"                          # IDRpsk naming this key; default identity
    """
    path = Path(path)
    src, data = _parse(path)
    _unknown_keys(src, data, _TOP_KEYS)
    identity = _string(src, data, "identity")
    if identity is None:
        raise src.error("missing: the KMS identity URI, e.g. sip:kms@example.net", "identity")
    try:
        normalise_uri(identity)
    except InvalidIdentity as e:
        raise src.error(str(e), "identity") from None
    listen = _string(src, data, "listen")
    if listen is None:
        raise src.error("missing, e.g. ssl:8443:interface=127.0.0.1", "listen")
    try:
        spec = parse_listen(listen)
    except ValueError as e:
        raise src.error(str(e), "listen") from None
    plain = data.get("allow_plain_http", False)
    if not isinstance(plain, bool):
        raise src.error("must be true or false", "allow_plain_http")
    if spec.kind == "tcp":
        # PROFILE.md section 3: HTTPS by default; plain HTTP only when a setting allows it,
        # and (our rule) only where nobody else can listen in: a loopback address.
        if not plain:
            raise src.error("plain HTTP (tcp:) needs allow_plain_http = true", "listen")
        if not _is_loopback(spec.interface):
            raise src.error(
                "plain HTTP is only allowed on a loopback interface "
                "(add :interface=127.0.0.1 or ::1)",
                "listen",
            )
    base_path = _string(src, data, "base_path") or DEFAULT_BASE_PATH
    if not base_path.startswith("/") or "//" in base_path or "?" in base_path:
        raise src.error("must be an absolute URL path such as /mikey-ticket/v1", "base_path")
    cert = _string(src, data, "tls_certificate")
    key = _string(src, data, "tls_key")
    if (cert is None) != (key is None):
        raise src.error(
            "give both tls_certificate and tls_key, or neither",
            "tls_key" if cert else "tls_certificate",
        )
    for name, value in (("tls_certificate", cert), ("tls_key", key)):
        if value is not None and not _resolve(path, value).is_file():
            raise src.error(f"no such file: {_resolve(path, value)}", name)
    tpk = _key_from(src, data, "ticket_protection_key", "ticket_protection_key_file")
    skew = _number(src, data, "max_clock_skew", 300.0, minimum=1.0)
    lifetime = _number(src, data, "max_ticket_lifetime", 86400.0, minimum=1.0)
    cache_size = data.get("replay_cache_size", 100_000)
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
        raise src.error("must be a positive integer", "replay_cache_size")
    return KmsConfig(
        path=path,
        identity=identity,
        listen=listen,
        listen_spec=spec,
        base_path=base_path.rstrip("/") or DEFAULT_BASE_PATH,
        tls_certificate=None if cert is None else _resolve(path, cert),
        tls_key=None if key is None else _resolve(path, key),
        allow_plain_http=plain,
        ticket_protection_key=tpk,
        max_clock_skew=skew,
        max_ticket_lifetime=lifetime,
        replay_cache_size=cache_size,
        accounts=_accounts(src, data),
    )
