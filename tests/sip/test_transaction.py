"""RFC 3261 §17 transactions: retransmissions and timers with a clock value."""

from __future__ import annotations

import itertools

import pytest

from focus.sip.transaction import (
    ClientTransaction,
    In,
    ServerTransaction,
    Target,
    Terminated,
    TimedOut,
    TimerConfig,
    ToTU,
    Transmit,
    TxState,
)

from .helpers import make_request, make_response

UDP = Target("UDP", "192.0.2.1", 5060)
TCP = Target("TCP", "192.0.2.1", 5060)
T = TimerConfig()


def retransmit_times(tx: ClientTransaction | ServerTransaction, until: float) -> list[float]:
    """Advance the clock deadline by deadline, collecting the times of Transmit outputs."""
    times = []
    while (d := tx.deadline) is not None and d <= until:
        out = tx.on_timer(d)
        times += [round(d, 3) for o in out if isinstance(o, Transmit)]
    return times


def test_invite_client_timer_a_doubles_then_timer_b_times_out() -> None:
    """§17.1.1.2: INVITE is resent at 0.5, 1.5, 3.5 ... s; Timer B fires at 64*T1."""
    tx = ClientTransaction(make_request(), UDP, T)
    assert isinstance(tx.start(0.0)[0], Transmit)
    assert retransmit_times(tx, 31.0) == [0.5, 1.5, 3.5, 7.5, 15.5]
    out = tx.on_timer(32.0)
    assert TimedOut("timeout") in out and Terminated() in out
    assert tx.state is TxState.TERMINATED and tx.deadline is None


def test_invite_client_over_tcp_does_not_retransmit() -> None:
    """§17.1.1.2: Timer A is not started on reliable transports; B still is."""
    tx = ClientTransaction(make_request(), TCP, T)
    tx.start(0.0)
    assert set(tx.armed) == {"B"}


def test_invite_client_provisional_stops_retransmission() -> None:
    """A 1xx moves Calling to Proceeding: no more retransmissions and no Timer B."""
    req = make_request()
    tx = ClientTransaction(req, UDP, T)
    tx.start(0.0)
    out = tx.on_response(make_response(req, 180, to_tag="t"), 0.2)
    assert out == [ToTU(make_response(req, 180, to_tag="t"))]
    assert tx.state is TxState.PROCEEDING and tx.deadline is None


def test_invite_client_failure_is_acked_and_timer_d_runs() -> None:
    """§17.1.1.3: a 486 is ACKed by the transaction, retransmissions re-ACKed, D ends it."""
    req = make_request()
    tx = ClientTransaction(req, UDP, T)
    tx.start(0.0)
    busy = make_response(req, 486, to_tag="t")
    out = tx.on_response(busy, 0.1)
    ack = out[0]
    assert isinstance(ack, Transmit) and ack.message.method == "ACK"  # type: ignore[union-attr]
    assert ack.message.to.tag == "t" and ack.message.cseq.method == "ACK"
    assert ack.message.headers.get("Via") == req.headers.get("Via")
    assert ToTU(busy) in out and tx.state is TxState.COMPLETED
    assert tx.on_response(busy, 1.0) == [ack]
    assert tx.armed["D"] == pytest.approx(32.1)
    assert tx.on_timer(32.1) == [Terminated()]


def test_invite_client_2xx_goes_to_tu_including_retransmissions() -> None:
    """RFC 6026: 2xx moves to Accepted; retransmitted 2xx reach the TU until Timer M."""
    req = make_request()
    tx = ClientTransaction(req, UDP, T)
    tx.start(0.0)
    ok = make_response(req, 200, to_tag="t")
    assert tx.on_response(ok, 0.1) == [ToTU(ok)]
    assert tx.on_response(ok, 0.6) == [ToTU(ok)]
    assert tx.on_timer(0.1 + 32) == [Terminated()]


def test_non_invite_client_timer_e_caps_at_t2_and_f_times_out() -> None:
    """§17.1.2.2: E doubles up to T2 (0.5, 1, 2, 4, 4, ...); F fires at 64*T1."""
    tx = ClientTransaction(make_request("OPTIONS"), UDP, T)
    tx.start(0.0)
    assert retransmit_times(tx, 31.9) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.on_timer(32.0) == [TimedOut("timeout"), Terminated()]


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    """§17.1.2.2: after a 1xx the request is resent every T2."""
    req = make_request("BYE")
    tx = ClientTransaction(req, UDP, T)
    tx.start(0.0)
    tx.on_response(make_response(req, 100), 0.1)
    assert tx.armed["E"] == pytest.approx(4.1)


