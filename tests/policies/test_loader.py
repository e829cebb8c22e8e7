"""The TOML policy loader: structure, inheritance, and errors naming file, line and key."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    DEFAULT_CIPHER_SUITES,
    MAX_POLICY_SIZE,
    Identity,
    PolicyError,
    PolicyLoadError,
    RateLimit,
    RetryPolicy,
    RoomSettings,
    load_policy,
    parse_policy,
)

INHERITING = """\
[defaults]
max_participants = 20
allow = ["sip:*@example.net"]
rate_limit = { messages_per_second = 2.0 }

[defaults.retry]
attempts = 4

[[room]]
uri = "sip:one@conf.example.net"

[[room]]
uri = "sip:two@conf.example.net"
max_participants = 3
allow = ["sip:bob@example.org"]
rate_limit.burst = 7
retry = { backoff = 5 }

[[room.dial_out]]
uri = "sip:carol@example.net"
attempts = 1

[[adhoc]]
pattern = "sip:*@adhoc.example.net"
creators = ["*"]
"""


def test_empty_file_is_a_policy_without_rooms() -> None:
    """An empty policy has built-in defaults and no rooms."""
    policy = parse_policy("")
    assert policy.rooms == ()
    assert policy.adhoc == ()
    assert policy.defaults == RoomSettings()


def test_built_in_defaults() -> None:
    """The documented built-in defaults (policies.model docstring, examples/demo.toml)."""
    d = RoomSettings()
    assert d.max_participants == 50
    assert d.require_cpim is True
    assert d.accept_wrapped_types == ("*",)
    assert d.max_message_size == 65536
    assert d.rate_limit == RateLimit(5.0, 20)
    assert d.leg_bind_timeout == 10.0
    assert d.cipher_suites == DEFAULT_CIPHER_SUITES
    assert d.cipher_string.startswith("ECDHE-PSK-CHACHA20-POLY1305:")
    assert d.retry == RetryPolicy(3, 30.0, 1.0, 60.0)
    assert (d.allow, d.deny, d.moderators) == ((), (), ())


def test_rooms_inherit_defaults_per_key_and_per_field() -> None:
    """Built-in ← [defaults] ← room, per key; rate_limit and retry merge per field; a
    dial-out member overrides single retry fields of its room."""
    policy = parse_policy(INHERITING, "inherit.toml")
    one, two = policy.rooms
    assert one.settings.max_participants == 20
    assert [p.text for p in one.settings.allow] == ["sip:*@example.net"]
    assert one.settings.rate_limit == RateLimit(2.0, 20)
    assert one.settings.retry == RetryPolicy(attempts=4)
    assert two.settings.max_participants == 3
    assert [p.text for p in two.settings.allow] == ["sip:bob@example.org"]
    assert two.settings.rate_limit == RateLimit(2.0, 7)
    assert two.settings.retry == RetryPolicy(attempts=4, backoff=5.0)
    (member,) = two.dial_out
    assert member.uri == Identity.parse("sip:carol@example.net")
    assert member.retry == RetryPolicy(attempts=1, backoff=5.0)
    assert policy.adhoc[0].settings.max_participants == 20
    assert policy.source == "inherit.toml"


def test_cipher_suites_accept_an_openssl_string() -> None:
    """cipher_suites may be a list or one colon-separated OpenSSL string."""
    policy = parse_policy(
        '[defaults]\ncipher_suites = "PSK-AES128-GCM-SHA256:DHE-PSK-AES128-GCM-SHA256"\n'
    )
    assert policy.defaults.cipher_suites == ("PSK-AES128-GCM-SHA256", "DHE-PSK-AES128-GCM-SHA256")


def test_retry_delays() -> None:
    """delay_before gives 0 for the first attempt, then backoff × factor^(n-2)."""
    retry = RetryPolicy(attempts=4, backoff=10.0, backoff_factor=2.0)
    assert [retry.delay_before(n) for n in range(0, 6)] == [None, 0.0, 10.0, 20.0, 40.0, None]


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            "[defaults]\nmax_participant = 3\n",
            2,
            "defaults.max_participant",
            "did you mean max_participants",
        ),
        ("colour = 1\n", 1, "colour", "unknown key"),
        (
            "[[room]]\nuri = 'sip:a@b'\n\nmax_participants = 'ten'\n",
            4,
            "room[0].max_participants",
            "integer",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nmax_participants = true\n",
            3,
            "room[0].max_participants",
            "integer",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nmax_participants = 0\n",
            3,
            "room[0].max_participants",
            "at least 1",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nrequire_cpim = 'yes'\n",
            3,
            "room[0].require_cpim",
            "true or false",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nallow = [\n  'sip:x@y',\n  'sip:b*d@x',\n]\n",
            5,
            "room[0].allow[1]",
            "bad pattern",
        ),
        ("[[room]]\nuri = 'sip:a@b'\nallow = 'sip:x@y'\n", 3, "room[0].allow", "must be a list"),
        ("[[room]]\nallow = []\n", 1, "room[0]", "missing required key 'uri'"),
        ("[[room]]\nuri = 'tel:+123'\n", 2, "room[0].uri", "sip: or sips:"),
        (
            "[[room]]\nuri = 'sip:a@b'\n[[room]]\nuri = 'sip:a@B;x=y'\n",
            4,
            "room[1].uri",
            "already defined",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\n[room.rate_limit]\nburst = 0\n",
            4,
            "room[0].rate_limit.burst",
            "at least 1",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nrate_limit.per_minute = 3\n",
            3,
            "room[0].rate_limit.per_minute",
            "unknown",
        ),
        ("[[room]]\nuri = 'sip:a@b'\nretry = 3\n", 3, "room[0].retry", "table"),
        (
            "[[room]]\nuri = 'sip:a@b'\nleg_bind_timeout = -1\n",
            3,
            "room[0].leg_bind_timeout",
            "positive",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nleg_bind_timeout = nan\n",
            3,
            "room[0].leg_bind_timeout",
            "positive",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\ncipher_suites = ['NULL-PSK']\n",
            3,
            "room[0].cipher_suites",
            "forbidden",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\ncipher_suites = ['AES128-SHA']\n",
            3,
            "room[0].cipher_suites",
            "TLS-PSK",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\ncipher_suites = []\n",
            3,
            "room[0].cipher_suites",
            "at least one",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\naccept_wrapped_types = ['text']\n",
            3,
            "room[0].accept_wrapped_types",
            "media type",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nsubject = \"two\\nlines\"\n",
            3,
            "room[0].subject",
            "single line",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\nmax_message_size = 999999999\n",
            3,
            "room[0].max_message_size",
            "at most",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\n[[room.dial_out]]\nuri = 'sip:c@d'\n"
            "[[room.dial_out]]\n# x\nuri = 'sip:c@d'\n",
            7,
            "room[0].dial_out[1].uri",
            "listed twice",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\n[[room.dial_out]]\nuri = 'sip:c@d'\nring = 3\n",
            5,
            "room[0].dial_out[0].ring",
            "unknown",
        ),
        (
            "[[room]]\nuri = 'sip:a@b'\ndial_out = [\n  { uri = 'sip:c@d' },\n"
            "  { uri = 'sip:e@f', attempts = 0 },\n]\n",
            5,
            "room[0].dial_out[1].attempts",
            "at least 1",
        ),
        (
            "[[adhoc]]\npattern = 'sip:room@adhoc.example.net'\n",
            2,
            "adhoc[0].pattern",
            "sip:*@host",
        ),
        (
            "[[adhoc]]\npattern = 'sip:*@x'\ncreators = ['sip:*@*']\n",
            3,
            "adhoc[0].creators[0]",
            "bad pattern",
        ),
        ("[[adhoc]]\npattern = 'sip:*@x'\nuri = 'sip:a@b'\n", 3, "adhoc[0].uri", "unknown"),
        ("defaults = 3\n", 1, "defaults", "table"),
        ("room = 3\n", 1, "room", "list"),
        ("[defaults]\nuri = 'sip:a@b'\n", 2, "defaults.uri", "unknown"),
        ("[defaults]\n'max participants' = 1\n", 2, 'defaults."max participants"', "unknown"),
    ],
)
def test_semantic_errors_name_file_line_and_key(text: str, line: int, key: str, words: str) -> None:
    """Every semantic mistake is a PolicyLoadError whose message is file:line: key: reason."""
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "rooms.toml")
    error = info.value
    assert (error.filename, error.line, error.key) == ("rooms.toml", line, key)
    assert words in error.reason
    assert str(error).startswith(f"rooms.toml:{line}: {key}: ")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[defaults]\nmax_participants = \n", 2),
        ("[[room]]\nuri = 'sip:a@b'\nuri = 'sip:c@d'\n", 3),
        ("a = 1\nx = [", 2),
        ("[defaults\n", 1),
    ],
)
def test_syntax_errors_carry_tomllib_positions(text: str, line: int) -> None:
    """TOML syntax errors name the file and tomllib's line (and column when known)."""
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "bad.toml")
    assert info.value.line == line
    assert str(info.value).startswith(f"bad.toml:{line}")
    assert "TOML syntax" in str(info.value)


