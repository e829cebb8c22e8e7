"""The focus-ue command line: option checks, defaults, error messages and exit codes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.testing import MemoryReactorClock

from kms_client import KmsRejected, KmsUnavailable
from ue.cli import JoinOptions, StdinLines, UsageError, parse_args, run
from ue.client import UeConfig

ROOM = "sip:lobby@conf.example.net"
ALICE = "sip:alice@example.net"
KEY = "000102030405060708090a0b0c0d0e0f"


def argv(*extra: str, key: tuple[str, ...] = ("--kms-key", KEY)) -> list[str]:
    return [
        "join",
        ROOM,
        "--identity",
        ALICE,
        "--kms-url",
        "https://kms.example.net:8443/mikey-ticket/v1",
        *key,
        "--proxy",
        "127.0.0.1:5060",
        *extra,
    ]


def test_defaults_follow_the_profile() -> None:
    """KMS identity sip:kms@<KMS host> (PROFILE §4), PSK id = identity, UDP, no linger."""
    options = parse_args(argv(), environ={})
    assert options.kms_identity == "sip:kms@kms.example.net"
    assert options.kms_psk_id == ALICE.encode()
    assert options.kms_key == bytes.fromhex(KEY)
    assert options.linger == 0.0
    config = options.config
    assert config == UeConfig(identity=ALICE, room=ROOM, proxy=("127.0.0.1", 5060))
    assert config.keylog_path is None


def test_every_option_is_taken() -> None:
    """Explicit options override every default."""
    options = parse_args(
        argv(
            "--transport",
            "tcp",
            "--nickname",
            "Al",
            "--linger",
            "2.5",
            "--kms-identity",
            "sip:kms@example.net",
            "--kms-psk-id",
            "alice-key",
            "--local",
            "127.0.0.2",
            "--sip-port",
            "5070",
            "--cipher-suites",
            "PSK-AES128-GCM-SHA256",
            "--leg-timeout",
            "3",
        ),
        environ={"SSLKEYLOGFILE": "/tmp/keys"},
    )
    assert options.kms_identity == "sip:kms@example.net"
    assert options.kms_psk_id == b"alice-key"
    assert options.linger == 2.5
    config = options.config
    assert (config.transport, config.nickname, config.local_host, config.sip_port) == (
        "tcp",
        "Al",
        "127.0.0.2",
        5070,
    )
    assert config.cipher_suites == "PSK-AES128-GCM-SHA256"
    assert config.leg_timeout == 3.0
    assert config.keylog_path == Path("/tmp/keys")


def test_key_file_holds_hex(tmp_path: Path) -> None:
    """--kms-key-file reads hex text (whitespace allowed), like the KMS's key_file."""
    key_file = tmp_path / "alice.key"
    key_file.write_text("00010203 04050607\n08090a0b0c0d0e0f\n")
    options = parse_args(argv(key=("--kms-key-file", str(key_file))), environ={})
    assert options.kms_key == bytes.fromhex(KEY)


def test_options_repr_holds_no_key() -> None:
    """The KMS key never shows in the options' repr."""
    options = parse_args(argv(), environ={})
    assert KEY not in repr(options) and isinstance(options, JoinOptions)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (argv("--kms-key", KEY, key=("--kms-key-file", "f")), "not allowed with"),
        (argv(key=()), "one of the arguments --kms-key --kms-key-file is required"),
        (argv(key=("--kms-key", "zz")), "--kms-key: the key must be hexadecimal"),
        (argv(key=("--kms-key", "0011")), "must be 16 or 32 bytes, got 2"),
        (argv(key=("--kms-key-file", "/nonexistent/k")), "cannot read"),
        (argv("--proxy", "nowhere"), "--proxy: expected HOST:PORT"),
        (argv("--proxy", "host:99999"), "--proxy: expected HOST:PORT"),
        (argv("--transport", "sctp"), "invalid choice: 'sctp'"),
        (argv("--linger", "-1"), "--linger must be non-negative"),
        (argv("--leg-timeout", "0"), "--leg-timeout must be positive"),
        (argv("--cipher-suites", "NULL-SHA"), "--cipher-suites"),
        (argv("--kms-insecure-http"), "--kms-insecure-http is only for an http://"),
        (argv("--kms-ca", "/nonexistent/ca.pem"), "--kms-ca: no such file"),
        (argv("--kms-identity", "kms"), "--kms-identity"),
        (argv("--nickname", " "), "--nickname must not be empty"),
    ],
)
def test_bad_options_say_which_and_why(args: list[str], message: str) -> None:
    """Each bad option gives a UsageError naming the option."""
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        parse_args(args, environ={})


@pytest.mark.parametrize(
    ("room", "identity", "message"),
    [
        ("lobby", ALICE, "ROOM-URI"),
        (ROOM, "alice@example.net", "--identity"),
        ("tel:+123", ALICE, "ROOM-URI"),
        ("<sip:lobby@conf.example.net>", ALICE, "ROOM-URI"),
        ("sip:lobby@conf.example.net;transport=tcp", ALICE, "without parameters"),
    ],
)
def test_uris_must_be_bare_sip_uris(room: str, identity: str, message: str) -> None:
    """ROOM-URI and --identity are bare sip:user@host URIs (PROFILE §1)."""
    args = argv()
    args[1], args[3] = room, identity
    with pytest.raises(UsageError, match=message):
        parse_args(args, environ={})


