"""FocusService wiring without sockets: policy reload, the event log lines, tap options,
and `twistd -n focus --config` starting for real."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger
from twisted.python import usage

from focus.config import example_config_path
from focus.eventlog import EventLog, event_observer
from focus.service import FocusService
from focus.tap import Options

from ._harness import POLICY, FakeKms, config

TWISTD = str(Path(sys.executable).with_name("twistd"))


def service(tmp_path: Path, stream: io.StringIO) -> FocusService:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    cfg = config()
    cfg = _with_policy(cfg, policy)
    return FocusService(cfg, reactor=MemoryReactorClock(), kms=FakeKms(), log_stream=stream)


def _with_policy(cfg: Any, policy: Path) -> Any:
    import attrs

    return attrs.evolve(cfg, policy_file=policy)


def test_policy_reload_keeps_the_old_policy_when_the_file_is_broken(tmp_path: Path) -> None:
    """reload_policy swaps in a valid file and keeps the old policy (logged) otherwise."""
    stream = io.StringIO()
    svc = service(tmp_path, stream)
    svc._start_logging()
    try:
        policy = tmp_path / "policy.toml"
        policy.write_text(POLICY + '\n[[room]]\nuri = "sip:new@conf.example.net"\n')
        assert svc.reload_policy()
        assert len(svc.app.conference.policy.rooms) == 3
        policy.write_text(POLICY + "\n[[room]]\nurl = 1\n")
        assert not svc.reload_policy()
        assert len(svc.app.conference.policy.rooms) == 3
    finally:
        from twisted.logger import globalLogPublisher

        globalLogPublisher.removeObserver(svc._observer)
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == ["policy_reloaded", "policy_reload_failed"]
    assert "policy.toml:" in stream.getvalue()


def test_event_observer_writes_only_focus_events() -> None:
    """JSON lines carry event, call_id, room and leg_id; other log events are skipped and
    bytes values are withheld."""
    stream = io.StringIO()
    observer = event_observer(stream, "json")
    from twisted.logger import globalLogPublisher

    globalLogPublisher.addObserver(observer)
    try:
        Logger().info("not an event")
        EventLog().emit("join", call_id="c1", room="sip:r@x", leg_id="l1", key=b"\x01\x02")
    finally:
        globalLogPublisher.removeObserver(observer)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "join" and record["call_id"] == "c1" and record["leg_id"] == "l1"
    assert record["key"] == "<bytes withheld>" and record["level"] == "info"


def test_text_format() -> None:
    """The text format is one line: time, level, event, key=value pairs."""
    stream = io.StringIO()
    observer = event_observer(stream, "text")
    observer({"focus_event": "leave", "log_time": 0.0, "room": "sip:r@x", "log_level": None})
    assert stream.getvalue() == '1970-01-01T00:00:00.000Z info leave room="sip:r@x"\n'


def test_tap_options_report_config_errors(tmp_path: Path) -> None:
    """A broken focus.toml is a usage error naming file and line; the example loads."""
    bad = tmp_path / "focus.toml"
    bad.write_text("[kms]\nbase_url = 1\n[policy]\nfile = 'policy.toml'\n")
    with pytest.raises(usage.UsageError, match=r"focus.toml:2: kms.base_url"):
        Options().parseOptions(["--config", str(bad)])
    options = Options()
    options.parseOptions(["--config", str(example_config_path())])
    assert options.focus_config.kms.identity == "sip:kms@example.net"


class _Watch(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if b'"event": "ready"' in self.out and not self.ready.called:
            self.ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        if not self.ready.called:
            self.ready.errback(RuntimeError(self.out.decode(errors="replace")[-2000:]))
        self.ended.callback(None)


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.interop
@pytest_twisted.inlineCallbacks
def test_twistd_focus_runs(tmp_path: Path) -> Any:
    """`twistd -n focus --config focus.toml` starts, logs the ready event, stops on TERM."""
    from twisted.internet import reactor

    text = example_config_path().read_text()
    text = text.replace("port = 5060", f"port = {_free(socket.SOCK_DGRAM)}", 1)
    text = text.replace("port = 5060", f"port = {_free(socket.SOCK_STREAM)}", 1)
    demo = example_config_path().parent.parent / "policies" / "examples" / "demo.toml"
    text = text.replace('"../policies/examples/demo.toml"', f'"{demo}"')
    cfg = tmp_path / "focus.toml"
    cfg.write_text(text)
    watch = _Watch()
    proc = reactor.spawnProcess(
        watch, TWISTD, [TWISTD, "-n", "--pidfile=", "focus", "--config", str(cfg)],
        env=dict(os.environ), path=str(tmp_path),
    )  # fmt: skip
    killer = reactor.callLater(20, proc.signalProcess, "KILL")
    try:
        yield watch.ready
        # twistd installs its signal handlers once the reactor runs, just after the
        # service started: give it a moment before asking it to stop.
        yield deferLater(reactor, 0.5, lambda: None)
    finally:
        proc.signalProcess("TERM")
        yield watch.ended
        if killer.active():
            killer.cancel()
    assert b'"event": "stopped"' in watch.out, watch.out.decode(errors="replace")[-3000:]
