"""The UA core end to end in memory: defaults of §8.2, dialogs, CANCEL, 2xx retransmission."""

from __future__ import annotations

from focus.sip.message import Request, Response, parse_message
from focus.sip.transaction import Target
from focus.sip.ua import Application

from .harness import Net, Recorder, Responses, first_line

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=message 7 TCP/TLS/MSRP *\r\n"
)


def pair(app: Application | None = None, **cfg: object) -> tuple[Net, Recorder, object, object]:
    net = Net()
    server_app = app or Recorder(body=SDP)
    server = net.add("127.0.0.1", 5060, server_app, domains=("conf.example.net",), **cfg)
    client = net.add("127.0.0.2", 5062, Recorder())
    return net, server_app, server, client  # type: ignore[return-value]


def raw(
    method: str,
    extra: str = "",
    uri: str = "sip:room@127.0.0.1",
    cseq_method: str | None = None,
    branch: str = "z9hG4bKraw1",
    body: str = "",
) -> bytes:
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.2:5062;branch={branch};rport\r\n"
        "From: <sip:alice@example.net>;tag=a1\r\nTo: <sip:room@127.0.0.1>\r\n"
        f"Call-ID: c1@x\r\nCSeq: 1 {cseq_method or method}\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:alice@127.0.0.2:5062>\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n{body}"
    )
    return text.encode()


def answer_to(net: Net, data: bytes) -> Response:
    server = net.nodes[("127.0.0.1", 5060)]
    server.datagram_received(data, Target("UDP", "127.0.0.2", 5062), net.now)
    sent = [d for d in (c.data for c in server.drain()) if d.startswith(b"SIP/2.0")]
    final = [parse_message(d) for d in sent if not d.startswith(b"SIP/2.0 100")]
    assert final, sent
    msg = final[-1]
    assert isinstance(msg, Response)
    return msg


def test_options_answered_with_capabilities() -> None:
    """OPTIONS gets 200 with Allow, Accept and a To tag (§11.2)."""
    net, *_ = pair(supported=("timer",))
    resp = answer_to(net, raw("OPTIONS"))
    assert resp.status == 200
    assert "INVITE" in resp.tokens("Allow") or "invite" in resp.tokens("Allow")
    assert resp.headers.get("Accept") == "application/sdp"
    assert resp.headers.get("Supported") == "timer"
    assert resp.to.tag


def test_response_via_gets_received_and_rport() -> None:
    """RFC 3581: the response's top Via carries rport and received of the source."""
    net, *_ = pair()
    resp = answer_to(net, raw("OPTIONS"))
    via = resp.top_via
    assert via.rport == 5062 and via.received == "127.0.0.2"


def test_unknown_method_501_and_known_unsupported_405() -> None:
    """An unknown method gets 501; a known one we do not serve gets 405 with Allow (§8.2.1)."""
    net, *_ = pair()
    assert answer_to(net, raw("FOOBAR")).status == 501
    resp = answer_to(net, raw("REGISTER", branch="z9hG4bKr2"))
    assert resp.status == 405 and resp.headers.get("Allow")


def test_unknown_user_domain_404_and_scheme_416() -> None:
    """A Request-URI host we do not serve gets 404; a non-SIP scheme gets 416 (§8.2.2.1)."""
    net, *_ = pair()
    assert answer_to(net, raw("OPTIONS", uri="sip:x@elsewhere.example")).status == 404
    assert answer_to(net, raw("OPTIONS", uri="mailto:x@y.z", branch="z9hG4bK2")).status == 416


def test_malformed_request_400_with_warning() -> None:
    """A request breaking §8.1.1 (CSeq method mismatch) gets 400 with a Warning."""
    net, *_ = pair()
    resp = answer_to(net, raw("OPTIONS", cseq_method="INVITE"))
    assert resp.status == 400
    assert (resp.headers.get("Warning") or "").startswith("399 127.0.0.1 ")


