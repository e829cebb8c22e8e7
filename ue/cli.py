"""``focus-ue``: the command line of the UE.

    focus-ue join ROOM-URI --identity URI --kms-url URL (--kms-key HEX | --kms-key-file F)
             [--kms-ca F | --kms-insecure-http] --proxy HOST:PORT [--transport udp|tcp|tls]
             [--nickname N] [--linger SECONDS] ...
    focus-ue answer --listen HOST:PORT --identity URI --kms-url URL (--kms-key HEX | ...)
             [--msrp-ports LOW-HIGH] [--wait SECONDS] ...

``answer`` waits for one dial-out INVITE from the focus and answers it as MIKEY responder
(see :mod:`ue.client`); afterwards both commands behave the same.

stdin: one chat message per line; ``/msg URI text`` sends a private message, ``/nick N``
asks for a nickname, ``//text`` sends ``/text``. stdout: one JSON object per received
message (``{"from", "to", "content_type", "body", "private"}``). stderr: progress and
errors, one line each, prefixed ``focus-ue:``.

Exit codes: 0 after stdin ended, ``--linger`` passed and BYE was sent; 2 usage error;
3 KMS unavailable or refused; 4 SIP error (status and Warning on stderr); 5 SDP answer or
keying (TRANSFER_RESP) unusable; 6 MSRP leg failed or timed out; 7 the focus hung up
(BYE); 1 anything else.

``SSLKEYLOGFILE``: when set, the TLS secrets of the MSRP leg are appended to that file in
NSS key log format (PROFILE §9), so tshark can decrypt the leg.

Only :func:`main` touches the global reactor (``react``); :func:`run` takes a reactor, a
line source and output streams, so tests and benchmarks can drive it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

import attrs
from twisted.internet.defer import Deferred, ensureDeferred, race
from twisted.internet.task import deferLater, react
from twisted.python.failure import Failure

from focus.sip.errors import SipError
from focus.sip.uri import SipURI, parse_uri
from focus.tls_psk import DEFAULT_CIPHERS, TLSPSKConfig, TLSPSKError
from kms_client import KmsClient, RetryPolicy, https_agent

from .chat import Chat, InputError, Nick, Private, parse_input_line
from .client import ChatClient, TicketSource, UeConfig
from .errors import UeError

__all__ = ["LineSource", "UsageError", "build_parser", "main", "make_kms", "parse_args", "run"]


class UsageError(Exception):
    """A bad command line; the message says which option and why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's hook; never returns
        raise UsageError(message)


_EPILOG = """\
stdin:  one message per line; /msg URI text = private message; /nick N = nickname;
        //text sends /text.  End of input (+ --linger) = leave with BYE.
stdout: one JSON object per received message:
        {"from", "to", "content_type", "body", "private"}
exit:   0 left normally, 2 usage, 3 KMS, 4 SIP error, 5 SDP/keying, 6 MSRP leg,
        7 the focus hung up, 1 other.  SSLKEYLOGFILE=F appends the leg's TLS secrets.
"""


