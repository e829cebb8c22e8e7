"""The sans-IO connection core: binding, responses, reports, timers, chunks (RFC 4975)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import (
    ArmTimer,
    ByteRange,
    CloseConnection,
    Command,
    Continuation,
    CpimMessage,
    FailureReport,
    FrameParser,
    FrameRejected,
    MessageAborted,
    MessageFailed,
    MessageReceived,
    MessageSent,
    MsrpConfig,
    MsrpConnection,
    MsrpError,
    MsrpLimitExceeded,
    MsrpSessionUnknown,
    MsrpUnsupportedMediaType,
    MsrpUri,
    ReportReceived,
    Request,
    RequestReceived,
    Response,
    SendBytes,
    SessionBound,
    SessionParams,
    SessionRegistry,
    Status,
    TransactionCompleted,
    TransactionFailed,
    split_message,
)

from . import examples as ex

BOB = MsrpUri.parse("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
ALICE = MsrpUri.parse("msrp://alicepc.example.com:7777/iau39soe2843z;tcp")
BOB_SESSION = SessionParams(local_uri=BOB, peer_path=(ALICE,), accept_types=("text/*",))
ALICE_SESSION = SessionParams(local_uri=ALICE, peer_path=(BOB,))


def counter_random() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def bob(
    config: MsrpConfig | None = None,
    *,
    auto_accept: bool = False,
    registry: SessionRegistry | None = None,
    cid: str = "c1",
) -> MsrpConnection:
    """A passive connection that expects Alice on Bob's session URI."""
    if registry is None:
        registry = SessionRegistry()
        registry.add(BOB_SESSION)
    return MsrpConnection(
        registry=registry,
        random=counter_random(),
        connection_id=cid,
        config=config,
        auto_accept=auto_accept,
    )


def sent(commands: list[Command]) -> list[Any]:
    """Parse every SendBytes command back into frames."""
    parser = FrameParser()
    frames: list[Any] = []
    for command in commands:
        if isinstance(command, SendBytes):
            for frame in parser.feed(command.data):
                assert isinstance(frame, Request | Response)
                frames.append(frame)
    return frames


def events(commands: list[Command], kind: type) -> list[Any]:
    return [c for c in commands if isinstance(c, kind)]


def test_rfc_basic_session_passive_side() -> None:
    """RFC 4975 §11.1 step 4/5: Bob binds on the first SEND, delivers it and answers 200."""
    conn = bob(auto_accept=True)
    out = conn.receive_data(ex.BASIC_4, now=0.0)
    assert events(out, SessionBound) == [SessionBound(BOB)]
    (message,) = events(out, MessageReceived)
    assert message.body == b"Hi, I'm Alice!" and message.message_id == "12339sdqwer"
    (response,) = sent(out)
    (expected,) = FrameParser().feed(ex.BASIC_5)
    assert response == expected
    assert SendBytes(ex.BASIC_5) in out  # byte-exact, as in the RFC figure


def test_unknown_session_is_481() -> None:
    """A first request whose To-Path we never handed out gets 481 (§5.4)."""
    conn = bob()
    out = conn.receive_data(ex.BASIC_6, now=0.0)  # To-Path is Alice's URI
    (response,) = sent(out)
    assert isinstance(response, Response) and response.code == 481
    assert response.to_path == (BOB,)  # the leftmost From-Path URI
    assert events(out, FrameRejected)
    assert not conn.sessions


def test_session_bound_elsewhere_is_506() -> None:
    """A second connection using a bound session gets 506 (§5.4)."""
    registry = SessionRegistry()
    registry.add(BOB_SESSION)
    first = bob(registry=registry, cid="c1", auto_accept=True)
    second = bob(registry=registry, cid="c2", auto_accept=True)
    first.receive_data(ex.BASIC_4, now=0.0)
    (response,) = sent(second.receive_data(ex.BASIC_4, now=0.0))
    assert isinstance(response, Response) and response.code == 506
    # When the first connection dies, the session may be bound again.
    first.connection_lost(now=1.0)
    out = second.receive_data(ex.BASIC_4.replace(b"d93kswow", b"d93kswoX"), now=1.0)
    assert [f.code for f in sent(out) if isinstance(f, Response)] == [200]


def test_to_path_with_relays_is_481() -> None:
    """We are an endpoint: a To-Path with more than one URI is refused with 481."""
    data = ex.BASIC_4.replace(
        b"To-Path: msrp://bob", b"To-Path: msrp://relay.example.com:1/x;tcp msrp://bob"
    )
    (response,) = sent(bob().receive_data(data, now=0.0))
    assert isinstance(response, Response) and response.code == 481


def _send_frame(
    tid: str,
    body: bytes | None,
    *,
    failure: FailureReport | None = None,
    success: bool | None = None,
    content_type: str = "text/plain",
    mid: str = "msg00001",
    byte_range: ByteRange | None = None,
    flag: Continuation = Continuation.COMPLETE,
    method: str = "SEND",
) -> bytes:
    size = 0 if body is None else len(body)
    return Request(
        transaction_id=tid,
        method=method,
        to_path=(BOB,),
        from_path=(ALICE,),
        message_id=mid,
        byte_range=byte_range or ByteRange(1, size, size),
        success_report=success,
        failure_report=failure,
        content_type=None if body is None else content_type,
        body=body,
        continuation=flag,
    ).encode()


