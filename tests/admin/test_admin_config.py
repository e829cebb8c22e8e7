"""The optional [admin] section of focus.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.config import ConfigError, parse_config

BASE = """
[kms]
base_url = "https://kms.example.net/mikey-ticket/v1"
identity = "sip:kms@example.net"
account = "sip:focus@conf.example.net"
key = "000102030405060708090a0b0c0d0e0f"

[policy]
file = "policy.toml"
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "policy.toml").write_text("")
    return tmp_path


def test_no_admin_section_means_no_admin_api(base: Path) -> None:
    """Without [admin] the focus offers no admin API."""
    assert parse_config(BASE, str(base / "focus.toml")).admin is None


def test_admin_defaults_to_loopback_and_reads_a_token_file(base: Path) -> None:
    """[admin] listens on 127.0.0.1:8089 by default; token_file is read and stripped,
    and the token never shows in a repr."""
    (base / "admin.token").write_text("0123456789abcdef-secret\n")
    config = parse_config(BASE + '[admin]\ntoken_file = "admin.token"\n', str(base / "f.toml"))
    assert config.admin is not None
    assert (config.admin.host, config.admin.port) == ("127.0.0.1", 8089)
    assert config.admin.token == "0123456789abcdef-secret"
    assert "secret" not in repr(config)


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ("[admin]\n", "missing required key 'token'"),
        ('[admin]\ntoken = "short"\n', "admin.token: the admin token must be at least 16"),
        ('[admin]\ntoken = "0123456789abcdef"\nport = 0\n', "admin.port"),
        ('[admin]\ntoken = "0123456789abcdef"\nhots = "x"\n', "unknown key (did you mean host?)"),
    ],
)
def test_admin_mistakes_name_file_line_and_key(base: Path, section: str, needle: str) -> None:
    """Errors in [admin] are ConfigErrors with file:line and key; the token is not echoed."""
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + section, str(base / "focus.toml"))
    assert needle in str(info.value)
    assert "short" not in str(info.value).split(":", 2)[-1].replace("the admin token", "")