def _common(sub: argparse.ArgumentParser) -> None:
    """Options both commands take: identity, KMS, SIP transport, MSRP and chat."""
    sub.add_argument("--identity", required=True, metavar="URI", help="our SIP/MIKEY identity")
    kms = sub.add_argument_group("KMS (PROFILE §3)")
    kms.add_argument("--kms-url", required=True, metavar="URL", help="KMS base URL")
    keys = kms.add_mutually_exclusive_group(required=True)
    keys.add_argument("--kms-key", metavar="HEX", help="our KMS pre-shared key (hex)")
    keys.add_argument("--kms-key-file", metavar="FILE", help="file holding the key (hex)")
    trust = kms.add_mutually_exclusive_group()
    trust.add_argument("--kms-ca", metavar="FILE", help="PEM CA to check the KMS with")
    trust.add_argument(
        "--kms-insecure-http", action="store_true", help="allow a plain http:// KMS URL"
    )
    kms.add_argument(
        "--kms-identity", metavar="URI", help="IDRkms (default sip:kms@<KMS host>, PROFILE §4)"
    )
    kms.add_argument("--kms-psk-id", metavar="TEXT", help="IDRpsk (default: the identity)")
    kms.add_argument("--kms-timeout", type=float, default=10.0, metavar="SECONDS")
    sip = sub.add_argument_group("SIP")
    sip.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    sip.add_argument("--bye-timeout", type=float, default=5.0, metavar="SECONDS")
    chat = sub.add_argument_group("MSRP and chat")
    chat.add_argument("--nickname", metavar="N", help="ask for this nickname once joined")
    chat.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep printing for this long after stdin ended, then leave",
    )
    chat.add_argument("--leg-timeout", type=float, default=10.0, metavar="SECONDS")
    chat.add_argument(
        "--cipher-suites", default=DEFAULT_CIPHERS, metavar="LIST", help="OpenSSL TLS-PSK suites"
    )
    sub.add_argument("-v", "--verbose", action="store_true", help="also log library events")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="focus-ue",
        description="Command-line SIP/MSRP user agent for the secure chat-conference focus.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    join = commands.add_parser(
        "join",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="dial in to a chat room and chat (stdin lines out, JSON lines in)",
        description="Dial in to ROOM-URI: stdin lines are sent, received messages are "
        "printed as JSON lines, progress goes to stderr.",
    )
    join.add_argument("room", metavar="ROOM-URI", help="the conference URI (sip:room@host)")
    _common(join)
    sip = join.add_argument_group("SIP (join)")
    sip.add_argument("--proxy", required=True, metavar="HOST:PORT", help="next hop for SIP")
    sip.add_argument("--sip-ca", metavar="FILE", help="PEM CA for SIP over TLS")
    sip.add_argument("--local", default="127.0.0.1", metavar="HOST", help="address to bind")
    sip.add_argument("--sip-port", type=int, default=0, metavar="PORT", help="0: any")
    sip.add_argument("--invite-timeout", type=float, default=32.0, metavar="SECONDS")
    answer = commands.add_parser(
        "answer",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="wait for the focus to dial out to us, answer as MIKEY responder, then chat",
        description="Listen on --listen for one INVITE (a dial-out from the focus), resolve "
        "its ticket at the KMS, answer with TRANSFER_RESP and chat as with join.",
    )
    _common(answer)
    where = answer.add_argument_group("SIP and MSRP (answer)")
    where.add_argument(
        "--listen", required=True, metavar="HOST:PORT", help="SIP address (UDP and TCP)"
    )
    where.add_argument(
        "--msrp-ports",
        default="20000-20999",
        metavar="LOW-HIGH",
        help="ports for a passive MSRP leg (when the focus offers a=setup:active)",
    )
    where.add_argument(
        "--wait", type=float, default=300.0, metavar="SECONDS", help="how long to wait for it"
    )
    return parser


@attrs.frozen
class JoinOptions:
    """A validated ``join`` or ``answer`` command line."""

    config: UeConfig
    kms_url: str
    kms_identity: str
    kms_key: bytes = attrs.field(repr=False)
    kms_psk_id: bytes
    kms_ca: Path | None
    kms_insecure_http: bool
    kms_timeout: float
    verbose: bool
    linger: float = 0.0
    command: str = "join"


def _sip_uri(text: str, what: str) -> str:
    try:
        uri = parse_uri(text)
    except SipError as exc:
        raise UsageError(f"{what}: {text!r} is not a SIP URI ({exc})") from None
    if not isinstance(uri, SipURI) or not uri.user:
        raise UsageError(f"{what}: {text!r} is not a sip:user@host URI")
    if "<" in text or ";" in text or "?" in text:
        raise UsageError(f"{what}: give the bare URI without parameters or brackets")
    return text


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{what}: expected HOST:PORT, got {text!r}")
    return host, int(port)