@pytest.mark.parametrize(
    ("failure", "answer", "responses"),
    [
        (None, 200, [200]),
        (FailureReport.YES, 200, [200]),
        (FailureReport.PARTIAL, 200, []),
        (FailureReport.NO, 200, []),
        (None, 403, [403]),
        (FailureReport.YES, 403, [403]),
        (FailureReport.PARTIAL, 403, [403]),
        (FailureReport.NO, 403, []),
    ],
)
def test_failure_report_matrix(
    failure: FailureReport | None, answer: int, responses: list[int]
) -> None:
    """Responses follow Failure-Report: yes always, partial only errors, no never (§7.2)."""
    conn = bob()
    out = conn.receive_data(_send_frame("tid00001", b"hello", failure=failure), now=0.0)
    (message,) = events(out, MessageReceived)
    assert message.needs_answer and sent(out) == []
    out = conn.respond(message.transaction_id, answer, now=0.0)
    assert [f.code for f in sent(out)] == responses


@pytest.mark.parametrize(
    ("success", "answer", "reports"),
    [(None, 200, 0), (False, 200, 0), (True, 200, 1), (True, 403, 0)],
)
def test_success_report_matrix(success: bool | None, answer: int, reports: int) -> None:
    """A 200 to a message with Success-Report: yes sends one REPORT 000 200 (§7.1.3)."""
    conn = bob()
    out = conn.receive_data(_send_frame("tid00001", b"hello", success=success), now=0.0)
    (message,) = events(out, MessageReceived)
    frames = sent(conn.respond(message.transaction_id, answer, now=0.0))
    found = [f for f in frames if isinstance(f, Request) and f.method == "REPORT"]
    assert len(found) == reports
    for report in found:
        assert report.status == Status(200, "OK")
        assert report.message_id == "msg00001"
        assert report.byte_range == ByteRange(1, 5, 5)
        assert report.to_path == (ALICE,) and report.from_path == (BOB,)
        assert report.success_report is None and report.failure_report is None


def test_rfc_positive_report_example() -> None:
    """RFC 4975 §11.6: Failure-Report no + Success-Report yes → no response, one REPORT."""
    registry_session = SessionParams(local_uri=BOB, peer_path=(ALICE,), accept_types=("*",))
    registry = SessionRegistry()
    registry.add(registry_session)
    conn = bob(registry=registry, auto_accept=True)
    frames = sent(conn.receive_data(ex.POSITIVE_SEND, now=0.0))
    (report,) = frames
    assert isinstance(report, Request) and report.method == "REPORT"
    (expected,) = FrameParser().feed(ex.POSITIVE_REPORT)
    assert isinstance(expected, Request)
    assert (report.to_path, report.from_path, report.message_id) == (
        expected.to_path,
        expected.from_path,
        expected.message_id,
    )
    # The figure says 1-106/106 (LF line ends); on the wire the body has CRLFs: 121 octets.
    assert report.byte_range == ByteRange(1, 121, 121)
    assert report.status is not None and report.status.code == 200


@pytest.mark.parametrize(
    ("failure", "code", "reports"),
    [(None, 500, 1), (FailureReport.PARTIAL, 500, 1), (FailureReport.NO, 500, 0)],
)
def test_failure_report_generation(failure: FailureReport | None, code: int, reports: int) -> None:
    """report() sends a failure REPORT unless Failure-Report is no (§7.1.4)."""
    conn = bob(auto_accept=True)
    out = conn.receive_data(_send_frame("tid00001", b"hello", failure=failure), now=0.0)
    (message,) = events(out, MessageReceived)
    frames = sent(conn.report(message, code, now=0.0, content_type="text/plain", body=b"why"))
    assert len(frames) == reports
    for frame in frames:
        assert isinstance(frame, Request) and frame.status == Status(code, "Unknown")
        assert frame.body == b"why"


def test_unsupported_media_type_is_415() -> None:
    """A SEND outside our accept-types gets 415 (§7.3.1), nothing is delivered."""
    conn = bob()
    out = conn.receive_data(_send_frame("tid00001", b"<x/>", content_type="application/xml"), 0.0)
    assert [f.code for f in sent(out)] == [415]
    assert not events(out, MessageReceived)


def test_unknown_method_is_501_and_extension_is_delivered() -> None:
    """Unknown methods get 501 (§12); NICKNAME reaches the application (RFC 7701 §7.1)."""
    conn = bob()
    out = conn.receive_data(_send_frame("tid00001", None, method="FROB", mid="m0000001"), 0.0)
    assert [f.code for f in sent(out)] == [501]
    nick = ex.NICK_F1.replace(
        b"chat.example.com:12763/kjhd37s2s20w2a", b"bob.example.com:8888/9di4eae923wzd"
    )
    registry = SessionRegistry()
    registry.add(BOB_SESSION)
    conn = bob(registry=registry)
    out = conn.receive_data(nick, 0.0)
    (received,) = events(out, RequestReceived)
    assert received.request.header("Use-Nickname") == '"Alice the great"'
    (response,) = sent(conn.respond("d93kswow", 425, 0.0, "Nickname reserved or already in use"))
    assert isinstance(response, Response) and response.code == 425
    assert response.to_path == received.request.from_path


