"""The focus.toml loader: defaults, the shipped example, and errors naming file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.config import (
    ConfigError,
    FocusConfig,
    example_config_path,
    load_config,
    parse_config,
)

KEY = "00112233445566778899aabbccddeeff"
MINIMAL = f"""\
[kms]
base_url = "https://kms.example.net/mikey-ticket/v1"
identity = "sip:kms@example.net"
account = "sip:focus@conf.example.net"
key = "{KEY}"

[policy]
file = "policy.toml"
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "policy.toml").write_text("")
    return tmp_path


def parse(text: str, base: Path) -> FocusConfig:
    return parse_config(text, "focus.toml", base)


def error(text: str, base: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, base)
    return info.value


def test_shipped_example_loads() -> None:
    """focus.example.toml is a valid configuration whose policy file exists."""
    config = load_config(example_config_path())
    assert config.policy_file.is_file()
    assert config.kms.allow_plain_http and len(config.kms.key) == 32
    assert [item.transport for item in config.sip.listen] == ["UDP", "TCP"]


def test_minimal_config_gets_defaults(base: Path) -> None:
    """Only [kms] and policy.file are required; everything else has its default."""
    config = parse(MINIMAL, base)
    assert config.kms.key == bytes.fromhex(KEY)
    assert config.policy_file == base / "policy.toml"
    assert config.sip.domain == "conf.example.net" and config.sip.host == "127.0.0.1"
    assert (config.msrp.port_min, config.msrp.port_max) == (20000, 20999)
    assert config.mikey.max_clock_skew == 300.0 and config.mikey.tls_prot_type == 241
    assert config.tls.keylog_file is None
    assert config.log.format == "json" and config.log.file is None


def test_key_never_in_repr(base: Path) -> None:
    """The KMS key is kept out of the config's repr."""
    assert KEY not in repr(parse(MINIMAL, base))


def test_unknown_key_names_line_and_suggests(base: Path) -> None:
    """A typo is an error with file, line, dotted key and a suggestion."""
    err = error(MINIMAL + "\n[msrp]\nport_mni = 3\n", base)
    assert str(err) == "focus.toml:11: msrp.port_mni: unknown key (did you mean port_min?)"


def test_bad_value_names_line(base: Path) -> None:
    """A value of the wrong type or range names its line and key."""
    err = error(MINIMAL.replace('key = "', 'timeout = -1\nkey = "'), base)
    assert err.line == 5 and err.key == "kms.timeout" and "positive" in err.reason


def test_listen_table_errors(base: Path) -> None:
    """A TLS endpoint without certificate and key is refused, naming the array element."""
    text = MINIMAL + '\n[[sip.listen]]\ntransport = "udp"\n\n[[sip.listen]]\ntransport = "tls"\n'
    err = error(text, base)
    assert err.key == "sip.listen[1]" and err.line == 13 and "cert_file" in err.reason


def test_unknown_transport(base: Path) -> None:
    """Transports are udp, tcp or tls."""
    err = error(MINIMAL + '\n[[sip.listen]]\ntransport = "sctp"\n', base)
    assert err.key == "sip.listen[0].transport"


def test_plain_http_needs_explicit_permission(base: Path) -> None:
    """An http:// KMS URL is refused unless allow_plain_http is true (PROFILE §3)."""
    text = MINIMAL.replace("https://", "http://")
    assert "allow_plain_http" in error(text, base).reason
    allowed = text.replace('key = "', 'allow_plain_http = true\nkey = "')
    assert parse(allowed, base).kms.allow_plain_http


def test_bad_key_is_not_echoed(base: Path) -> None:
    """A key that is not hex of 16/32 bytes is refused without quoting it."""
    err = error(MINIMAL.replace(KEY, "zz" + KEY[2:]), base)
    assert err.key == "kms.key" and "zz" not in str(err)
    assert "16 or 32" in error(MINIMAL.replace(KEY, KEY[:30]), base).reason


def test_key_file_relative_to_the_config(base: Path) -> None:
    """key_file is read as hex text, relative to the configuration's directory."""
    (base / "focus.key").write_text(KEY + "\n")
    text = MINIMAL.replace(f'key = "{KEY}"', 'key_file = "focus.key"')
    assert parse(text, base).kms.key == bytes.fromhex(KEY)
    both = MINIMAL.replace(f'key = "{KEY}"', f'key = "{KEY}"\nkey_file = "focus.key"')
    assert "not both" in error(both, base).reason


def test_missing_sections(base: Path) -> None:
    """[kms] and [policy] are required; a missing policy file is named."""
    assert "[kms]" in error("[policy]\nfile = 'policy.toml'\n", base).reason
    err = error(MINIMAL.replace("policy.toml", "nope.toml"), base)
    assert err.key == "policy.file" and "no such file" in err.reason


def test_syntax_error_has_line(base: Path) -> None:
    """TOML syntax errors carry tomllib's line."""
    err = error(MINIMAL + "\n[sip\n", base)
    assert err.line == 10 and "syntax" in err.reason


def test_cipher_suites_checked(base: Path) -> None:
    """NULL and RSA-PSK suites are refused (PROFILE §9); a cipher string is accepted."""
    ok = parse(MINIMAL + '\n[tls]\ncipher_suites = "PSK-AES128-GCM-SHA256"\n', base)
    assert ok.tls.cipher_string == "PSK-AES128-GCM-SHA256"
    err = error(MINIMAL + '\n[tls]\ncipher_suites = ["RSA-PSK-AES128-GCM-SHA256"]\n', base)
    assert err.key == "tls.cipher_suites[0]"


def test_port_range_order(base: Path) -> None:
    """port_max below port_min is refused."""
    err = error(MINIMAL + "\n[msrp]\nport_min = 30000\nport_max = 20000\n", base)
    assert err.key == "msrp.port_max"


def test_log_settings(base: Path) -> None:
    """log.format is json or text; file "-" means stdout."""
    config = parse(MINIMAL + '\n[log]\nformat = "text"\nfile = "-"\n', base)
    assert config.log.format == "text" and config.log.file is None
    assert error(MINIMAL + '\n[log]\nformat = "xml"\n', base).key == "log.format"


def test_load_config_errors(tmp_path: Path) -> None:
    """Unreadable files and non-UTF-8 text are ConfigErrors naming the file."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"# ok\n\xff\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.line == 2