def test_load_policy_reads_files_and_reports_io_problems(tmp_path: Path) -> None:
    """load_policy reads UTF-8 files; missing, oversized or non-UTF-8 files are load errors."""
    good = tmp_path / "good.toml"
    good.write_text("[[room]]\nuri = 'sip:a@b'\n")
    assert load_policy(good).source == str(good)
    with pytest.raises(PolicyLoadError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[[room]]\nuri = 'sip:a@b'\nsubject = 'caf\xe9'\n")
    with pytest.raises(PolicyLoadError) as info:
        load_policy(latin)
    assert info.value.line == 3
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_POLICY_SIZE + 1))
    with pytest.raises(PolicyLoadError, match="larger"):
        load_policy(big)


def test_line_lookup_survives_tricky_toml() -> None:
    """Strings with brackets, quotes and '=' and multi-line strings do not confuse the
    line finder."""
    text = (
        '[[room]]\nuri = "sip:a@b"\n'
        'display_name = """multi\nline = [ { \\"\n"""\n'
        "subject = 'it is [x] = {y}'  # comment with = and [\n"
        "allow = ['sip:ok@x', # c ]\n  'sip:bad*@x']\n"
    )
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "tricky.toml")
    assert (info.value.line, info.value.key) == (8, "room[0].allow[1]")


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_policy_errors(text: str) -> None:
    """Any text either loads or raises PolicyError (never another exception)."""
    with contextlib.suppress(PolicyError):
        parse_policy(text)


keys = st.sampled_from(
    ["max_participants", "allow", "uri", "pattern", "retry", "rate_limit", "burst", "colour"]
)
values = st.sampled_from(
    ["1", "0", "'sip:a@b'", "'*'", "['sip:*@x']", "{ burst = 2 }", "true", "[1]"]
)
headers = st.sampled_from(
    ["[defaults]", "[[room]]", "[[adhoc]]", "[defaults.retry]", "[[room.dial_out]]"]
)


@settings(max_examples=200)
@given(st.lists(st.one_of(headers, st.tuples(keys, values).map(" = ".join)), max_size=10))
def test_plausible_documents_raise_only_policy_errors_with_lines(lines: list[str]) -> None:
    """Documents built from policy-like lines load, or fail with a located PolicyError."""
    text = "\n".join(lines) + "\n"
    try:
        parse_policy(text, "gen.toml")
    except PolicyLoadError as error:
        if error.key is not None:
            assert error.line is not None
            assert 1 <= error.line <= len(lines)