def test_bodyless_send_binds_and_gets_200() -> None:
    """The active side's empty SEND binds the connection and is answered 200 (§5.4)."""
    conn = bob()
    out = conn.receive_data(_send_frame("tid00001", None), 0.0)
    assert events(out, SessionBound) and [f.code for f in sent(out)] == [200]
    assert not events(out, MessageReceived)


def test_reports_are_never_answered() -> None:
    """A REPORT, even a bad one or for an unknown session, gets no response (§7.1.2)."""
    conn = bob()
    assert sent(conn.receive_data(ex.POSITIVE_REPORT, 0.0)) == []
    bad = ex.POSITIVE_REPORT.replace(b"Status: 000 200 OK\r\n", b"")
    assert sent(conn.receive_data(bad, 0.0)) == []


def test_bad_frame_answered_400() -> None:
    """A malformed SEND gets a 400 response when paths are known."""
    conn = bob()
    data = ex.BASIC_4.replace(b"Byte-Range: 1-16/16", b"Byte-Range: nonsense")
    out = conn.receive_data(data, 0.0)
    assert [f.code for f in sent(out)] == [400]
    assert events(out, FrameRejected)


def test_broken_framing_closes() -> None:
    """Garbage that cannot be framed closes the connection and fails the sessions."""
    conn = bob()
    out = conn.receive_data(b"GARBAGE\r\n", 0.0)
    assert events(out, CloseConnection) and conn.closed
    assert conn.receive_data(ex.BASIC_4, 0.0) == []


def test_chunked_message_reassembly_out_of_order() -> None:
    """Chunks in reverse order are acknowledged and delivered once complete (§7.3.1)."""
    conn = bob(auto_accept=True)
    second = _send_frame("tid00002", b"EFGH", byte_range=ByteRange(5, 8, 8))
    first = _send_frame(
        "tid00001", b"abcd", byte_range=ByteRange(1, None, 8), flag=Continuation.MORE
    )
    out = conn.receive_data(second, 0.0)
    assert [f.code for f in sent(out)] == [200] and not events(out, MessageReceived)
    out = conn.receive_data(first, 1.0)
    (message,) = events(out, MessageReceived)
    assert message.body == b"abcdEFGH"


def test_abort_chunk_drops_message() -> None:
    """A '#' chunk drops the partial message (§7.1)."""
    conn = bob(auto_accept=True)
    conn.receive_data(
        _send_frame("tid00001", b"abcd", byte_range=ByteRange(1, None, 8), flag=Continuation.MORE),
        0.0,
    )
    out = conn.receive_data(
        _send_frame("tid00002", b"", byte_range=ByteRange(5, None, 8), flag=Continuation.ABORT), 0.0
    )
    assert events(out, MessageAborted)
    out = conn.receive_data(_send_frame("tid00003", b"EFGH", byte_range=ByteRange(5, 8, 8)), 0.0)
    assert not events(out, MessageReceived)


def test_reassembly_limit_413_and_later_chunks() -> None:
    """A message above max_message_size gets 413, and its later chunks too (§10.5)."""
    conn = bob(MsrpConfig(max_message_size=10), auto_accept=True)
    out = conn.receive_data(
        _send_frame("tid00001", b"abcd", byte_range=ByteRange(1, None, 20), flag=Continuation.MORE),
        0.0,
    )
    assert [f.code for f in sent(out)] == [413]
    out = conn.receive_data(
        _send_frame("tid00002", b"efgh", byte_range=ByteRange(5, None, 20), flag=Continuation.MORE),
        0.0,
    )
    assert [f.code for f in sent(out)] == [413]


def test_chunk_reception_timeout() -> None:
    """An incomplete message is dropped after the chunk reception timer (RFC 7701 §6.1)."""
    conn = bob(MsrpConfig(chunk_reception_timeout=100.0), auto_accept=True)
    out = conn.receive_data(
        _send_frame("tid00001", b"abcd", byte_range=ByteRange(1, None, 8), flag=Continuation.MORE),
        5.0,
    )
    assert ArmTimer(105.0) in out and conn.next_deadline() == 105.0
    assert conn.handle_timeout(50.0) == []
    out = conn.handle_timeout(105.0)
    assert events(out, MessageAborted) and ArmTimer(None) in out


# -- the sending side ----------------------------------------------------------------------


def alice(config: MsrpConfig | None = None) -> tuple[MsrpConnection, list[Command]]:
    registry = SessionRegistry()
    registry.add(ALICE_SESSION)
    conn = MsrpConnection(
        registry=registry, random=counter_random(), connection_id="a", config=config
    )
    return conn, conn.open_session(ALICE_SESSION, now=0.0)


def answer(frame: Any, code: int = 200) -> bytes:
    return Response(frame.transaction_id, code, frame.from_path[:1], (BOB,), "x").encode()