def test_max_forwards_zero_483_but_options_answered() -> None:
    """Max-Forwards 0 gets 483 except for OPTIONS (§11)."""
    net, *_ = pair()
    data = raw("MESSAGE").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert answer_to(net, data).status == 483
    data = raw("OPTIONS", branch="z9hG4bK9").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert answer_to(net, data).status == 200


def test_unsupported_require_420() -> None:
    """An unknown Require option gets 420 listing it in Unsupported (§8.2.2.3)."""
    net, *_ = pair()
    resp = answer_to(net, raw("OPTIONS", extra="Require: nobodyknowsthis\r\n"))
    assert resp.status == 420 and resp.headers.get("Unsupported") == "nobodyknowsthis"


def test_unknown_content_type_415() -> None:
    """An INVITE body of an unknown type gets 415 with Accept (§8.2.3)."""
    net, *_ = pair()
    resp = answer_to(net, raw("INVITE", extra="Content-Type: text/x-unknown\r\n", body="hello"))
    assert resp.status == 415 and resp.headers.get("Accept") == "application/sdp"


def test_merged_request_482() -> None:
    """The same request arriving over a second path (new branch) gets 482 (§8.2.2.2)."""
    net, *_ = pair(Recorder(answer=None))
    server = net.nodes[("127.0.0.1", 5060)]
    server.datagram_received(raw("MESSAGE"), Target("UDP", "127.0.0.2", 5062), 0.0)
    server.drain()
    assert answer_to(net, raw("MESSAGE", branch="z9hG4bKother")).status == 482


def test_in_dialog_request_without_dialog_481() -> None:
    """A request with a To tag for an unknown dialog gets 481 (§12.2.2)."""
    net, *_ = pair()
    data = raw("BYE").replace(b"To: <sip:room@127.0.0.1>", b"To: <sip:room@127.0.0.1>;tag=zz")
    assert answer_to(net, data).status == 481


def test_invite_ack_bye_between_two_cores() -> None:
    """UAC INVITE → 100/200 → ACK, then BYE; both ends see the dialog start and end."""
    net, app, server, client = pair()
    responses = Responses()
    out = client.invite(  # type: ignore[attr-defined]
        "sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, handler=responses, body=SDP
    )
    net.pump()
    assert responses.statuses[-1] == 200
    assert responses.got[-1].body == SDP
    assert out.dialog is not None and len(app.acks) == 1  # type: ignore[attr-defined]
    assert len(server.dialogs) == 1  # type: ignore[attr-defined]
    bye = Responses()
    client.bye(out.dialog, net.now, bye)  # type: ignore[attr-defined]
    net.pump()
    assert bye.statuses == [200]
    assert [r for _, r in app.ended] == ["bye"]  # type: ignore[attr-defined]
    assert not server.dialogs  # type: ignore[attr-defined]


