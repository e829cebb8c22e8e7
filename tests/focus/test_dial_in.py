"""Dial-in through the real SIP core and FocusApplication, in memory: the answers
(200/488/403/404/503/487) and their Warning texts, and leg setup and teardown."""

from __future__ import annotations

import pytest

from focus.conference import LegState
from focus.keying import complete_initiator
from focus.sdp import SessionDescription, effective_key_mgmt, path
from focus.sip.message import Response, parse_message

from ._harness import (
    ALICE,
    NOW,
    ROOM,
    FakeKms,
    Focus,
    KmsRejected,
    KmsUnavailable,
    good_offer,
    in_dialog,
    invite,
    last_final,
    make_grant,
    mikey_attr,
    offer_sdp,
)


def warning(response: Response) -> str:
    return response.headers.get("Warning") or ""


def join(focus: Focus, **kw: object) -> tuple[Response, object]:
    body, offer = good_offer()
    return focus.final(invite(body, **kw)), offer  # type: ignore[arg-type]


def test_good_offer_is_answered_200_with_the_mikey_answer() -> None:
    """A valid dial-in gets 200 with Contact ;isfocus and an answer whose TRANSFER_RESP the
    caller verifies; the leg listens on a port of the range, bound to the same PSK."""
    focus = Focus()
    response, offer = join(focus)
    assert response.status == 200
    assert response.headers.get("Contact", "").endswith(";isfocus")
    answer = SessionDescription.parse(response.body)
    [media] = answer.media
    assert media.proto == "TCP/TLS/MSRP" and 21000 <= media.port <= 21003
    [uri] = path(media)
    assert uri.secure and uri.port == media.port
    attrs_ = {a.name: a.value for a in media.attributes}
    assert attrs_["accept-types"] == "message/cpim" and attrs_["setup"] == "passive"
    assert attrs_["chatroom"] == "nickname private-messages"
    assert "max-size" in attrs_
    keys, level = effective_key_mgmt(media, answer)
    assert level == "media"
    key = complete_initiator(offer, keys[0].data, now=NOW + 1)  # type: ignore[arg-type]
    assert key.responder == ROOM and len(key.psk) == 16
    assert [p for p, _f, *_ in focus.reactor.tcpServers] == [media.port]
    assert focus.kms.calls[0][0] == ROOM
    [participant] = focus.app.conference.participants
    assert participant.state is LegState.LISTENING and participant.uri == ALICE


def test_unknown_room_is_404() -> None:
    """An INVITE to a room the policy does not know gets 404 with a Warning."""
    response, _ = join(Focus(), uri="sip:nope@conf.example.net")
    assert response.status == 404 and "no such conference room" in warning(response)


def test_caller_not_allowed_is_403() -> None:
    """A caller outside the room's allow list gets 403 before any keying."""
    focus = Focus()
    response, _ = join(focus, from_uri="sip:eve@evil.example")
    assert response.status == 403 and "allow list" in warning(response)
    assert focus.kms.calls == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (offer_sdp(None, proto="TCP/MSRP"), "TCP/MSRP without TLS"),
        (offer_sdp(None, media="audio", proto="RTP/AVP"), "media audio not supported"),
        (offer_sdp(None), "no a=key-mgmt"),
        (offer_sdp("keyp1 AAAA"), "offers no mikey"),
    ],
    ids=["tcp-msrp", "audio-only", "no-key-mgmt", "other-key-mgmt"],
)
def test_unusable_offers_are_488_with_a_warning(body: bytes, needle: str) -> None:
    """Offers the focus cannot accept get 488 and a Warning saying why; no KMS call."""
    focus = Focus()
    response = focus.final(invite(body))
    assert response.status == 488
    assert needle in warning(response)
    assert focus.kms.calls == [] and focus.app.conference.participants == ()


def test_undecodable_mikey_is_488() -> None:
    """Base64 that is not a TRANSFER_INIT gets 488 with a MIKEY Warning."""
    focus = Focus()
    response = focus.final(invite(offer_sdp(mikey_attr(b"\x01\x0e\x00garbage"))))
    assert response.status == 488
    assert warning(response).startswith('399 127.0.0.1 "MIKEY: TRANSFER_INIT does not decode')


