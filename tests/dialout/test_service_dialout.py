"""Dial-out through the real dial-in service (FocusApplication) in memory: the member the
Dialer reached is adopted as a dial-out participant, its leg built in the answer's role,
and the attempt succeeds when the session is bound."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from focus.conference import Direction, LegState
from focus.control import ConferenceControl, EventTap, adopt_dial_out
from focus.dialout import Dialer, DialerSettings
from focus.service import FocusApplication
from focus.sip import Send, Target, UAConfig, UserAgent
from focus.sip.message import Request, parse_message
from focus.sip.ua import make_response
from policies import DialOutMember, Identity, RetryPolicy, parse_policy
from tests.focus._harness import FakeKms as ResolverKms
from tests.focus._harness import config, counter_random

from ._harness import FakeKms, member_answer

ROOM = "sip:lobby@conf.example.net"
CAROL = "sip:carol@127.0.0.1:5070"
NOW = 1_800_000_000.0
POLICY = f"""
[defaults]
allow = ["sip:*@example.net", "sip:carol@127.0.0.1"]

[[room]]
uri = "{ROOM}"
[[room.dial_out]]
uri = "{CAROL}"
"""


class Rig:
    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(NOW)
        self.events = EventTap()
        self.app = FocusApplication(
            config=config(),
            policy=parse_policy(POLICY, "policy.toml"),
            kms=ResolverKms(),
            reactor=self.reactor,
            random=counter_random(),
            events=self.events,
        )
        self.ua = UserAgent(
            UAConfig(host="127.0.0.1", listen=(Target("UDP", "127.0.0.1", 5060),),
                     domains=("conf.example.net",)),
            self.app,
            counter_random(),
        )  # fmt: skip
        self.app.ua = self.ua
        self.kms = FakeKms()
        self.kms.clock = self.reactor  # type: ignore[assignment]
        app = self.app
        self.control = ConferenceControl(
            app,  # type: ignore[arg-type]
            events=self.events,
            clock=self.reactor,
            adopt=lambda answer, why: adopt_dial_out(app, answer, why, invited=False),
        )
        self.dialer = Dialer(
            settings=DialerSettings(sip_host="127.0.0.1", path_host="127.0.0.1"),
            ua=lambda: self.ua,
            kms=self.kms,
            host=self.control,
            clock=self.reactor,
            allocator=app.allocator,
            events=self.events,
        )
        self.control.attach(self.dialer)
        self.sent: list[Request] = []

    def pump(self, seconds: float = 0.0) -> None:
        self.reactor.advance(seconds)
        for command in self.ua.drain():
            if isinstance(command, Send):
                message = parse_message(command.data)
                if isinstance(message, Request):
                    self.sent.append(message)


def test_a_keyed_member_becomes_a_dial_out_participant_and_the_attempt_succeeds() -> None:
    """After the 200 and the verified TRANSFER_RESP, the service holds the member as a
    dial-out participant with its dialog; the focus connects (the member answered
    passive); once the leg is up and bound the job ends joined."""
    rig = Rig()
    (job,) = rig.control.start()
    rig.pump()
    (invite,) = [r for r in rig.sent if r.method == "INVITE"]
    ok = make_response(
        invite, 200, to_tag="m", headers=[("Contact", f"<{CAROL}>")],
        body=member_answer(invite, rig.kms.grants[0], now=rig.reactor.seconds()),
        content_type="application/sdp",
    )  # fmt: skip
    rig.ua.datagram_received(ok.encode(), Target("UDP", "127.0.0.1", 5070), rig.reactor.seconds())
    rig.pump()
    (participant,) = rig.app.conference.participants
    assert participant.direction is Direction.DIAL_OUT
    assert participant.uri == "sip:carol@127.0.0.1"
    call = rig.app.calls[participant.leg_id]
    assert call.dialog is not None and call.leg is not None
    host, port, *_ = rig.reactor.tcpClients[0]
    assert (host, port) == ("127.0.0.1", 3000)
    assert not job.finished
    rig.app.leg_up(call.leg)  # the TLS-PSK handshake completed
    rig.pump()
    assert participant.state is LegState.BOUND
    assert job.result is not None and job.result.joined


def test_a_member_the_room_refuses_is_not_retried() -> None:
    """A member the policy does not admit is hung up and not dialled again."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, DialOutMember(Identity.parse("sip:eve@127.0.0.1:5071"),
                                              RetryPolicy(attempts=3, backoff=1.0)))  # fmt: skip
    rig.pump()
    (invite,) = [r for r in rig.sent if r.method == "INVITE"]
    ok = make_response(
        invite, 200, to_tag="m", headers=[("Contact", "<sip:eve@127.0.0.1:5071>")],
        body=member_answer(invite, rig.kms.grants[0], member="sip:eve@127.0.0.1",
                           now=rig.reactor.seconds()),
        content_type="application/sdp",
    )  # fmt: skip
    rig.ua.datagram_received(ok.encode(), Target("UDP", "127.0.0.1", 5071), rig.reactor.seconds())
    rig.pump(5.0)
    assert [r.method for r in rig.sent if r.method in ("INVITE", "BYE")] == ["INVITE", "BYE"]
    assert job.result is not None and job.result.outcome.value == "policy"
    assert rig.app.conference.participants == ()