def test_open_session_sends_bodyless_send_with_timer() -> None:
    """The active side sends a body-less SEND and waits 30 s for its response (§5.4, §7.1.1)."""
    conn, out = alice()
    (send,) = sent(out)
    assert isinstance(send, Request) and send.method == "SEND" and send.body is None
    assert send.byte_range == ByteRange(1, 0, 0)
    assert send.to_path == (BOB,) and send.from_path == (ALICE,)
    assert ArmTimer(30.0) in out
    out = conn.receive_data(answer(send), 1.0)
    assert events(out, TransactionCompleted) and ArmTimer(None) in out


def test_transaction_timeout_is_408() -> None:
    """No response within 30 s: the transaction and its message fail with 408."""
    conn, out = alice()
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"hello", 10.0)
    assert ArmTimer(40.0) in out
    assert conn.handle_timeout(39.9) == []
    out = conn.handle_timeout(40.0)
    (failed,) = events(out, TransactionFailed)
    assert failed.code == 408 and failed.message_id == mid
    assert events(out, MessageFailed)[0].code == 408


def test_ids_are_fresh_and_random_sourced() -> None:
    """Transaction ids and Message-IDs come from the injected random source."""
    conn, out = alice()
    mid, out = conn.send_message(ALICE, "text/plain", b"hello", 0.0)
    (frame,) = sent(out)
    assert isinstance(frame, Request)
    assert frame.message_id == mid and len(mid) >= 13 and frame.transaction_id != mid


def test_large_message_is_chunked_and_paced_by_window() -> None:
    """Large messages go out in interruptible chunks, paced by the send window."""
    config = MsrpConfig(chunk_size=4096, send_window=8192)
    conn, out = alice(config)
    conn.receive_data(answer(sent(out)[0]), 0.0)
    body = bytes(range(256)) * 64  # 16384 octets -> 4 chunks
    mid, out = conn.send_message(ALICE, "text/plain", body, 1.0)
    first = sent(out)
    assert [str(f.byte_range) for f in first] == ["1-*/16384", "4097-*/16384"]
    assert all(f.continuation is Continuation.MORE for f in first)
    out = conn.receive_data(answer(first[0]) + answer(first[1]), 2.0)
    rest = sent(out)
    assert [str(f.byte_range) for f in rest] == ["8193-*/16384", "12289-*/16384"]
    assert rest[-1].continuation is Continuation.COMPLETE
    out = conn.receive_data(answer(rest[0]) + answer(rest[1]), 3.0)
    assert events(out, MessageSent) == [MessageSent(ALICE, mid)]
    # Reassembled on the other side, the message is intact.
    peer = bob(auto_accept=True)
    received = events(
        peer.receive_data(b"".join(f.encode() for f in first + rest), 0.0), MessageReceived
    )
    assert received[0].body == body


def test_413_response_stops_the_message() -> None:
    """A 413 response stops further chunks of that message (§10.5)."""
    config = MsrpConfig(chunk_size=4096, send_window=4096)
    conn, out = alice(config)
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"x" * 12288, 1.0)
    (first,) = sent(out)
    out = conn.receive_data(answer(first, 413), 2.0)
    assert sent(out) == []
    assert events(out, MessageFailed) == [MessageFailed(ALICE, mid, 413, "x")]


def test_413_report_stops_the_message() -> None:
    """A 413 in a REPORT stops the message too (§10.5)."""
    config = MsrpConfig(chunk_size=4096, send_window=4096)
    conn, out = alice(config)
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(
        ALICE, "text/plain", b"x" * 12288, 1.0, failure_report=FailureReport.YES
    )
    report = Request(
        "rep00001", "REPORT", (ALICE,), (BOB,), message_id=mid, status=Status(413, "stop")
    )
    out = conn.receive_data(report.encode(), 2.0)
    assert events(out, ReportReceived)[0].status.code == 413
    assert events(out, MessageFailed)[0].code == 413
    assert sent(out) == []


def test_report_for_unknown_message_ignored() -> None:
    """REPORTs for Message-IDs we do not know are silently ignored (§7.1.2)."""
    conn, _ = alice()
    report = Request(
        "rep00001", "REPORT", (ALICE,), (BOB,), message_id="nope1234", status=Status(200)
    )
    assert conn.receive_data(report.encode(), 1.0) == []


def test_success_report_received_after_message_sent() -> None:
    """A success REPORT after the 200 is correlated with the sent message."""
    conn, out = alice()
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"hi", 1.0, success_report=True)
    (frame,) = sent(out)
    assert isinstance(frame, Request) and frame.success_report is True
    conn.receive_data(answer(frame), 1.0)
    report = Request(
        "rep00001", "REPORT", (ALICE,), (BOB,), message_id=mid, status=Status(200, "OK")
    )
    (event,) = events(conn.receive_data(report.encode(), 2.0), ReportReceived)
    assert event.message_id == mid


def test_failure_report_no_means_no_timer() -> None:
    """With Failure-Report: no, no timer runs and the message counts as sent."""
    conn, out = alice()
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"hi", 1.0, failure_report=FailureReport.NO)
    assert events(out, MessageSent) == [MessageSent(ALICE, mid)] and conn.next_deadline() is None
    (frame,) = sent(out)
    assert isinstance(frame, Request) and frame.failure_report is FailureReport.NO


