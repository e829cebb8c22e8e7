"""Dial-out (focus.dialout): pure decisions, and the Dialer driven in memory."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock

from focus.adapters.msrp_leg import LegConfig, PassiveLeg
from focus.dialout import (
    GiveUp,
    Outcome,
    Retry,
    after_attempt,
    build_leg,
    direct_target,
    outcome_of_status,
)
from focus.msrp import MsrpConnection, SessionRegistry
from focus.sdp import SessionDescription, SetupRole
from focus.sip.uri import SipURI
from focus.tls_psk import TLSPSKConfig
from kms_client import KmsUnavailable
from policies import DialOutMember, Identity, RetryPolicy

from ._harness import CAROL, CAROL_ID, ROOM, Rig, member_answer

RETRY = RetryPolicy(attempts=2, backoff=5.0, answer_timeout=20.0)


def member(uri: str = CAROL, retry: RetryPolicy = RETRY) -> DialOutMember:
    return DialOutMember(Identity.parse(uri), retry)


# -- pure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "warning", "outcome"),
    [
        (200, None, Outcome.ANSWERED),
        (486, None, Outcome.DECLINED),
        (603, None, Outcome.DECLINED),
        (408, None, Outcome.TIMEOUT),
        (487, None, Outcome.TIMEOUT),
        (488, '399 h "MIKEY: bad MAC"', Outcome.KEYING),
        (488, None, Outcome.SDP),
        (503, None, Outcome.SIP),
        (503, '399 h "overload"', Outcome.DECLINED),
    ],
)
def test_final_responses_are_classified(status: int, warning: str | None, outcome: Outcome) -> None:
    """Each final answer to a dial-out INVITE maps to one outcome."""
    assert outcome_of_status(status, warning) is outcome


def test_retries_follow_the_policy_and_stop() -> None:
    """Failures are retried with the policy's back-off until attempts run out; policy
    refusals and cancellations are not retried; success ends the job."""
    policy = RetryPolicy(attempts=3, backoff=10.0, backoff_factor=2.0)
    assert after_attempt(policy, 1, Outcome.DECLINED) == Retry(2, 10.0)
    assert after_attempt(policy, 2, Outcome.TIMEOUT) == Retry(3, 20.0)
    assert isinstance(after_attempt(policy, 3, Outcome.KEYING), GiveUp)
    assert isinstance(after_attempt(policy, 1, Outcome.POLICY), GiveUp)
    assert isinstance(after_attempt(policy, 1, Outcome.CANCELLED), GiveUp)
    assert after_attempt(policy, 1, Outcome.ANSWERED) is None


def test_direct_target_needs_an_ip_host_and_a_port() -> None:
    """IP host with port: direct; a domain or no port: through the proxy."""
    assert direct_target("sip:carol@127.0.0.1:5070") == ("127.0.0.1", 5070, None)
    assert direct_target("sip:c@[::1]:5070;transport=tcp") == ("::1", 5070, "TCP")
    assert direct_target("sip:carol@example.net:5070") is None
    assert direct_target("sip:carol@127.0.0.1") is None
    assert direct_target("not a uri") is None


# -- the dialer in memory -------------------------------------------------------------------


def test_offer_is_only_msrp_over_tls_actpass_with_a_transfer_init() -> None:
    """The KMS is asked as the room for the member; the INVITE comes from the room with
    an isfocus Contact and offers only TCP/TLS/MSRP with actpass and a=key-mgmt."""
    rig = Rig()
    rig.dialer.dial(ROOM, member())
    rig.pump()
    assert rig.kms.requests == [(ROOM, (CAROL_ID,))]
    ((invite, target),) = rig.requests("INVITE")
    assert (target.host, target.port) == ("127.0.0.1", 5070)
    assert "Route" not in invite.headers
    assert invite.from_.uri == SipURI.parse(ROOM)
    assert (invite.headers.get("Contact") or "").endswith(";isfocus")
    sdp = SessionDescription.parse(invite.body)
    (media,) = sdp.media
    assert (media.media, media.proto, media.formats) == ("message", "TCP/TLS/MSRP", ("*",))
    text = invite.body.decode()
    assert "a=setup:actpass" in text and "a=key-mgmt:mikey " in text
    assert "msrps://127.0.0.1:30000/" in text
    assert rig.allocator.in_use == frozenset({30000})


def test_answered_and_keyed_member_is_handed_to_the_host() -> None:
    """A 200 whose TRANSFER_RESP verifies (responder = the member) goes to the host with
    the role the answer chose; the job ends joined and the port is released when the
    focus connects (it does not listen)."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, member())
    progress: list[int] = []
    job.on_progress(lambda status, _reason: progress.append(status))
    rig.pump()
    ((invite, _),) = rig.requests("INVITE")
    rig.respond(invite, 180)
    rig.respond(invite, 200, body=member_answer(invite, rig.kms.grants[0]))
    assert rig.requests("ACK")
    (answer,) = rig.host.answers
    assert answer.key.responder == CAROL_ID and answer.key.initiator == ROOM
    assert (answer.member, answer.identity) == (CAROL, CAROL_ID)
    assert answer.line.focus_role is SetupRole.ACTIVE
    assert answer.line.connect_to == ("127.0.0.1", 3000)
    assert job.result is not None and job.result.joined
    assert progress == [180, 200]
    assert rig.events.named("dial_out_attempt")[0]["outcome"] == "answered"
    session = build_leg(
        answer, "leg-1", MsrpConnection(registry=SessionRegistry(), random=bytes),
        listener=None,  # type: ignore[arg-type]
        tls=TLSPSKConfig(), reactor=MemoryReactorClock(), clock=rig.clock, config=LegConfig(),
    )  # fmt: skip
    assert not isinstance(session, PassiveLeg)
    assert rig.allocator.in_use == frozenset()
    session.close()


