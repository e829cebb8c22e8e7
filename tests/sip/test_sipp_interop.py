"""Interop with sipp (UDP and TCP) against a UAS built on our stack, on loopback."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, protocol
from twisted.internet.task import deferLater

from focus.adapters.sip_transport import SipStack
from focus.sip.ua import UAConfig

from .uas_app import TestUAS

pytestmark = pytest.mark.interop

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = "/usr/bin/sipp"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect(protocol.ProcessProtocol):
    def __init__(self, done: defer.Deferred[tuple[int, bytes]]) -> None:
        self.done = done
        self.out = b""

    def outReceived(self, data: bytes) -> None:
        self.out += data[-20000:]

    def errReceived(self, data: bytes) -> None:
        self.out += data[-20000:]

    def processEnded(self, reason: Any) -> None:
        self.done.callback((reason.value.exitCode, self.out))


def run_sipp(reactor: Any, scenario: str, transport: str, port: int, tmp: Path,
             extra: tuple[str, ...] = ()) -> defer.Deferred[tuple[int, bytes]]:  # fmt: skip
    """Start sipp bounded by -timeout 20s and a 30 s kill switch."""
    kind = socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM
    args = [
        SIPP, "-sf", str(SCENARIOS / scenario), "-m", "1", "-timeout", "20s",
        "-timeout_error", "-trace_err", "-error_file", str(tmp / "errors.log"),
        "-trace_stat", "-stf", str(tmp / "stats.csv"),
        "-i", "127.0.0.1", "-p", str(free_port(kind)), "-t", transport, "-nostdin",
        *extra, f"127.0.0.1:{port}",
    ]  # fmt: skip
    done: defer.Deferred[tuple[int, bytes]] = defer.Deferred()
    proc = reactor.spawnProcess(_Collect(done), SIPP, args, env=dict(os.environ), path=str(tmp))
    killer = reactor.callLater(30, proc.signalProcess, "KILL")
    done.addBoth(lambda r: (killer.cancel() if killer.active() else None, r)[1])
    return done


@pytest_twisted.inlineCallbacks
def _scenario(tmp_path: Path, scenario: str, transport: str, extra: tuple[str, ...] = ()) -> Any:
    from twisted.internet import reactor

    app = TestUAS(reactor, delay_s=10.0)
    cfg = UAConfig(host="127.0.0.1", listen=())
    stack = SipStack(reactor, cfg, app, os.urandom)
    if transport == "u1":
        lp = stack.listen_udp(0, "127.0.0.1")
    else:
        lp = yield stack.listen_tcp(0, "127.0.0.1")
    try:
        code, out = yield run_sipp(reactor, scenario, transport, lp.getHost().port, tmp_path, extra)
    finally:
        app.stop()
        yield stack.stop()
    errors = tmp_path / "errors.log"
    err_text = errors.read_text(errors="replace") if errors.exists() else ""
    assert code == 0, out.decode(errors="replace")[-3000:] + err_text
    # Exit codes alone are not trusted: the error log must be empty and the
    # statistics must count one successful call and no failed one.
    assert err_text.strip() == "", err_text
    stats = (tmp_path / "stats.csv").read_text().splitlines()
    header, last = stats[0].split(";"), stats[-1].split(";")
    row = dict(zip(header, last, strict=False))
    assert row["SuccessfulCall(C)"] == "1" and row["FailedCall(C)"] == "0", row
    return app


@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest_twisted.inlineCallbacks
def test_sipp_options(tmp_path: Path, transport: str) -> Any:
    """sipp's OPTIONS gets 200 with an Allow header listing INVITE."""
    yield _scenario(tmp_path, "options.xml", transport)


@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest_twisted.inlineCallbacks
def test_sipp_invite_ack_bye(tmp_path: Path, transport: str) -> Any:
    """sipp's INVITE is answered with SDP, its ACK reaches the app, its BYE ends the dialog."""
    app = yield _scenario(tmp_path, "invite_bye.xml", transport)
    assert len(app.acks) == 1 and app.ended == ["bye"]