def test_abort_message_sends_hash_chunk() -> None:
    """abort_message ends an unfinished message with a '#' chunk (§7.1)."""
    config = MsrpConfig(chunk_size=4096, send_window=4096)
    conn, out = alice(config)
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"x" * 12288, 1.0)
    out = conn.abort_message(mid, 2.0)
    (abort,) = sent(out)
    assert isinstance(abort, Request) and abort.continuation is Continuation.ABORT
    assert abort.byte_range == ByteRange(4097, None, 12288)
    assert conn.abort_message(mid, 2.0) == []


def test_peer_accept_types_enforced_on_send() -> None:
    """We never send a type the peer did not list (§8.6)."""
    registry = SessionRegistry()
    params = SessionParams(local_uri=ALICE, peer_path=(BOB,), peer_accept_types=("message/cpim",))
    registry.add(params)
    conn = MsrpConnection(registry=registry, random=counter_random())
    conn.open_session(params, 0.0)
    with pytest.raises(MsrpUnsupportedMediaType):
        conn.send_message(ALICE, "text/plain", b"x", 0.0)
    with pytest.raises(MsrpSessionUnknown):
        conn.send_message(BOB, "message/cpim", b"x", 0.0)


def test_connection_lost_fails_everything() -> None:
    """Losing the connection fails pending transactions and frees the session (§5.4)."""
    conn, out = alice()
    out = conn.connection_lost(5.0)
    (failed,) = events(out, TransactionFailed)
    assert failed.comment == "connection lost"
    assert ArmTimer(None) in out and conn.closed


def test_send_request_nickname() -> None:
    """send_request frames a NICKNAME without report headers and tracks its response."""
    conn, out = alice()
    tid, out = conn.send_request(ALICE, "NICKNAME", 1.0, headers=[("Use-Nickname", '"Al"')])
    (frame,) = sent(out)
    assert isinstance(frame, Request) and frame.method == "NICKNAME"
    assert frame.failure_report is None and frame.header("Use-Nickname") == '"Al"'
    response = Response(tid, 425, (ALICE,), (BOB,), "in use").encode()
    (failed,) = events(conn.receive_data(response, 2.0), TransactionFailed)
    assert failed.code == 425 and failed.method == "NICKNAME"


def test_rfc_chunked_cpim_example() -> None:
    """RFC 4975 §11.4: two chunks of a CPIM message reassemble; the '$' chunk fixes the length."""
    registry = SessionRegistry()
    bobpc = MsrpUri.parse("msrp://bobpc.example.com:8888/9di4eae923wzd;tcp")
    registry.add(SessionParams(local_uri=bobpc, peer_path=(ALICE,), accept_types=("message/cpim",)))
    conn = bob(registry=registry, auto_accept=True)
    out = conn.receive_data(ex.CPIM_CHUNK1, 0.0)
    assert [f.code for f in sent(out)] == [200] and not events(out, MessageReceived)
    out = conn.receive_data(ex.CPIM_CHUNK2, 1.0)
    (message,) = events(out, MessageReceived)
    assert message.content_type == "message/cpim"
    assert len(message.body) == 147  # the figure's total of 148 is one off
    cpim = CpimMessage.parse(message.body)
    assert cpim.content == b"ABCD1234567890"
    assert cpim.to[0].uri == "sip:bob@example.com"


def test_simultaneous_chunk_timeouts_fail_message_once() -> None:
    """Two chunks timing out together fail the message once and do not crash."""
    config = MsrpConfig(chunk_size=4096, send_window=65536)
    conn, out = alice(config)
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"x" * 12288, 1.0)
    assert len(sent(out)) == 3
    out = conn.handle_timeout(31.0)
    assert events(out, MessageFailed) == [
        MessageFailed(ALICE, mid, 408, "no response within the timeout")
    ]
    assert len(events(out, TransactionFailed)) == 1
    assert conn.next_deadline() is None


def test_bodyless_send_without_message_id_binds() -> None:
    """A binding SEND without Message-ID is accepted (lenient; peers differ)."""
    data = (
        b"MSRP abcd1234 SEND\r\nTo-Path: "
        + str(BOB).encode()
        + b"\r\nFrom-Path: "
        + str(ALICE).encode()
        + b"\r\n-------abcd1234$\r\n"
    )
    out = bob().receive_data(data, 0.0)
    assert events(out, SessionBound) and [f.code for f in sent(out)] == [200]


def test_unanswered_requests_are_bounded() -> None:
    """Requests the application never answers are forgotten beyond max_unanswered."""
    conn = bob(MsrpConfig(max_unanswered=2))
    for n in range(3):
        conn.receive_data(_send_frame(f"tid0000{n}", b"hi", mid=f"msg0000{n}"), 0.0)
    with pytest.raises(KeyError):
        conn.respond("tid00000", 200, 0.0)
    assert [f.code for f in sent(conn.respond("tid00002", 200, 0.0))] == [200]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50))
def test_arbitrary_bytes_never_raise(data: bytes, step: int) -> None:
    """Whatever arrives, receive_data returns commands and never raises."""
    conn = bob(MsrpConfig(max_chunk_size=64), auto_accept=True)
    for i in range(0, len(data), step):
        for command in conn.receive_data(data[i : i + step], float(i)):
            assert isinstance(command, Command.__args__)