def test_member_answering_active_gets_a_passive_leg_on_the_offered_port() -> None:
    """a=setup:active in the answer: the focus accepts on the port its offer named."""
    rig = Rig()
    rig.dialer.dial(ROOM, member())
    rig.pump()
    ((invite, _),) = rig.requests("INVITE")
    rig.respond(invite, 200, body=member_answer(invite, rig.kms.grants[0], setup="active"))
    (answer,) = rig.host.answers
    assert answer.line.focus_role is SetupRole.PASSIVE
    reactor = MemoryReactorClock()
    leg = build_leg(
        answer, "leg-1", MsrpConnection(registry=SessionRegistry(), random=bytes),
        listener=None,  # type: ignore[arg-type]
        tls=TLSPSKConfig(), reactor=reactor, clock=reactor, config=LegConfig(),
    )  # fmt: skip
    assert isinstance(leg, PassiveLeg)
    assert leg.port == answer.local_uri.port == reactor.tcpServers[0][0]
    leg.close()
    assert rig.allocator.in_use == frozenset()


def test_declining_member_is_retried_then_given_up_with_a_log_line() -> None:
    """486 Busy Here is retried after the back-off; after the last attempt the job
    gives up with a dial_out_gave_up event and frees its port."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, member())
    rig.pump()
    ((first, _),) = rig.requests("INVITE")
    rig.respond(first, 486)
    assert [r["attempt"] for r in rig.events.named("dial_out_retry")] == [2]
    rig.pump(4.9)
    assert len(rig.requests("INVITE")) == 1
    rig.pump(0.2)
    second = rig.requests("INVITE")[1][0]
    assert second.call_id != first.call_id
    rig.respond(second, 486)
    (gave_up,) = rig.events.named("dial_out_gave_up")
    assert (gave_up["uri"], gave_up["attempts"], gave_up["status"]) == (CAROL, 2, 486)
    assert job.result is not None and not job.result.joined
    assert job.result.outcome is Outcome.DECLINED
    assert job.outcomes == [Outcome.DECLINED, Outcome.DECLINED]
    assert rig.allocator.in_use == frozenset()
    assert rig.dialer.jobs == ()


def test_unanswered_invite_is_cancelled_after_the_ring_time() -> None:
    """No final answer within answer_timeout: CANCEL; the 487 is a timeout outcome."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, member(retry=RetryPolicy(attempts=1, answer_timeout=20.0)))
    rig.pump()
    ((invite, _),) = rig.requests("INVITE")
    rig.respond(invite, 180)
    rig.pump(19.0)
    assert not rig.requests("CANCEL")
    rig.pump(1.0)
    assert rig.requests("CANCEL")
    rig.respond(invite, 487)
    assert job.result is not None and job.result.outcome is Outcome.TIMEOUT