def test_extra_m_lines_are_rejected_with_port_0() -> None:
    """An audio line next to the MSRP line is answered with port 0; MSRP is accepted."""
    body, _ = good_offer()
    audio = b"m=audio 4000 RTP/AVP 0\r\n"
    response = Focus().final(invite(body.replace(b"m=message", audio + b"m=message")))
    assert response.status == 200
    first, second = SessionDescription.parse(response.body).media
    assert (first.media, first.port) == ("audio", 0) and second.port > 0


def test_mikey_identity_other_than_the_caller_is_403() -> None:
    """A TRANSFER_INIT from alice inside bob's INVITE is refused with 403 after the KMS."""
    focus = Focus()
    response, _ = join(focus, from_uri="sip:bob@example.net")
    assert response.status == 403
    assert "MIKEY: the MIKEY initiator identity is not the caller" in warning(response)
    assert focus.app.conference.participants == () and focus.reactor.tcpServers == []


def test_trusted_p_asserted_identity_is_the_caller() -> None:
    """P-Asserted-Identity from a trusted peer names the caller (PROFILE §1)."""
    focus = Focus()
    body, _ = good_offer()
    pai = f"P-Asserted-Identity: <{ALICE}>\r\n"
    from focus.sip.transaction import Target

    trusted = Target("UDP", "127.0.0.9", 5062)
    response = focus.final(invite(body, from_uri="sip:anon@example.net", extra=pai), trusted)
    assert response.status == 200
    untrusted = Focus().final(invite(body, from_uri="sip:anon@example.net", extra=pai))
    assert untrusted.status == 403


def test_kms_unreachable_is_503_with_retry_after() -> None:
    """When the KMS cannot be reached the caller gets 503 with Retry-After."""
    focus = Focus(FakeKms(grant=make_grant(), error=KmsUnavailable("down", attempts=3)))
    response, _ = join(focus)
    assert response.status == 503 and response.headers.get("Retry-After") == "17"
    assert "KMS unreachable" in warning(response)
    assert focus.app.conference.participants == ()


@pytest.mark.parametrize(("err", "status"), [(7, 403), (14, 488)])
def test_kms_refusal_is_403_or_488(err: int, status: int) -> None:
    """A KMS refusal maps to 403 (not authorised) or 488 (bad ticket) with a Warning."""
    error = KmsRejected(http_status=403, err_code=err)
    response, _ = join(Focus(FakeKms(grant=make_grant(), error=error)))
    assert response.status == status
    assert f"KMS refused to resolve the ticket (ERR {err})" in warning(response)


def test_replayed_invite_offer_is_488() -> None:
    """The same TRANSFER_INIT in a second INVITE is a replay."""
    focus = Focus()
    body, _ = good_offer()
    assert focus.final(invite(body)).status == 200
    second = focus.final(invite(body, call_id="call-2@phone", branch="z9hG4bKinv2"))
    assert second.status == 488 and "replay" in warning(second)