def test_partial_error_response_reaches_the_user() -> None:
    """Failure-Report partial: no timer, yet an error response fails the message (§7.1.1)."""
    conn, out = alice()
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(
        ALICE, "text/plain", b"hi", 1.0, failure_report=FailureReport.PARTIAL
    )
    (frame,) = sent(out)
    assert events(out, MessageSent) and conn.next_deadline() is None
    out = conn.receive_data(answer(frame, 415), 2.0)
    assert events(out, TransactionFailed)[0].code == 415
    assert events(out, MessageFailed) == [MessageFailed(ALICE, mid, 415, "x")]


def test_failure_report_after_sent_fails_message_once() -> None:
    """A failure REPORT after all 200s still fails the message, once (§7.3.2)."""
    conn, out = alice()
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"hi", 1.0)
    assert events(conn.receive_data(answer(sent(out)[0]), 1.0), MessageSent)
    report = Request(
        "rep00001", "REPORT", (ALICE,), (BOB,), message_id=mid, status=Status(408, "gone")
    )
    out = conn.receive_data(report.encode(), 2.0)
    assert events(out, MessageFailed) == [MessageFailed(ALICE, mid, 408, "gone")]
    again = Request(
        "rep00002", "REPORT", (ALICE,), (BOB,), message_id=mid, status=Status(408, "gone")
    )
    assert events(conn.receive_data(again.encode(), 3.0), MessageFailed) == []


def test_expected_sessions_restrict_binding() -> None:
    """A connection keyed for one session cannot bind another registered session (481)."""
    registry = SessionRegistry()
    registry.add(BOB_SESSION)
    other = MsrpUri.parse("msrp://bob.example.com:8888/othersession;tcp")
    registry.add(SessionParams(local_uri=other, peer_path=(ALICE,)))
    conn = MsrpConnection(registry=registry, random=counter_random(), expected=[other])
    out = conn.receive_data(ex.BASIC_4, 0.0)  # To-Path: Bob's first session
    assert [f.code for f in sent(out)] == [481]
    assert registry.bound_to(BOB) is None


def test_oversized_chunk_rejects_rest_of_message() -> None:
    """A chunk above max_chunk_size gets 413 and so do later chunks of its message (§10.5)."""
    conn = bob(MsrpConfig(max_chunk_size=16), auto_accept=True)
    conn.receive_data(_send_frame("tid00000", None), 0.0)  # bind
    big = _send_frame(
        "tid00001", b"a" * 40, byte_range=ByteRange(1, None, 44), flag=Continuation.MORE
    )
    assert [f.code for f in sent(conn.receive_data(big, 0.0))] == [413]
    rest = _send_frame("tid00002", b"bbbb", byte_range=ByteRange(41, 44, 44))
    out = conn.receive_data(rest, 0.0)
    assert [f.code for f in sent(out)] == [413] and not events(out, MessageReceived)


def test_peer_max_size_enforced_on_send() -> None:
    """We do not send a message above the peer's a=max-size (§8.6)."""
    registry = SessionRegistry()
    params = SessionParams(local_uri=ALICE, peer_path=(BOB,), peer_max_size=4)
    registry.add(params)
    conn = MsrpConnection(registry=registry, random=counter_random())
    conn.open_session(params, 0.0)
    with pytest.raises(MsrpLimitExceeded):
        conn.send_message(ALICE, "text/plain", b"12345", 0.0)
    conn.send_message(ALICE, "text/plain", b"1234", 0.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=8))
def test_split_input_gives_same_commands(cuts: list[int]) -> None:
    """Feeding the RFC 7701 stream in arbitrary pieces gives the same commands as one piece."""
    registry = SessionRegistry()
    chat = MsrpUri.parse("msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp")
    atlanta = MsrpUri.parse("msrp://client.atlanta.example.com:7654/jshA7weztas;tcp")
    registry.add(
        SessionParams(local_uri=chat, peer_path=(atlanta,), accept_types=("message/cpim",))
    )
    stream = ex.ROOM_F1 + ex.PRIVATE_F1 + ex.NICK_F1 + ex.FIG2_200 + ex.NICK_F3

    def run(pieces: list[bytes]) -> list[Command]:
        conn = MsrpConnection(registry=registry, random=counter_random(), auto_accept=True)
        out: list[Command] = []
        for piece in pieces:
            out.extend(conn.receive_data(piece, 0.0))
        out.extend(conn.connection_lost(0.0))
        return [c for c in out if not isinstance(c, ArmTimer)]

    points = sorted({min(c, len(stream)) for c in itertools.accumulate(cuts)})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole = run([stream])
    assert len(events(whole, MessageReceived)) == 2 and len(events(whole, RequestReceived)) == 2
    assert run(pieces) == whole


def test_caller_mistakes_raise_value_error() -> None:
    """Bad caller-chosen ids and non-extension methods are programming errors."""
    conn, _ = alice()
    with pytest.raises(ValueError):
        conn.send_message(ALICE, "text/plain", b"x", 0.0, message_id="no spaces allowed")
    conn.send_message(ALICE, "text/plain", b"x", 0.0, message_id="fixed-id-1")
    with pytest.raises(ValueError):
        conn.send_message(ALICE, "text/plain", b"x", 0.0, message_id="fixed-id-1")
    for method in ("SEND", "REPORT", "nick", ""):
        with pytest.raises(ValueError):
            conn.send_request(ALICE, method, 0.0)


