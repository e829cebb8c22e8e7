"""Loading kms.toml: values, defaults, and errors that name file, line and key."""

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms import ConfigError, load_accounts, load_config

ALICE_KEY = "00112233445566778899aabbccddeeff"
GOOD = f"""\
identity = "sip:kms@example.net"
listen = "ssl:0:interface=127.0.0.1"

[[account]]
identity = "sip:alice@example.net"
key = "{ALICE_KEY}"
may_act_as = ["sip:alice@example.net"]

[[account]]
identity = "sip:focus@conf.example.net"
key_file = "focus.key"
may_act_as = ["sip:*@conf.example.net"]
psk_id = "focus-key"
"""


def write(tmp_path: Path, text: str, name: str = "kms.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    (tmp_path / "focus.key").write_text("ab" * 32 + "\n")
    return write(tmp_path, GOOD)


def test_good_file_loads_with_defaults(good: Path) -> None:
    """A minimal file yields the profile's defaults (base path, skew) and both accounts."""
    config = load_config(good)
    assert config.identity == "sip:kms@example.net"
    assert config.base_path == "/mikey-ticket/v1"
    assert config.max_clock_skew == 300.0
    assert config.uses_tls
    assert config.tls_certificate is None
    assert config.ticket_protection_key is None
    alice = config.accounts.for_identity("sip:alice@example.net")
    assert alice is not None and alice.key == bytes.fromhex(ALICE_KEY)
    focus = config.accounts.by_psk_id(b"focus-key")
    assert focus is not None and focus.key == b"\xab" * 32
    assert config.accounts.for_identity("sip:lobby@conf.example.net") is focus


def test_account_keys_never_appear_in_reprs(good: Path) -> None:
    """The repr of the loaded config holds no key bytes."""
    text = repr(load_config(good))
    assert ALICE_KEY not in text
    assert repr(bytes.fromhex(ALICE_KEY)) not in text
    assert "abab" not in text


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error reports the file and tomllib's line number."""
    path = write(tmp_path, 'identity = "sip:kms@example.net"\nlisten = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: ")


def test_bad_account_key_names_line_and_key(tmp_path: Path) -> None:
    """A key of the wrong length names the [[account]] entry, its line and the setting."""
    text = GOOD.replace('key_file = "focus.key"', 'key = "abcd"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "account[1].key"
    assert info.value.line == 11
    assert "16 or 32 bytes" in str(info.value)


def test_missing_key_file_is_reported(tmp_path: Path) -> None:
    """A key_file that cannot be read is a config error naming the setting."""
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "account[1].key_file"
    assert info.value.line == 11


def test_unknown_setting_is_refused(good: Path) -> None:
    """A misspelt setting is an error, not silently ignored."""
    good.write_text(GOOD.replace("listen =", "listne =") + "")
    with pytest.raises(ConfigError) as info:
        load_config(good)
    assert info.value.key == "listne"
    assert info.value.line == 2


def test_plain_http_needs_explicit_opt_in(good: Path) -> None:
    """A tcp: listen endpoint without allow_plain_http is refused."""
    good.write_text(GOOD.replace("ssl:0:", "tcp:0:"))
    with pytest.raises(ConfigError, match="allow_plain_http"):
        load_config(good)


def test_plain_http_only_on_loopback(good: Path) -> None:
    """Even with allow_plain_http, a non-loopback bind is refused."""
    text = "allow_plain_http = true\n" + GOOD.replace(
        "ssl:0:interface=127.0.0.1", "tcp:0:interface=0.0.0.0"
    )
    good.write_text(text)
    with pytest.raises(ConfigError, match="loopback") as info:
        load_config(good)
    assert info.value.line == 3


def test_plain_http_on_loopback_with_opt_in_loads(good: Path) -> None:
    """allow_plain_http plus a loopback tcp: bind is accepted."""
    good.write_text("allow_plain_http = true\n" + GOOD.replace("ssl:0:", "tcp:0:"))
    assert not load_config(good).uses_tls


def test_duplicate_identity_is_refused(good: Path) -> None:
    """Two accounts with the same identity are an error naming the second one."""
    good.write_text(GOOD.replace("sip:focus@conf.example.net", "sip:alice@example.net"))
    with pytest.raises(ConfigError, match="duplicate") as info:
        load_config(good)
    assert info.value.line == 10


def test_bad_pattern_is_refused(good: Path) -> None:
    """A may_act_as entry that is no URI or pattern names its line."""
    good.write_text(GOOD.replace('["sip:*@conf.example.net"]', '["*@conf"]'))
    with pytest.raises(ConfigError) as info:
        load_config(good)
    assert info.value.key == "account[1].may_act_as"
    assert info.value.line == 12


def test_missing_identity_is_refused(tmp_path: Path) -> None:
    """The KMS identity is required."""
    path = write(tmp_path, 'listen = "ssl:8443"\n')
    with pytest.raises(ConfigError, match="identity"):
        load_config(path)


def test_tls_files_come_in_pairs(good: Path) -> None:
    """tls_certificate without tls_key is refused."""
    good.write_text('tls_certificate = "c.pem"\n' + GOOD)
    with pytest.raises(ConfigError, match="both"):
        load_config(good)


def test_load_accounts_reads_only_accounts(good: Path) -> None:
    """load_accounts returns the account store of the file."""
    store = load_accounts(good)
    assert [a.identity for a in store.accounts] == [
        "sip:alice@example.net",
        "sip:focus@conf.example.net",
    ]


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    """A file that is not UTF-8 is an error with a line number."""
    path = tmp_path / "kms.toml"
    path.write_bytes(b'identity = "sip:kms@example.net"\nx = "\xff"\n')
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config(path)
    assert info.value.line == 2


def test_shipped_example_loads() -> None:
    """kms/examples/kms.toml is a valid configuration with the three demo accounts."""
    import kms

    config = load_config(Path(kms.__file__).parent / "examples" / "kms.toml")
    assert len(config.accounts) == 3
    assert config.accounts.for_identity("sip:room1@conf.example.net") is not None


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_raises_only_config_error(tmp_path: Path, text: str) -> None:
    """Any file content either loads or raises ConfigError naming the file."""
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as e:
        assert e.file == str(path)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    identity=st.text(max_size=30),
    listen=st.text(max_size=30),
    key=st.text(max_size=70),
    pattern=st.text(max_size=30),
)
def test_arbitrary_values_raise_only_config_error(
    tmp_path: Path, identity: str, listen: str, key: str, pattern: str
) -> None:
    """Arbitrary string values in every setting load or raise ConfigError, nothing else."""
    path = tmp_path / "values.toml"
    path.write_text(
        f"identity = {json.dumps(identity)}\nlisten = {json.dumps(listen)}\n"
        f"[[account]]\nidentity = {json.dumps(identity)}\nkey = {json.dumps(key)}\n"
        f"may_act_as = [{json.dumps(pattern)}]\n"
    )
    with contextlib.suppress(ConfigError):
        load_config(path)


def test_missing_tls_files_are_reported_at_load(good: Path) -> None:
    """A configured certificate that does not exist is a config error, not a start-up crash."""
    good.write_text('tls_certificate = "c.pem"\ntls_key = "k.pem"\n' + GOOD)
    with pytest.raises(ConfigError, match="no such file") as info:
        load_config(good)
    assert (info.value.key, info.value.line) == ("tls_certificate", 1)