def test_non_invite_client_timer_k() -> None:
    """§17.1.2.2: a final response starts Timer K = T4 on UDP (0 on TCP)."""
    req = make_request("BYE")
    tx = ClientTransaction(req, UDP, T)
    tx.start(0.0)
    ok = make_response(req, 200)
    assert tx.on_response(ok, 1.0) == [ToTU(ok)]
    assert tx.armed == {"K": 6.0}
    assert tx.on_response(ok, 2.0) == []  # retransmission absorbed
    assert tx.on_timer(6.0) == [Terminated()]


def test_invite_server_timer_g_h() -> None:
    """§17.2.1: a 486 is resent at T1, 2T1... capped at T2, and Timer H gives up."""
    req = make_request()
    tx = ServerTransaction(req, UDP, T)
    busy = make_response(req, 486, to_tag="x")
    assert tx.send_response(busy, 0.0) == [Transmit(busy, UDP)]
    assert retransmit_times(tx, 31.9) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.on_timer(32.0) == [TimedOut("timeout"), Terminated()]


def test_invite_server_ack_confirms_and_timer_i() -> None:
    """§17.2.1: the ACK stops G/H; Timer I (T4) then terminates; retransmitted INVITEs
    get the last response again."""
    req = make_request()
    tx = ServerTransaction(req, UDP, T)
    busy = make_response(req, 486, to_tag="x")
    tx.send_response(busy, 0.0)
    assert tx.on_request(req, 0.2) == [Transmit(busy, UDP)]
    assert tx.on_request(make_request("ACK"), 0.3) == []
    assert tx.state is TxState.CONFIRMED and tx.armed == {"I": 5.3}
    assert tx.on_timer(5.3) == [Terminated()]


def test_invite_server_2xx_accepted_absorbs_retransmissions() -> None:
    """RFC 6026: after a 2xx, INVITE retransmissions are absorbed until Timer L."""
    req = make_request()
    tx = ServerTransaction(req, UDP, T)
    tx.send_response(make_response(req, 100), 0.0)
    ok = make_response(req, 200, to_tag="x")
    assert tx.send_response(ok, 0.1) == [Transmit(ok, UDP)]
    assert tx.on_request(req, 0.2) == []
    assert tx.on_timer(32.1) == [Terminated()]


def test_non_invite_server_timer_j() -> None:
    """§17.2.2: J = 64*T1 on UDP, 0 on TCP; retransmissions get the final response."""
    req = make_request("OPTIONS")
    tx = ServerTransaction(req, UDP, T)
    assert tx.on_request(req, 0.0) == []  # Trying: absorbed
    ok = make_response(req, 200, to_tag="x")
    tx.send_response(ok, 0.1)
    assert tx.on_request(req, 1.0) == [Transmit(ok, UDP)]
    assert tx.armed == {"J": pytest.approx(32.1)}
    tcp = ServerTransaction(req, TCP, T)
    tcp.send_response(ok, 0.0)
    assert tcp.on_timer(0.0) == [Terminated()]


def test_transport_error_fails_the_transaction() -> None:
    """§17.1.4: a transport error is reported to the TU and terminates the transaction."""
    tx = ClientTransaction(make_request("OPTIONS"), TCP, T)
    tx.start(0.0)
    assert tx.on_transport_error(0.1) == [TimedOut("transport"), Terminated()]


@pytest.mark.parametrize(
    ("kind", "method"), list(itertools.product(["client", "server"], ["INVITE", "BYE"]))
)
def test_every_state_input_pair_is_safe(kind: str, method: str) -> None:
    """Every (state, input) pair either follows the table or is absorbed without error,
    and nothing leaves Terminated."""
    req = make_request(method)
    for state in TxState:
        for what in In:
            tx: ClientTransaction | ServerTransaction
            tx = (
                ClientTransaction(req, UDP, T)
                if kind == "client"
                else ServerTransaction(req, UDP, T)
            )
            tx.state = state
            msg = None
            if what in (In.PROVISIONAL, In.TU_PROVISIONAL):
                msg = make_response(req, 180)
            elif what in (In.SUCCESS, In.TU_SUCCESS):
                msg = make_response(req, 200)
            elif what in (In.FAILURE, In.TU_FAILURE):
                msg = make_response(req, 500)
            elif what in (In.REQUEST, In.ACK):
                msg = req
            tx._intervals.update(dict.fromkeys("AEG", 0.5))
            out = tx._dispatch(what, msg, 1.0)
            if state is TxState.TERMINATED:
                assert out == [] and tx.state is TxState.TERMINATED
            if (state, what) not in tx.TABLE:
                assert out == [] and tx.state is state