def _lines_run(fn: Callable[[], object]) -> int:
    """How many source lines of the connection core ``fn`` executes (a work count that
    does not depend on the machine's speed)."""
    import sys

    count = 0

    def tracer(frame: Any, event: str, _arg: object) -> Any:
        nonlocal count
        if event == "line" and frame.f_code.co_filename.endswith("msrp/connection.py"):
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def test_send_cost_does_not_grow_with_transactions_in_flight() -> None:
    """Queuing a message costs the same with 5 or 500 unanswered chunks in flight: the
    window and the next deadline are kept as running values, not recomputed by scanning
    every pending transaction (the relay hot path, RFC 4975 §7.1.1 pacing)."""
    conn, out = alice(MsrpConfig(send_window=1 << 20))
    conn.receive_data(answer(sent(out)[0]), 0.0)
    costs = []
    for backlog in (5, 500):
        while len(conn._transactions) < backlog:
            conn.send_message(ALICE, "text/plain", b"x" * 100, 1.0)
        costs.append(_lines_run(lambda: conn.send_message(ALICE, "text/plain", b"y", 1.0)))
    assert costs[1] <= costs[0] + 5, costs


def test_window_accounting_survives_aborts_and_failures() -> None:
    """Chunks of an aborted or failed message stop counting against the send window, so
    the next message is not held back by octets that will never be acknowledged."""
    conn, out = alice(MsrpConfig(chunk_size=4096, send_window=4096))
    conn.receive_data(answer(sent(out)[0]), 0.0)
    mid, out = conn.send_message(ALICE, "text/plain", b"a" * 8192, 1.0)
    (first,) = sent(out)
    conn.abort_message(mid, 2.0)
    mid2, out = conn.send_message(ALICE, "text/plain", b"b" * 4096, 3.0)
    (second,) = sent(out)
    assert second.message_id == mid2
    out = conn.receive_data(answer(second, 500), 4.0)
    assert events(out, MessageFailed)[0].message_id == mid2
    _mid3, out = conn.send_message(ALICE, "text/plain", b"c" * 4096, 5.0)
    assert len(sent(out)) == 1
    # The late 200 for the aborted message's chunk changes nothing.
    out = conn.receive_data(answer(first), 6.0)
    assert events(out, TransactionCompleted)


def test_request_reusing_a_pending_transaction_id_is_400() -> None:
    """A request whose transaction id is still awaiting our answer collides with it
    (RFC 4975 §7.1: ids MUST NOT collide with other transactions that exist at the same
    time): it is answered 400 and not delivered, so the application's answer to the
    first request stays unambiguous."""
    conn = bob()
    first = Request(
        "dupl1234", "SEND", (BOB,), (ALICE,), message_id="m1abcdef",
        byte_range=ByteRange(1, 2, 2), content_type="text/plain", body=b"hi",
    )  # fmt: skip
    second = attrs.evolve(first, message_id="m2abcdef", body=b"yo")
    out = conn.receive_data(first.encode() + second.encode(), 0.0)
    (delivered,) = events(out, MessageReceived)
    assert delivered.message_id == "m1abcdef"
    [rejection] = sent(out)
    assert isinstance(rejection, Response) and rejection.code == 400
    assert events(out, FrameRejected)[0].transaction_id == "dupl1234"
    (ok,) = sent(conn.respond("dupl1234", 200, 1.0))
    assert ok.code == 200


def test_sending_again_does_not_reformat_paths_or_reparse_types() -> None:
    """The second message of a session reuses the serialised To-Path/From-Path and the
    parsed Content-Type: the URI text and the media type essence are computed once per
    value, not once per frame (the relay hot path)."""
    import sys

    conn, out = alice()
    conn.receive_data(answer(sent(out)[0]), 0.0)
    conn.send_message(ALICE, "text/plain", b"one", 1.0)
    count = 0

    def tracer(frame: Any, event: str, _arg: object) -> Any:
        nonlocal count
        name = frame.f_code.co_filename
        if event == "line" and name.endswith(("msrp/uri.py", "msrp/media.py")):
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        conn.send_message(ALICE, "text/plain", b"two", 1.0)
    finally:
        sys.settrace(None)
    assert count <= 20, count  # 33 when every frame re-formatted and re-parsed them


def test_send_queue_is_bounded_when_the_peer_does_not_acknowledge() -> None:
    """Messages waiting behind a full send window are bounded by ``max_send_queue``: a
    peer that reads but never answers 200 cannot make the focus hold every message of a
    busy room; past the bound its connection fails (413) and every pending message is
    reported failed, so the leg ends and the others go on."""
    conn, out = alice(MsrpConfig(send_window=1000, max_send_queue=2000))
    conn.receive_data(answer(sent(out)[0]), 0.0)
    for _ in range(10 + 20):  # 10 in flight (window), 20 queued (2000 octets)
        _mid, out = conn.send_message(ALICE, "text/plain", b"x" * 100, 1.0)
        assert not events(out, CloseConnection)
    mid, out = conn.send_message(ALICE, "text/plain", b"x" * 100, 1.0)
    (close,) = events(out, CloseConnection)
    assert close.error.status == 413
    failed = events(out, MessageFailed)
    assert len(failed) == 31 and failed[-1].message_id == mid
    assert conn.closed