def test_in_dialog_request_to_the_uac_reaches_its_app() -> None:
    """The UAS can send a NOTIFY in the dialog; the UAC core hands it to its app."""
    net, _app, server, client = pair()
    out = client.invite("sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, body=SDP)  # type: ignore[attr-defined]
    net.pump()
    dialog = next(iter(server.dialogs.values()))  # type: ignore[attr-defined]
    got = Responses()
    server.send_in_dialog(dialog, "NOTIFY", net.now, got, body=b"x", content_type="text/plain")  # type: ignore[attr-defined]
    net.pump()
    capp = client.app  # type: ignore[attr-defined]
    assert [r.request.method for r in capp.requests] == ["NOTIFY"]
    assert capp.requests[0].dialog is out.dialog
    assert got.statuses == [200]


def test_2xx_retransmitted_until_ack() -> None:
    """§13.3.1.4: with the ACK lost, the 2xx is resent at T1, 2T1, ... until an ACK."""
    net, app, _server, client = pair()
    lost = {"n": 0}

    def drop_first_ack(data: bytes, target: Target) -> bool:
        if data.startswith(b"ACK ") and lost["n"] == 0:
            lost["n"] += 1
            return True
        return False

    net.drop = drop_first_ack
    client.invite("sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, body=SDP)  # type: ignore[attr-defined]
    net.pump()
    assert app.acks == []  # type: ignore[attr-defined]
    net.advance(0.6)
    oks = [t for t, d in net.sent("SIP/2.0 200")]
    assert oks == [0.0, 0.5]
    assert len(app.acks) == 1  # type: ignore[attr-defined]
    net.advance(40.0)
    assert len(net.sent("SIP/2.0 200")) == 2  # no more retransmissions after the ACK


def test_2xx_gives_up_after_64_t1_and_sends_bye() -> None:
    """§13.3.1.4: no ACK for 64*T1 → the UAS sends BYE and ends the dialog."""
    net, app, _server, client = pair()
    net.drop = lambda data, target: data.startswith(b"ACK ")
    client.invite("sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, body=SDP)  # type: ignore[attr-defined]
    net.pump()
    net.advance(33.0)
    times = [t for t, _ in net.sent("SIP/2.0 200 OK")]
    assert times[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]  # T1 doubling, capped at T2
    assert [r for _, r in app.ended] == ["no-ack"]  # type: ignore[attr-defined]
    assert net.sent("BYE ")


def test_cancel_before_final_answer() -> None:
    """§9: CANCEL of a pending INVITE gets 200, the INVITE 487, and the app is told."""
    net, app, _server, client = pair(Recorder(answer=None))
    responses = Responses()
    out = client.invite(
        "sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, handler=responses, body=SDP
    )  # type: ignore[attr-defined]
    net.pump()
    assert responses.statuses == [100]
    out.cancel(net.now)
    net.pump()
    assert responses.statuses == [100, 487]
    assert len(app.cancelled) == 1  # type: ignore[attr-defined]
    assert net.sent("ACK ")  # the 487 is ACKed inside the transaction


def test_cancel_before_provisional_waits_for_it() -> None:
    """§9.1: a CANCEL is not sent before a provisional response arrives."""
    net, _app, _server, client = pair(Recorder(answer=None))
    net.drop = lambda data, target: data.startswith(b"SIP/2.0 100")
    out = client.invite("sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, body=SDP)  # type: ignore[attr-defined]
    out.cancel(0.0)
    net.pump()
    assert not net.sent("CANCEL")


def test_invite_timeout_without_answer_becomes_408() -> None:
    """Timer B: no response at all to an INVITE ends it with a synthesized 408 (§8.1.3.1)."""
    net = Net()
    client = net.add("127.0.0.2", 5062, Recorder())
    responses = Responses()
    client.invite("sip:room@127.0.0.9", from_="<sip:alice@example.net>", now=0.0, handler=responses)
    net.pump()
    net.advance(40.0)
    assert responses.statuses == [408]
    assert len(net.sent("INVITE")) == 7  # 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5


def test_host_name_target_asks_for_resolution() -> None:
    """A host name next hop emits a Resolve command; its answer sends the request."""
    from focus.sip.resolve import Resolve

    net = Net()
    client = net.add("127.0.0.2", 5062, Recorder())
    client.send_request(
        client.new_request("OPTIONS", "sip:conf.example.net", from_="<sip:a@b.c>"), 0.0
    )
    cmds = client.drain()
    assert isinstance(cmds[0], Resolve) and cmds[0].use_srv and cmds[0].transport == "UDP"
    client.resolved(cmds[0].query_id, [Target("UDP", "127.0.0.1", 5060)], 0.0)
    sent = client.drain()
    assert first_line(sent[0].data) == "OPTIONS sip:conf.example.net SIP/2.0"  # type: ignore[union-attr]


def test_outbound_proxy_is_a_preloaded_route() -> None:
    """§8.1.2: with an outbound proxy the request goes there with a Route header."""
    from focus.sip.uri import SipURI

    net = Net()
    client = net.add(
        "127.0.0.2", 5062, Recorder(), outbound_proxy=SipURI.parse("sip:127.0.0.7:5070")
    )
    client.send_request(client.new_request("OPTIONS", "sip:x@y.example", from_="<sip:a@b.c>"), 0.0)
    (cmd,) = client.drain()
    assert cmd.target == Target("UDP", "127.0.0.7", 5070)  # type: ignore[union-attr]
    msg = parse_message(cmd.data)  # type: ignore[union-attr]
    assert isinstance(msg, Request) and msg.headers.get("Route") == "<sip:127.0.0.7:5070;lr>"


def test_udp_content_length_beyond_datagram_gets_400() -> None:
    """RFC 4475 §3.1.2.2 (clerr): a datagram shorter than its Content-Length gets 400."""
    net, *_ = pair()
    data = raw("OPTIONS").replace(b"Content-Length: 0", b"Content-Length: 9999")
    resp = answer_to(net, data)
    assert resp.status == 400 and resp.headers.get("Warning")


def test_udp_body_above_limit_gets_513() -> None:
    """A datagram body above the limit is answered 513 Message Too Large (§21.5.11)."""
    from focus.sip.message import Limits

    net, *_ = pair(limits=Limits(max_body_bytes=10))
    data = raw("MESSAGE", extra="Content-Type: text/plain\r\n", body="x" * 100)
    assert answer_to(net, data).status == 513


def test_unanswered_requests_get_408() -> None:
    """A request the application never answers gets 408 after 64*T1 (non-INVITE)."""
    _net, app, server, _client = pair(Recorder(answer=None))
    server.datagram_received(raw("MESSAGE"), Target("UDP", "127.0.0.2", 5062), 0.0)  # type: ignore[attr-defined]
    server.drain()  # type: ignore[attr-defined]
    assert server.next_deadline() == 32.0  # type: ignore[attr-defined]
    server.on_timer(32.0)  # type: ignore[attr-defined]
    (cmd,) = server.drain()  # type: ignore[attr-defined]
    assert first_line(cmd.data) == "SIP/2.0 408 Request Timeout"
    assert len(app.requests) == 1  # type: ignore[attr-defined]


def test_transaction_table_is_bounded() -> None:
    """Beyond max_transactions, new requests get 503 without a transaction."""
    net, _app, server, _client = pair(Recorder(answer=None), max_transactions=1)
    server.datagram_received(raw("MESSAGE"), Target("UDP", "127.0.0.2", 5062), 0.0)  # type: ignore[attr-defined]
    server.drain()  # type: ignore[attr-defined]
    resp = answer_to(net, raw("MESSAGE", branch="z9hG4bKnew").replace(b"c1@x", b"c2@x"))
    assert resp.status == 503


def test_response_with_foreign_sent_by_is_discarded() -> None:
    """§18.1.2: a response whose Via sent-by we never insert is dropped."""
    net = Net()
    client = net.add("127.0.0.2", 5062, Recorder())
    got = Responses()
    out = client.send_request(
        client.new_request("OPTIONS", "sip:127.0.0.1", from_="<sip:a@b.c>"), 0.0, got
    )
    client.drain()
    from focus.sip.ua import make_response

    resp = make_response(out.request, 200, to_tag="x")
    forged = resp.with_headers(
        resp.headers.set("Via", resp.headers.get("Via").replace("127.0.0.2", "203.0.113.9"))  # type: ignore[union-attr]
    )
    client.datagram_received(forged.encode(), Target("UDP", "127.0.0.1", 5060), 0.1)
    assert got.statuses == []
    client.datagram_received(resp.encode(), Target("UDP", "127.0.0.1", 5060), 0.1)
    assert got.statuses == [200]


def test_record_route_is_copied_and_used_for_the_dialog() -> None:
    """§12.1.1: the UAS copies Record-Route into the 2xx; its BYE then carries the route."""
    net, app, server, _client = pair()
    extra = "Record-Route: <sip:127.0.0.7:5070;lr>\r\nContent-Type: application/sdp\r\n"
    data = raw("INVITE", extra=extra, body="v=0\r\n")
    resp = answer_to(net, data)
    assert resp.status == 200 and resp.headers.get("Record-Route") == "<sip:127.0.0.7:5070;lr>"
    assert "INVITE" in (resp.headers.get("Allow") or "")
    (dialog,) = server.dialogs.values()  # type: ignore[attr-defined]
    server.bye(dialog, 1.0)  # type: ignore[attr-defined]
    sent = [c for c in server.drain() if c.data.startswith(b"BYE")]  # type: ignore[attr-defined]
    assert sent[0].target == Target("UDP", "127.0.0.7", 5070)
    bye = parse_message(sent[0].data)
    assert isinstance(bye, Request)
    assert str(bye.uri) == "sip:alice@127.0.0.2:5062"
    assert bye.headers.get("Route") == "<sip:127.0.0.7:5070;lr>"
    assert [r for _, r in app.ended] == ["local-bye"]  # type: ignore[attr-defined]


def test_cancelled_invite_without_final_answer_ends_after_64_t1() -> None:
    """§9.1: when no final response follows the CANCEL within 64*T1, the INVITE ends (408)."""
    net, _app, _server, client = pair(Recorder(answer=None))
    net.drop = lambda data, target: data.startswith(b"SIP/2.0 487") or data.startswith(b"CANCEL")
    responses = Responses()
    out = client.invite(
        "sip:room@127.0.0.1", from_="<sip:a@example.net>", now=0.0, handler=responses
    )  # type: ignore[attr-defined]
    net.pump()
    out.cancel(0.0)
    net.pump()
    net.advance(40.0)
    assert responses.statuses == [100, 408]
    assert not client._client  # type: ignore[attr-defined]


def test_invite_timeout_cancels_a_ringing_call() -> None:
    """An INVITE still unanswered after invite_timeout is CANCELled (like Timer C)."""
    net = Net()
    net.add("127.0.0.1", 5060, Recorder(answer=None), domains=())
    client = net.add("127.0.0.2", 5062, Recorder(), invite_timeout=10.0)
    responses = Responses()
    client.invite("sip:room@127.0.0.1", from_="<sip:a@example.net>", now=0.0, handler=responses)
    net.pump()
    net.advance(11.0)
    assert net.sent("CANCEL") and responses.statuses == [100, 487]


def test_large_request_switches_from_udp_to_tcp() -> None:
    """§18.1.1: a request above 1300 bytes goes over TCP when the URI does not force UDP."""
    from focus.sip.ua import UAConfig, UserAgent

    from .harness import counter_random

    listen = (Target("UDP", "127.0.0.2", 5062), Target("TCP", "127.0.0.2", 5062))
    ua = UserAgent(UAConfig(host="127.0.0.2", listen=listen), Recorder(), counter_random())
    big = b"a=x-filler:" + b"y" * 1400 + b"\r\n"
    ua.invite("sip:room@127.0.0.1", from_="<sip:a@example.net>", now=0.0, body=big)
    (cmd,) = ua.drain()
    assert cmd.target == Target("TCP", "127.0.0.1", 5060)  # type: ignore[union-attr]
    assert b"Via: SIP/2.0/TCP 127.0.0.2:5062" in cmd.data  # type: ignore[union-attr]
    ua.invite("sip:room@127.0.0.1;transport=udp", from_="<sip:a@example.net>", now=0.0, body=big)
    (cmd,) = ua.drain()
    assert cmd.target.transport == "UDP"  # type: ignore[union-attr]


def test_failing_response_handler_leaves_no_transaction_behind() -> None:
    """A response handler that raises does not keep a finished transaction alive."""
    import pytest

    net = Net()
    client = net.add("127.0.0.2", 5062, Recorder())

    def boom(out: object, resp: Response) -> None:
        raise RuntimeError("handler bug")

    out = client.send_request(
        client.new_request("OPTIONS", "sip:127.0.0.1", from_="<sip:a@b.c>"), 0.0, boom
    )
    client.drain()
    from focus.sip.ua import make_response

    resp = make_response(out.request, 200, to_tag="x")
    with pytest.raises(RuntimeError):
        client.datagram_received(resp.encode(), Target("UDP", "127.0.0.1", 5060), 0.1)
    client.on_timer(10.0)  # Timer K
    assert not client._client


def test_forked_2xx_is_acked_and_hung_up_not_kept() -> None:
    """§13.2.2.4: every 2xx to an INVITE is ACKed; a 2xx from a second fork (new To tag)
    after the first established the dialog gets a BYE from the core, is not shown to the
    handler again and leaves no dialog behind, so a forking peer cannot grow the dialog
    table."""
    from focus.sip.ua import make_response

    net = Net()
    client = net.add("127.0.0.2", 5062, Recorder())
    got = Responses()
    out = client.invite("sip:bob@127.0.0.1", from_="<sip:room@127.0.0.2>", now=0.0, handler=got)
    client.drain()
    contact = [("Contact", "<sip:bob@127.0.0.1:5060>")]
    src = Target("UDP", "127.0.0.1", 5060)
    for i in range(5):
        fork = make_response(out.request, 200, to_tag=f"fork{i}", headers=contact)
        client.datagram_received(fork.encode(), src, 0.1)
    sent = [c.data for c in client.drain()]
    assert sum(d.startswith(b"ACK ") for d in sent) == 5
    assert sum(d.startswith(b"BYE ") for d in sent) == 4
    assert got.statuses == [200]
    assert list(client.dialogs) == [out.dialog.id]  # type: ignore[union-attr]


def test_ending_many_transactions_in_one_tick_is_linear() -> None:
    """Forgetting finished server transactions (and their §8.2.2.2 merge entries) costs
    O(1) each: ending n transactions in one timer tick is linear in n, not quadratic, so
    a full table (max_transactions) cannot stall the reactor."""
    import sys
    from typing import Any

    costs = []
    for n in (200, 2000):
        app = Recorder(answer=None)
        _net, _app, server, _client = pair(app, max_transactions=5000)
        src = Target("TCP", "127.0.0.2", 5062)
        for i in range(n):
            data = raw("MESSAGE", branch=f"z9hG4bKm{i}").replace(b"c1@x", f"c{i}@x".encode())
            server.connection_data(src, data.replace(b"/UDP", b"/TCP"), 0.0)  # type: ignore[attr-defined]
        for incoming in app.requests:
            incoming.respond(200, now=0.0)  # Timer J is 0 on TCP: ends at the next tick
        count = 0

        def tracer(frame: Any, event: str, _arg: object) -> Any:
            nonlocal count
            if event == "line" and frame.f_code.co_filename.endswith("sip/ua.py"):
                count += 1
            return tracer

        sys.settrace(tracer)
        try:
            server.on_timer(0.0)  # type: ignore[attr-defined]
        finally:
            sys.settrace(None)
        assert not server._server  # type: ignore[attr-defined]
        costs.append(count)
    assert costs[1] < costs[0] * 20, costs


def test_next_deadline_does_not_scan_every_transaction() -> None:
    """Handling a request and asking for the next deadline (what the adapter does after
    every datagram) costs the same with 20 or 2000 transactions alive: UDP non-INVITE
    server transactions live 64*T1 (§17.2.2 Timer J), so a scan per message would make a
    modest request rate quadratic."""
    import sys
    from typing import Any

    costs = []
    for n in (20, 2000):
        app = Recorder(answer=None)
        _net, _app, server, _client = pair(app, max_transactions=5000)
        src = Target("UDP", "127.0.0.2", 5062)
        for i in range(n):
            data = raw("MESSAGE", branch=f"z9hG4bKm{i}").replace(b"c1@x", f"c{i}@x".encode())
            server.datagram_received(data, src, 0.0)  # type: ignore[attr-defined]
        server.next_deadline()  # type: ignore[attr-defined]
        count = 0

        def tracer(frame: Any, event: str, _arg: object) -> Any:
            nonlocal count
            if event == "line" and "/focus/sip/" in frame.f_code.co_filename:
                count += 1
            return tracer

        sys.settrace(tracer)
        try:
            server.datagram_received(raw("OPTIONS", branch="z9hG4bKo"), src, 1.0)  # type: ignore[attr-defined]
            deadline = server.next_deadline()  # type: ignore[attr-defined]
        finally:
            sys.settrace(None)
        assert deadline == 32.0  # the oldest MESSAGE's answer deadline (64*T1)
        costs.append(count)
    assert costs[1] < costs[0] * 2, costs


def test_cancel_response_shares_the_to_tag_of_the_487() -> None:
    """§9.2: the To tag of the 200 to a CANCEL and of the 487 to the INVITE SHOULD be
    the same."""
    net, _app, _server, client = pair(Recorder(answer=None))
    out = client.invite("sip:room@127.0.0.1", from_="<sip:alice@example.net>", now=0.0, body=SDP)  # type: ignore[attr-defined]
    net.pump()
    out.cancel(net.now)
    net.pump()
    [(_, ok)] = net.sent("SIP/2.0 200")
    [(_, terminated)] = net.sent("SIP/2.0 487")
    ok_tag = parse_message(ok).to.tag
    assert ok_tag is not None and ok_tag == parse_message(terminated).to.tag


def test_a_raising_handler_does_not_lose_other_timers() -> None:
    """An application error during a timer tick propagates (the adapter logs it) but no
    deadline is lost: the server transaction re-armed in that tick still ends, and the
    next tick still fires the other transactions."""
    import pytest

    net = Net()
    client = net.add("127.0.0.2", 5062, Recorder())

    def boom(out: object, resp: object) -> None:
        raise RuntimeError("application bug")

    for i in range(2):
        req = client.new_request("OPTIONS", f"sip:127.0.0.{5 + i}", from_="<sip:a@b.c>")
        client.send_request(req, 0.0, boom)
    client.drain()
    with pytest.raises(RuntimeError):
        client.on_timer(100.0)  # both time out (Timer F); the first handler raises
    with pytest.raises(RuntimeError):
        client.on_timer(100.0)  # the second one is still due and fires now
    assert client.next_deadline() is None
    assert not client._client  # type: ignore[attr-defined]


def test_accepted_invite_keeps_no_copy_of_the_request_yet_absorbs_and_matches() -> None:
    """RFC 6026 §8.7: once the 2xx is sent the server transaction holds neither the INVITE
    (headers, SDP) nor the 2xx, yet a retransmitted INVITE is absorbed and a late CANCEL
    gets 200 with the INVITE's To tag (§9.2) and no 487."""
    net, app, server, _client = pair()
    invite = raw("INVITE", extra="Content-Type: application/sdp\r\n", body=SDP.decode())
    ok = answer_to(net, invite)
    assert ok.status == 200
    [(stx, held)] = server._server.values()  # type: ignore[attr-defined]
    assert held.request.body == b"" and len(held.request.headers) == 0
    assert stx.request.body == b"" and stx.last_response is None
    assert held.answered and stx.final_sent
    assert len(app.requests) == 1  # type: ignore[attr-defined]
    assert app.requests[0].request.body == SDP  # type: ignore[attr-defined]  # the app's own
    server.datagram_received(invite, Target("UDP", "127.0.0.2", 5062), net.now)
    assert not [c for c in server.drain() if c.data.startswith(b"SIP/2.0 200")]
    late = answer_to(net, raw("CANCEL"))
    assert late.status == 200 and late.to.tag == ok.to.tag
    assert not net.sent("SIP/2.0 487")
    assert app.cancelled == [] and len(app.requests) == 1  # type: ignore[attr-defined]