@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest_twisted.inlineCallbacks
def test_sipp_cancel_before_answer(tmp_path: Path, transport: str) -> Any:
    """sipp CANCELs while our UAS delays the answer: 200 for CANCEL, 487 for INVITE."""
    app = yield _scenario(tmp_path, "cancel.xml", transport)
    assert app.cancelled == 1


@pytest_twisted.inlineCallbacks
def test_sipp_lost_ack_over_udp(tmp_path: Path) -> Any:
    """sipp ignores the first 200 and ACKs its retransmission (§13.3.1.4)."""
    app = yield _scenario(tmp_path, "lost_ack.xml", "u1", ("-nr",))
    assert len(app.acks) == 1 and app.ended == ["bye"]


@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest_twisted.inlineCallbacks
def test_our_uac_against_sipp_uas(tmp_path: Path, transport: str) -> Any:
    """Dial-out: our UAC INVITEs sipp's built-in UAS, ACKs its 200 and hangs up with BYE."""
    from twisted.internet import reactor

    from focus.sip.message import Response
    from focus.sip.ua import OutgoingRequest

    kind = socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM
    sipp_port = free_port(kind)
    args = [
        SIPP, "-sn", "uas", "-m", "1", "-timeout", "20s", "-timeout_error",
        "-trace_err", "-error_file", str(tmp_path / "errors.log"),
        "-trace_stat", "-stf", str(tmp_path / "stats.csv"),
        "-i", "127.0.0.1", "-p", str(sipp_port), "-t", transport, "-nostdin",
    ]  # fmt: skip
    done: defer.Deferred[tuple[int, bytes]] = defer.Deferred()
    proc = reactor.spawnProcess(
        _Collect(done), SIPP, args, env=dict(os.environ), path=str(tmp_path)
    )
    killer = reactor.callLater(30, proc.signalProcess, "KILL")
    stack = SipStack(reactor, UAConfig(host="127.0.0.1", listen=()), TestUAS(reactor), os.urandom)
    stack.listen_udp(0, "127.0.0.1")
    if transport == "t1":
        yield stack.listen_tcp(0, "127.0.0.1")
    tparam = ";transport=tcp" if transport == "t1" else ""
    try:
        yield deferLater(reactor, 0.5)  # let sipp bind its port
        answered: defer.Deferred[Response] = defer.Deferred()
        answered.addTimeout(10, reactor)

        def on_response(out: OutgoingRequest, resp: Response) -> None:
            if resp.status >= 200 and not answered.called:
                answered.callback(resp)

        out = stack.ua.invite(
            f"sip:service@127.0.0.1:{sipp_port}{tparam}",
            from_="<sip:lobby@127.0.0.1>",
            now=stack.now(),
            handler=on_response,
            body=b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 6000 RTP/AVP 0\r\n",
        )
        resp = yield answered
        assert resp.status == 200 and out.dialog is not None
        yield deferLater(reactor, 0.2)
        bye: defer.Deferred[Response] = defer.Deferred()
        bye.addTimeout(10, reactor)
        stack.ua.bye(
            out.dialog, stack.now(), lambda o, r: bye.callback(r) if not bye.called else None
        )
        resp = yield bye
        assert resp.status == 200
        code, output = yield done
    finally:
        if killer.active():
            killer.cancel()
        yield stack.stop()
    errors = tmp_path / "errors.log"
    err_text = errors.read_text(errors="replace") if errors.exists() else ""
    assert code == 0, output.decode(errors="replace")[-3000:] + err_text
    assert err_text.strip() == "", err_text
    rows = (tmp_path / "stats.csv").read_text().splitlines()
    row = dict(zip(rows[0].split(";"), rows[-1].split(";"), strict=False))
    assert row["SuccessfulCall(C)"] == "1" and row["FailedCall(C)"] == "0", row