def _alice_sender(config: MsrpConfig | None = None) -> MsrpConnection:
    registry = SessionRegistry()
    registry.add(ALICE_SESSION)
    conn = MsrpConnection(registry=registry, random=counter_random(), config=config)
    conn.open_session(ALICE_SESSION, now=0.0)
    return conn


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=3000),
    failure=st.sampled_from(list(FailureReport)),
    success=st.booleans(),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["X-Tag", "Use-Nickname"]), st.text("abcxyz", min_size=1, max_size=8)
        ),
        max_size=2,
    ),
    chunk_size=st.sampled_from([700, 2048, 4096]),
)
def test_sends_are_byte_identical_to_request_encode(
    body: bytes,
    failure: FailureReport,
    success: bool,
    headers: list[tuple[str, str]],
    chunk_size: int,
) -> None:
    """Every SEND chunk, pre-encoded fast path or queued, is exactly ``Request.encode()``
    of the frame it parses to (RFC 4975 §7.1 header order, strict serialising)."""
    conn = _alice_sender(MsrpConfig(chunk_size=chunk_size))
    _mid, out = conn.send_message(
        ALICE,
        "text/plain",
        body,
        now=1.0,
        success_report=success,
        failure_report=failure,
        headers=headers,
    )
    datas = [c.data for c in out if isinstance(c, SendBytes)]
    assert datas
    received = b""
    for data in datas:
        (frame,) = FrameParser(MsrpConfig(max_chunk_size=chunk_size)).feed(data)
        assert isinstance(frame, Request)
        assert frame.encode() == data
        assert frame.failure_report == (None if failure is FailureReport.YES else failure)
        assert frame.wants_success_report is success
        assert frame.headers == tuple(headers)
        received += frame.body or b""
    if failure is not FailureReport.YES or len(body) <= chunk_size:
        assert received == body  # nothing held back by the send window


def test_relayed_copy_shares_the_body_bytes() -> None:
    """A one-chunk message is sent without copying its body into a chunk first."""
    body = b"x" * 100
    (chunk,) = split_message(body, 2048)
    assert chunk.body is body


def test_crlf_in_content_type_is_refused_before_anything_is_sent() -> None:
    """A Content-Type with CR/LF cannot become a header line (RFC 4975 §9): refused up
    front, nothing queued."""
    conn = _alice_sender()
    with pytest.raises(MsrpError):
        conn.send_message(ALICE, "text/plain\r\nX-Evil: 1", b"hi", now=1.0)
    _mid, out = conn.send_message(ALICE, "text/plain", b"hi", now=1.0)
    assert len([c for c in out if isinstance(c, SendBytes)]) == 1


def test_partial_copy_error_response_fails_only_that_message() -> None:
    """A relayed copy sent with Failure-Report partial gets no 200, but a 413 or 481 for
    it still fails that message (RFC 4975 §7.1.2, RFC 7701 §6.3)."""
    conn = _alice_sender()
    for code in (413, 481):
        mid, out = conn.send_message(
            ALICE, "text/plain", b"copy", now=1.0, failure_report=FailureReport.PARTIAL
        )
        assert events(out, MessageSent) == [MessageSent(ALICE, mid)]
        (request,) = sent(out)
        assert request.failure_report is FailureReport.PARTIAL
        answer = Response(request.transaction_id, code, (ALICE,), (BOB,), comment="no")
        later = conn.receive_data(answer.encode(), now=2.0)
        assert [(e.message_id, e.code) for e in events(later, MessageFailed)] == [(mid, code)]
        assert [e.code for e in events(later, TransactionFailed)] == [code]
    assert conn.next_deadline() == 30.0  # the binding SEND's timer only: none per copy


@pytest.mark.parametrize("failure", list(FailureReport))
@pytest.mark.parametrize("size", [10, 5000])
def test_notify_sent_false_suppresses_only_message_sent(failure: FailureReport, size: int) -> None:
    """``notify_sent=False`` (a relay not following its copies) sends the same bytes and
    emits no MessageSent, on the one-chunk fast path, the chunked path and after 200s."""
    config = MsrpConfig(chunk_size=2048)
    loud, quiet = _alice_sender(config), _alice_sender(config)
    body = b"z" * size
    _m1, out1 = loud.send_message(ALICE, "text/plain", body, now=1.0, failure_report=failure)
    _m2, out2 = quiet.send_message(
        ALICE, "text/plain", body, now=1.0, failure_report=failure, notify_sent=False
    )
    assert [c.data for c in out1 if isinstance(c, SendBytes)] == [
        c.data for c in out2 if isinstance(c, SendBytes)
    ]
    for request in sent(out2):
        ok = Response(request.transaction_id, 200, (ALICE,), (BOB,), comment="OK")
        out2 += quiet.receive_data(ok.encode(), now=2.0)
    for request in sent(out1):
        ok = Response(request.transaction_id, 200, (ALICE,), (BOB,), comment="OK")
        out1 += loud.receive_data(ok.encode(), now=2.0)
    assert events(out2, MessageSent) == []
    assert len(events(out1, MessageSent)) == 1