def test_a_transfer_resp_that_fails_verification_hangs_up_with_a_reason() -> None:
    """A TRANSFER_RESP with a bad MAC is a keying failure: BYE with Reason, no host."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, member(retry=RetryPolicy(attempts=1)))
    rig.pump()
    ((invite, _),) = rig.requests("INVITE")
    rig.respond(invite, 200, body=member_answer(invite, rig.kms.grants[0], tamper=True))
    ((bye, _),) = rig.requests("BYE")
    assert (bye.headers.get("Reason") or "").startswith("SIP;cause=488")
    assert rig.host.answers == []
    assert job.result is not None and job.result.outcome is Outcome.KEYING


def test_an_answer_without_key_management_is_an_sdp_failure() -> None:
    """An answer that drops a=key-mgmt cannot key the leg: BYE, outcome sdp."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, member(retry=RetryPolicy(attempts=1)))
    rig.pump()
    ((invite, _),) = rig.requests("INVITE")
    body = member_answer(invite, rig.kms.grants[0])
    body = b"".join(
        line for line in body.splitlines(keepends=True) if not line.startswith(b"a=key-mgmt")
    )
    rig.respond(invite, 200, body=body)
    assert rig.requests("BYE")
    assert job.result is not None and job.result.outcome is Outcome.SDP


def test_kms_failure_is_retried_and_host_failure_counts_as_leg() -> None:
    """A KMS outage is outcome kms (retried); a host that cannot bring the leg up is
    outcome leg, and the call is hung up."""
    rig = Rig()
    rig.kms.fail = KmsUnavailable("down", attempts=1)
    job = rig.dialer.dial(ROOM, member())
    rig.pump()
    assert rig.requests("INVITE") == []
    assert rig.events.named("dial_out_attempt")[0]["outcome"] == "kms"
    rig.kms.fail = None
    rig.host.auto = False
    rig.pump(5.0)
    ((invite, _),) = rig.requests("INVITE")
    rig.respond(invite, 200, body=member_answer(invite, rig.kms.grants[0]))
    rig.host.pending[0].errback(RuntimeError("leg failed"))
    rig.pump()
    assert rig.requests("BYE")
    assert job.result is not None and job.outcomes == [Outcome.KMS, Outcome.LEG]


def test_proxy_routing_for_domain_uris_and_direct_override() -> None:
    """A domain URI goes through the outbound proxy (pre-loaded Route); an IP:port URI
    goes straight there even when the core has an outbound proxy of its own."""
    rig = Rig(outbound_proxy="sip:127.0.0.1:5080")
    rig.dialer.dial(ROOM, member("sip:dave@example.net"))
    rig.pump()
    ((invite, target),) = rig.requests("INVITE")
    assert (target.host, target.port) == ("127.0.0.1", 5080)
    assert invite.headers.get("Route") == "<sip:127.0.0.1:5080;lr>"
    rig2 = Rig(ua_proxy=SipURI.parse("sip:127.0.0.1:5080;lr"))
    rig2.dialer.dial(ROOM, member())
    rig2.pump()
    ((invite2, target2),) = rig2.requests("INVITE")
    assert (target2.host, target2.port) == ("127.0.0.1", 5070)
    assert invite2.headers.get("Route") == "<sip:127.0.0.1:5070;lr>"


def test_cancel_during_back_off_ends_the_job() -> None:
    """A job cancelled while waiting to retry ends at once and sends nothing more."""
    rig = Rig()
    job = rig.dialer.dial(ROOM, member())
    rig.pump()
    ((invite, _),) = rig.requests("INVITE")
    rig.respond(invite, 486)
    assert rig.dialer.cancel(ROOM, CAROL)
    rig.pump(10.0)
    assert len(rig.requests("INVITE")) == 1
    assert job.result is not None and job.result.outcome is Outcome.CANCELLED


def test_one_job_per_member_and_room() -> None:
    """Dialing a member already being dialed joins the running job."""
    rig = Rig()
    a = rig.dialer.dial(ROOM, member())
    b = rig.dialer.dial(ROOM, member())
    assert a is b and len(rig.dialer.jobs) == 1