def test_100_trying_then_cancel_while_the_kms_is_consulted() -> None:
    """The INVITE gets 100 Trying at once; a CANCEL while the KMS is busy gives 487,
    and the late KMS answer is dropped without a leg."""
    kms = FakeKms(grant=make_grant(), hold=True)
    focus = Focus(kms)
    body, _ = good_offer()
    sent = focus.receive(invite(body))
    assert [d.split(b"\r\n")[0] for d in sent] == [b"SIP/2.0 100 Trying"]
    assert len(kms.pending) == 1
    cancel = (
        f"CANCEL {ROOM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bKinv1;rport\r\n"
        f"From: <{ALICE}>;tag=ph1\r\nTo: <{ROOM}>\r\nCall-ID: call-1@phone\r\n"
        "CSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    statuses = [parse_message(d).status for d in focus.receive(cancel)]  # type: ignore[union-attr]
    assert sorted(statuses) == [200, 487]
    assert focus.app.conference.participants == ()
    assert kms.pending[0].called  # cancelled
    assert focus.reactor.tcpServers == []


def test_leg_not_up_in_time_sends_bye_and_frees_the_port() -> None:
    """If no TLS-PSK connection comes up within leg_timeout, the focus sends BYE and
    forgets the participant; the port goes back to the range."""
    focus = Focus()
    response, _ = join(focus)
    focus.receive(in_dialog("ACK", response, cseq=1, branch="z9hG4bKack1"))
    sent = focus.advance(9.0)
    assert any(d.startswith(b"BYE ") for d in sent)
    assert focus.app.conference.participants == ()
    assert focus.app.allocator.in_use == frozenset()


def test_bye_from_the_participant_removes_it() -> None:
    """BYE ends the call: 200, participant gone, leg closed, port free."""
    focus = Focus()
    response, _ = join(focus)
    focus.receive(in_dialog("ACK", response, cseq=1, branch="z9hG4bKack1"))
    bye = focus.final(in_dialog("BYE", response, cseq=2, branch="z9hG4bKbye1"))
    assert bye.status == 200
    assert focus.app.conference.participants == () and focus.app.calls == {}
    assert focus.app.allocator.in_use == frozenset()


def test_port_range_exhausted_is_503() -> None:
    """With every port of the range in use, a new caller gets 503 with Retry-After."""
    focus = Focus()
    for i in range(4):
        body, _ = good_offer(make_grant(now=NOW + i))
        call = invite(body, call_id=f"c{i}", branch=f"z9hG4bKp{i}")
        assert focus.final(call).status == 200
    body, _ = good_offer(make_grant(now=NOW + 9))
    response = focus.final(invite(body, call_id="c9", branch="z9hG4bKp9"))
    assert response.status == 503 and response.headers.get("Retry-After") == "17"


def test_reinvite_is_488_and_keeps_the_call() -> None:
    """A re-INVITE is refused with 488; the participant stays."""
    focus = Focus()
    response, _ = join(focus)
    focus.receive(in_dialog("ACK", response, cseq=1, branch="z9hG4bKack1"))
    again = last_final(focus.receive(in_dialog("INVITE", response, cseq=2, branch="z9hG4bKre")))
    assert again.status == 488
    assert len(focus.app.conference.participants) == 1


def test_no_key_in_logs() -> None:
    """The event log of a full join never contains the leg's PSK or the MPKi."""
    from twisted.logger import globalLogPublisher

    seen: list[dict[str, object]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        grant = make_grant()
        focus = Focus(FakeKms(grant=grant))
        response, offer = join(focus)
        keys, _ = effective_key_mgmt(SessionDescription.parse(response.body).media[0],
                                     SessionDescription.parse(response.body))  # fmt: skip
        psk = complete_initiator(offer, keys[0].data, now=NOW + 1).psk  # type: ignore[arg-type]
    finally:
        globalLogPublisher.removeObserver(seen.append)
    text = repr(seen)
    assert any(e.get("focus_event") == "join" for e in seen)
    for secret in (psk, grant.mpki, grant.tgk):
        assert secret.hex() not in text and repr(secret) not in text


def test_passive_offer_makes_the_focus_connect() -> None:
    """To a=setup:passive the focus answers active (PROFILE §8) and, after its 200,
    connects to the first hop of the caller's a=path as the TLS client."""
    focus = Focus()
    body, _ = good_offer(setup="passive")
    response = focus.final(invite(body))
    assert response.status == 200
    media = SessionDescription.parse(response.body).media[0]
    setup = {a.name: a.value for a in media.attributes}["setup"]
    assert setup == "active" and media.port == 9
    assert [(host, port) for host, port, *_ in focus.reactor.tcpClients] == [("127.0.0.2", 7654)]
    assert focus.reactor.tcpServers == []


def test_invite_without_offer_is_488() -> None:
    """An INVITE without SDP (late offer) is refused: the offer must carry the MIKEY."""
    data = invite(b"").replace(b"Content-Type: application/sdp\r\n", b"")
    response = Focus().final(data)
    assert response.status == 488 and "SDP offer" in warning(response)


def test_malformed_sdp_is_400_with_warning() -> None:
    """A body that is not SDP is a malformed request (400) with an SDP Warning."""
    response = Focus().final(invite(b"this is not sdp\r\n"))
    assert response.status == 400 and '"SDP: ' in warning(response)