def _key(opts: argparse.Namespace) -> bytes:
    if opts.kms_key is not None:
        text, where = opts.kms_key, "--kms-key"
    else:
        where = f"--kms-key-file {opts.kms_key_file}"
        try:
            text = Path(opts.kms_key_file).read_text("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not ASCII hex"
            raise UsageError(f"{where}: cannot read: {reason}") from None
    try:
        key = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise UsageError(f"{where}: the key must be hexadecimal") from None
    if len(key) not in (16, 32):
        raise UsageError(f"{where}: the key must be 16 or 32 bytes, got {len(key)}")
    return key


def _positive(value: float, what: str, *, zero: bool = False) -> float:
    if value < 0 or (value == 0 and not zero):
        raise UsageError(f"{what} must be {'non-negative' if zero else 'positive'}")
    return value


def parse_args(argv: Sequence[str], environ: dict[str, str] | None = None) -> JoinOptions:
    """Parse and check a command line; raise :class:`UsageError` with the reason."""
    opts = build_parser().parse_args(list(argv))
    env = os.environ if environ is None else environ
    joining = opts.command == "join"
    room = _sip_uri(opts.room, "ROOM-URI") if joining else ""
    identity = _sip_uri(opts.identity, "--identity")
    url = urlsplit(opts.kms_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(f"--kms-url: expected https://host[:port]/path, got {opts.kms_url!r}")
    if url.scheme == "http" and not opts.kms_insecure_http:
        raise UsageError("--kms-url: plain http:// needs --kms-insecure-http (PROFILE §3)")
    if url.scheme == "https" and opts.kms_insecure_http:
        raise UsageError("--kms-insecure-http is only for an http:// KMS URL")
    kms_identity = opts.kms_identity or f"sip:kms@{url.hostname}"
    if opts.kms_identity is not None:
        _sip_uri(kms_identity, "--kms-identity")
    kms_ca = None
    if opts.kms_ca is not None:
        kms_ca = Path(opts.kms_ca)
        if not kms_ca.is_file():
            raise UsageError(f"--kms-ca: no such file {opts.kms_ca}")
    sip_ca = None
    if joining and opts.sip_ca is not None:
        sip_ca = Path(opts.sip_ca)
        if not sip_ca.is_file():
            raise UsageError(f"--sip-ca: no such file {opts.sip_ca}")
    try:
        TLSPSKConfig(ciphers=opts.cipher_suites)
    except (TLSPSKError, ValueError) as exc:
        raise UsageError(f"--cipher-suites: {exc}") from None
    if joining and not 0 <= opts.sip_port < 65536:
        raise UsageError("--sip-port must be 0..65535")
    if not joining and opts.transport == "tls":
        raise UsageError("answer: --transport tls is not supported (no SIP certificate)")
    if opts.nickname is not None and not opts.nickname.strip():
        raise UsageError("--nickname must not be empty")
    keylog = env.get("SSLKEYLOGFILE") or None
    config = UeConfig(
        identity=identity,
        room=room,
        proxy=_host_port(opts.proxy, "--proxy") if joining else None,
        transport=opts.transport,
        nickname=opts.nickname,
        cipher_suites=opts.cipher_suites,
        keylog_path=Path(keylog) if keylog else None,
        leg_timeout=_positive(opts.leg_timeout, "--leg-timeout"),
        bye_timeout=_positive(opts.bye_timeout, "--bye-timeout"),
    )
    if joining:
        config = attrs.evolve(
            config,
            local_host=opts.local,
            sip_port=opts.sip_port,
            sip_tls_ca=sip_ca,
            invite_timeout=_positive(opts.invite_timeout, "--invite-timeout"),
        )
    else:
        listen = _host_port(opts.listen, "--listen")
        config = attrs.evolve(
            config,
            local_host=listen[0],
            listen=listen,
            msrp_port_range=_port_range(opts.msrp_ports),
            answer_wait=_positive(opts.wait, "--wait"),
        )
    return JoinOptions(
        config=config,
        kms_url=opts.kms_url,
        kms_identity=kms_identity,
        kms_key=_key(opts),
        kms_psk_id=(opts.kms_psk_id or identity).encode("utf-8"),
        kms_ca=kms_ca,
        kms_insecure_http=opts.kms_insecure_http,
        kms_timeout=_positive(opts.kms_timeout, "--kms-timeout"),
        verbose=opts.verbose,
        linger=_positive(opts.linger, "--linger", zero=True),
        command=opts.command,
    )


def _port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not (sep and low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
        raise UsageError(f"--msrp-ports: expected LOW-HIGH TCP ports, got {text!r}")
    return int(low), int(high)


def make_kms(reactor: Any, options: JoinOptions) -> KmsClient:
    """The KMS client of a command line (HTTPS checked against ``--kms-ca``)."""
    agent = https_agent(reactor, ca_file=options.kms_ca, connect_timeout=options.kms_timeout)
    return KmsClient(
        base_url=options.kms_url,
        kms_identity=options.kms_identity,
        psk=options.kms_key,
        http=agent,
        reactor=reactor,
        psk_id=options.kms_psk_id,
        allow_plain_http=options.kms_insecure_http,
        retry=RetryPolicy(timeout=options.kms_timeout, max_attempts=2),
    )


class LineSource(Protocol):
    """Where chat lines come from (stdin in the CLI)."""

    def start(self, on_line: Callable[[str], None], on_eof: Callable[[], None]) -> None: ...


MAX_LINE = 65536
"""Longest stdin line sent as one message (the demo rooms' max_message_size)."""


class StdinLines:
    """Lines of a text stream, read by a daemon thread and handed to the reactor thread.

    A thread rather than ``twisted.internet.stdio``: stdin may be a regular file
    (``focus-ue … < script``), which epoll cannot watch, and StandardIO would also make
    stdout non-blocking.
    """

    def __init__(
        self,
        reactor: Any,
        stream: IO[str],
        *,
        max_line: int = MAX_LINE,
        on_error: Callable[[str], None] = lambda _text: None,
    ) -> None:
        self._reactor = reactor
        self._stream = stream
        self._max_line = max_line
        self._on_error = on_error
        self.thread: threading.Thread | None = None

    def start(self, on_line: Callable[[str], None], on_eof: Callable[[], None]) -> None:
        def read() -> None:
            too_long = False
            while line := self._stream.readline(self._max_line + 1):
                if too_long or len(line) > self._max_line:
                    # Bounded buffer: the rest of an over-long line is dropped, loudly.
                    if not too_long:
                        self._reactor.callFromThread(
                            self._on_error,
                            f"input line longer than {self._max_line} characters: not sent",
                        )
                    too_long = not line.endswith("\n")
                    continue
                self._reactor.callFromThread(on_line, line)
            self._reactor.callFromThread(on_eof)

        self.thread = threading.Thread(target=read, name="focus-ue-stdin", daemon=True)
        self.thread.start()


async def run(
    reactor: Any,
    argv: Sequence[str],
    *,
    lines: LineSource | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    environ: dict[str, str] | None = None,
    kms_factory: Callable[[Any, JoinOptions], TicketSource] = make_kms,
) -> int:
    """Run one ``focus-ue`` command line on ``reactor``; return the exit code."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr

    def log(line: str) -> None:
        err.write(f"focus-ue: {line}\n")
        err.flush()

    try:
        options = parse_args(argv, environ)
    except UsageError as exc:
        err.write(build_parser().format_usage())
        log(f"error: {exc}")
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    if options.verbose:
        _log_to(err)
    if options.config.keylog_path is not None:
        log(f"SSLKEYLOGFILE: appending TLS secrets of the MSRP leg to {options.config.keylog_path}")

    def show(received: Any) -> None:
        out.write(received.to_json() + "\n")
        out.flush()

    try:
        kms = kms_factory(reactor, options)
    except (ValueError, OSError) as exc:
        log(f"error: KMS client: {exc}")
        return 2
    client = ChatClient(options.config, kms=kms, reactor=reactor, on_message=show, on_log=log)
    trigger = reactor.addSystemEventTrigger("before", "shutdown", client.leave)
    try:
        return await _session(reactor, client, lines, options.linger, log, command=options.command)
    finally:
        with contextlib.suppress(ValueError, KeyError):  # already fired at shutdown
            reactor.removeSystemEventTrigger(trigger)


async def _session(
    reactor: Any,
    client: ChatClient,
    lines: LineSource | None,
    linger: float,
    log: Callable[[str], None],
    *,
    command: str,
) -> int:
    try:
        await (client.join() if command == "join" else client.answer())
    except UeError as exc:
        log(f"error: {exc}")
        return exc.exit_code
    input_done: Deferred[None] = Deferred()

    def on_line(line: str) -> None:
        try:
            command = parse_input_line(line)
        except InputError as exc:
            log(str(exc))
            return
        if isinstance(command, Chat):
            client.send_chat(command.text)
        elif isinstance(command, Private):
            client.send_private(command.to, command.text)
        elif isinstance(command, Nick):
            client.set_nickname(command.nickname)

    def on_eof() -> None:
        if not input_done.called:
            input_done.callback(None)

    source = lines if lines is not None else StdinLines(reactor, sys.stdin, on_error=log)
    source.start(on_line, on_eof)
    # race() only ends early on a success, so the end of the session is turned into a
    # value: None (we left) or the UeError that ended it.
    contenders: list[Deferred[Any]] = [_outcome(client.when_ended()), input_done]
    index, outcome = await race(contenders)
    if index == 1:
        if linger > 0:
            log(f"end of input; staying {linger:g} s")
            contenders = [_outcome(client.when_ended()), deferLater(reactor, linger, lambda: None)]
            index, outcome = await race(contenders)
        else:
            log("end of input")
        if index == 1:
            await client.leave()
            log("left the room")
            return 0
    if isinstance(outcome, UeError):
        log(f"error: {outcome}")
        return outcome.exit_code
    return 0


def _outcome(d: Deferred[None]) -> Deferred[UeError | None]:
    def failed(failure: Failure) -> UeError:
        if isinstance(failure.value, UeError):
            return failure.value
        return UeError(str(failure.value))

    return d.addErrback(failed)


def _log_to(stream: IO[str]) -> None:
    from twisted.logger import globalLogBeginner, textFileLogObserver

    observer: Any = textFileLogObserver(stream)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``focus-ue`` console script: run on the global reactor, return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    codes: list[int] = []

    def go(reactor: Any) -> Deferred[None]:
        async def body() -> None:
            codes.append(await run(reactor, args))

        return ensureDeferred(body())

    try:
        react(go)
    except SystemExit as exc:
        if codes:
            return codes[0]
        return exc.code if isinstance(exc.code, int) else 1