def test_plain_http_kms_needs_the_explicit_switch() -> None:
    """http:// is refused unless --kms-insecure-http is given (PROFILE §3)."""
    args = argv()
    args[5] = "http://127.0.0.1:8080/mikey-ticket/v1"
    with pytest.raises(UsageError, match="needs --kms-insecure-http"):
        parse_args(args, environ={})
    assert parse_args([*args, "--kms-insecure-http"], environ={}).kms_insecure_http


class Reactor(MemoryReactorClock):
    """MemoryReactorClock records triggers but cannot remove them."""

    def removeSystemEventTrigger(self, triggerID: Any) -> None:
        self.triggers_removed = getattr(self, "triggers_removed", 0) + 1


def run_now(args: list[str], kms: Any = None) -> tuple[int, str]:
    """Run the CLI on a memory reactor when it finishes without waiting on anything."""
    err = io.StringIO()
    options: dict[str, Any] = {"stdout": io.StringIO(), "stderr": err, "environ": {}}
    if kms is not None:
        options["kms_factory"] = lambda _reactor, _options: kms
    d: Deferred[int] = ensureDeferred(run(Reactor(), args, **options))
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the CLI did not finish at once"
    assert isinstance(results[0], int), results[0]
    return results[0], err.getvalue()


def test_usage_error_exits_2_with_usage_and_reason() -> None:
    """A usage error prints the usage line and the reason, and exits with 2."""
    code, err = run_now(argv("--proxy", "x"))
    assert code == 2
    assert err.startswith("usage: focus-ue")
    assert "focus-ue: error: --proxy: expected HOST:PORT, got 'x'" in err


class FailingKms:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def request_ticket(self, **_kw: Any) -> Deferred[Any]:
        return fail(self.error)


def test_kms_unavailable_exits_3_with_the_reason() -> None:
    """An unreachable KMS ends the CLI with exit code 3 and says why."""
    code, err = run_now(
        argv(), FailingKms(KmsUnavailable("connection refused", attempts=2, http_status=None))
    )
    assert code == 3
    assert "joining sip:lobby@conf.example.net as sip:alice@example.net" in err
    assert "error: KMS ticket request failed: KMS unavailable after 2 attempt(s)" in err


def test_kms_refusal_exits_3_with_status_code_and_hint() -> None:
    """A KMS refusal reports the HTTP status, the MIKEY ERR and what to check."""
    code, err = run_now(argv(), FailingKms(KmsRejected(http_status=403, err_code=7)))
    assert code == 3
    assert "HTTP 403, MIKEY ERR 7" in err
    assert "check --kms-key, --identity" in err


def answer_argv(*extra: str) -> list[str]:
    return [
        "answer",
        "--identity",
        ALICE,
        "--kms-url",
        "https://kms.example.net/mikey-ticket/v1",
        "--kms-key",
        KEY,
        "--listen",
        "127.0.0.1:5070",
        *extra,
    ]


def test_answer_listens_and_has_no_room_or_proxy() -> None:
    """answer: SIP on --listen, MSRP ports from --msrp-ports, the room learned later."""
    options = parse_args(answer_argv("--msrp-ports", "30000-30010", "--wait", "60"), environ={})
    assert options.command == "answer"
    config = options.config
    assert (config.room, config.proxy, config.listen) == ("", None, ("127.0.0.1", 5070))
    assert config.local_host == "127.0.0.1"
    assert config.msrp_port_range == (30000, 30010)
    assert config.answer_wait == 60.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (answer_argv()[:-2], "the following arguments are required: --listen"),
        (answer_argv("--msrp-ports", "30010-30000"), "--msrp-ports: expected LOW-HIGH"),
        (answer_argv("--msrp-ports", "many"), "--msrp-ports: expected LOW-HIGH"),
        (answer_argv("--transport", "tls"), "--transport tls is not supported"),
        (answer_argv("--wait", "0"), "--wait must be positive"),
        (answer_argv("--proxy", "127.0.0.1:5060"), "unrecognized arguments: --proxy"),
    ],
)
def test_bad_answer_options_say_which_and_why(args: list[str], message: str) -> None:
    """Each bad answer option gives a UsageError naming it."""
    with pytest.raises(UsageError, match=message):
        parse_args(args, environ={})


class ThreadReactor:
    """callFromThread that records calls (lists are safe to append to from a thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...]]] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.calls.append((f, args))


def test_stdin_lines_are_read_in_a_thread_and_bounded() -> None:
    """Lines go to the reactor thread in order, an over-long line is refused with a
    message instead of being sent, and end of input is reported last."""
    reactor = ThreadReactor()
    errors: list[str] = []
    lines: list[str] = []
    eof: list[bool] = []
    stream = io.StringIO("first\n" + "x" * 25 + "\nsecond\nlast")
    source = StdinLines(reactor, stream, max_line=10, on_error=errors.append)
    source.start(lines.append, lambda: eof.append(True))
    assert source.thread is not None
    source.thread.join(5)
    for f, args in reactor.calls:
        f(*args)
    assert lines == ["first\n", "second\n", "last"]
    assert errors == ["input line longer than 10 characters: not sent"]
    assert eof == [True]
