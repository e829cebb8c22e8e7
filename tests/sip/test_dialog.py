"""Dialogs (RFC 3261 §12): creation on both sides, route sets, CSeq rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.dialog import Dialog, DialogState
from focus.sip.headers import Address
from focus.sip.message import Headers, Request, Response, parse_message
from focus.sip.transaction import Target
from focus.sip.uri import SipURI

from .harness import Net, Recorder, Responses, counter_random
from .helpers import make_request, make_response


def with_record_route(msg: Request | Response, *routes: str) -> Request | Response:
    h = msg.headers
    for r in routes:
        h = h.add("Record-Route", r)
    return msg.with_headers(h)


def test_uas_dialog_keeps_record_route_order() -> None:
    """§12.1.1: the UAS route set is the Record-Route list in order; remote target = Contact."""
    req = with_record_route(make_request(), "<sip:p1.example;lr>", "<sip:p2.example;lr>")
    assert isinstance(req, Request)
    ok = make_response(req, 200, to_tag="uas")
    d = Dialog.from_uas(req, ok, Address.parse("<sip:room@127.0.0.1>"))
    assert [str(r.uri) for r in d.route_set] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert str(d.remote_target) == "sip:alice@192.0.2.1:5060"
    assert d.id.local_tag == "uas" and d.id.remote_tag == "from1"
    assert d.remote_seq == 1 and d.state is DialogState.CONFIRMED


def test_uac_dialog_reverses_record_route_and_builds_loose_routed_requests() -> None:
    """§12.1.2: the UAC route set is Record-Route reversed; requests carry it as Route."""
    req = make_request()
    ok = with_record_route(
        make_response(req, 200, to_tag="t"), "<sip:p1.example;lr>", "<sip:p2.example;lr>"
    )
    ok = ok.with_headers(ok.headers.add("Contact", "<sip:bob@192.0.2.9>"))
    assert isinstance(ok, Response)
    d = Dialog.from_uac(req, ok)
    bye = d.build_request("BYE", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx")
    assert str(bye.uri) == "sip:bob@192.0.2.9"
    assert bye.headers.lines("Route") == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert bye.cseq.seq == 2 and bye.to.tag == "t" and bye.from_.tag == "from1"


def test_strict_route_puts_first_route_in_request_uri() -> None:
    """§12.2.1.1: a first route without lr becomes the Request-URI; the remote target
    goes last in Route."""
    req = make_request()
    ok = with_record_route(make_response(req, 200, to_tag="t"), "<sip:strict.example>")
    ok = ok.with_headers(ok.headers.add("Contact", "<sip:bob@192.0.2.9>"))
    assert isinstance(ok, Response)
    d = Dialog.from_uac(req, ok)
    bye = d.build_request("BYE", "SIP/2.0/UDP x;branch=z9hG4bKy")
    assert str(bye.uri) == "sip:strict.example"
    assert bye.headers.lines("Route") == ["<sip:bob@192.0.2.9>"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 2**31 - 1), min_size=1, max_size=10))
def test_remote_cseq_must_increase(seqs: list[int]) -> None:
    """§12.2.2: a request is accepted only when its CSeq is above every earlier one."""
    req = make_request()
    d = Dialog.from_uas(req, make_response(req, 200, to_tag="x"), Address.parse("<sip:r@h>"))
    d.remote_seq = None
    highest = 0
    for n in seqs:
        accepted = d.check_remote_cseq(make_request("INFO", cseq=n))
        assert accepted == (n > highest)
        highest = max(highest, n)


def test_out_of_order_cseq_gets_500_in_the_ua() -> None:
    """The core answers an in-dialog request with a lower CSeq with 500 (§12.2.2)."""
    net = Net()
    server = net.add("127.0.0.1", 5060, Recorder(body=b"v=0\r\n"))
    client = net.add("127.0.0.2", 5062, Recorder())
    out = client.invite("sip:room@127.0.0.1", from_="<sip:a@example.net>", now=0.0, body=b"v=0\r\n")
    net.pump()
    assert out.dialog is not None
    out.dialog.local_seq = 10
    got = Responses()
    client.send_in_dialog(out.dialog, "INFO", 0.0, got)
    out.dialog.local_seq = 3
    client.send_in_dialog(out.dialog, "INFO", 0.0, got)
    net.pump()
    assert got.statuses == [200, 500]
    assert server is not None


def test_reinvite_refreshes_remote_target() -> None:
    """§12.2.2: a re-INVITE's Contact becomes the dialog's remote target."""
    net = Net()
    server = net.add("127.0.0.1", 5060, Recorder(body=b"v=0\r\n"))
    client = net.add("127.0.0.2", 5062, Recorder())
    out = client.invite("sip:room@127.0.0.1", from_="<sip:a@example.net>", now=0.0, body=b"v=0\r\n")
    net.pump()
    assert out.dialog is not None
    out.dialog.local_contact = Address.parse("<sip:a@127.0.0.2:5999>")
    got = Responses()
    client.send_in_dialog(
        out.dialog, "INVITE", 0.0, got, body=b"v=0\r\n", content_type="application/sdp"
    )
    net.pump()
    assert got.statuses[-1] == 200
    (sdialog,) = server.dialogs.values()
    assert str(sdialog.remote_target) == "sip:a@127.0.0.2:5999"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_core_survives_arbitrary_datagrams(data: bytes) -> None:
    """Arbitrary datagrams never raise out of the UA core; anything sent back is SIP."""
    net = Net()
    ua = net.add("127.0.0.1", 5060, Recorder())
    base = (
        b"OPTIONS sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
    )
    for datagram in (data, base + data, base + b"\r\n" + data):
        ua.datagram_received(datagram, Target("UDP", "127.0.0.2", 5060), 0.0)
        for cmd in ua.drain():
            assert parse_message(cmd.data)  # type: ignore[union-attr]


def test_app_failure_is_answered_with_500() -> None:
    """An exception in the application still answers the request (500) before it propagates."""

    class Broken(Recorder):
        def on_request(self, incoming, now):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    net = Net()
    ua = net.add("127.0.0.1", 5060, Broken())
    data = make_request("INVITE", uri="sip:room@127.0.0.1").encode()
    with pytest.raises(RuntimeError):
        ua.datagram_received(data, Target("UDP", "192.0.2.1", 5060), 0.0)
    statuses = [parse_message(c.data).status for c in ua.drain()]  # type: ignore[union-attr]
    assert statuses == [100, 500]


def test_random_source_is_injected() -> None:
    """Tags, branches and Call-IDs come from the injected byte source only."""
    from focus.sip.ua import UAConfig, UserAgent

    ua1 = UserAgent(
        UAConfig(host="h", listen=(Target("UDP", "h", 1),)), Recorder(), counter_random()
    )
    ua2 = UserAgent(
        UAConfig(host="h", listen=(Target("UDP", "h", 1),)), Recorder(), counter_random()
    )
    assert [ua1.new_tag(), ua1.new_branch(), ua1.new_call_id()] == [
        ua2.new_tag(), ua2.new_branch(), ua2.new_call_id()
    ]  # fmt: skip
    assert Headers() == Headers() and SipURI.parse("sip:h") == SipURI(host="h")
