"""Relaying between legs through the FocusApplication: legs are stand-ins that carry
the real MsrpConnection of each participant, so the MSRP bytes are the real ones."""

from __future__ import annotations

from typing import Any

import attrs

from focus.conference import LegState
from focus.keying import start_initiator
from focus.msrp import (
    ByteRange,
    CpimAddress,
    CpimMessage,
    FrameParser,
    MsrpConnection,
    MsrpUri,
    Request,
    SessionRegistry,
    parse_path,
)
from focus.msrp import Response as MsrpResponse
from focus.msrp.connection import Command, SendBytes
from focus.service import FocusApplication
from tests.keying._tickets import make_grant

from ._harness import ALICE, NOW, ROOM, Focus, counter_random, invite, mikey_attr, offer_sdp

BOB = "sip:bob@example.net"


@attrs.define(eq=False)
class StandInLeg:
    """Just enough of MsrpLeg: the core's bytes are collected, its events go to the app."""

    leg_id: str
    connection: Any
    app: FocusApplication
    focus: Focus
    wire: list[bytes] = attrs.Factory(list)
    closed: bool = False

    def now(self) -> float:
        return self.focus.now

    def execute(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, SendBytes):
                self.wire.append(command.data)
            elif command.__class__.__name__ not in ("ArmTimer", "CloseConnection"):
                self.app.msrp_event(self, command)  # type: ignore[arg-type]

    def close(self) -> None:
        self.closed = True

    def frames(self) -> list[Any]:
        return FrameParser().feed(b"".join(self.wire))


def join(focus: Focus, who: str, call: str) -> StandInLeg:
    grant = make_grant(initiator=who, now=NOW + len(focus.app.calls))
    offer = start_initiator(
        grant, initiator=who, responder=ROOM, now=NOW, csb_id=7, rand=bytes(range(16))
    )
    focus.kms.grant = grant
    body = offer_sdp(mikey_attr(offer.transfer_init))
    response = focus.final(invite(body, from_uri=who, call_id=call, branch=f"z9hG4bK{call}"))
    assert response.status == 200
    [record] = [c for c in focus.app.calls.values() if c.call_id == call]
    assert record.leg is not None
    record.leg.close()  # the real leg (and its connection core) is replaced
    assert record.params is not None
    registry = SessionRegistry()
    registry.add(record.params)
    connection = MsrpConnection(registry=registry, random=counter_random(), connection_id=call)
    stand_in = StandInLeg(record.leg_id, connection, focus.app, focus)
    record.leg = stand_in  # type: ignore[assignment]
    focus.app.leg_up(stand_in)  # type: ignore[arg-type]
    # The participant's first SEND binds the session (RFC 4975 §5.4).
    send(stand_in, None, None, "bind" + call)
    assert focus.app.conference.participant(record.leg_id).state is LegState.BOUND
    return stand_in


def peer_path(leg: StandInLeg) -> tuple[MsrpUri, ...]:
    return parse_path("msrps://127.0.0.2:7654/s3ss10n;tcp")


def send(leg: StandInLeg, content_type: str | None, body: bytes | None, tid: str) -> None:
    [record] = [c for c in leg.app.calls.values() if c.leg_id == leg.leg_id]
    assert record.params is not None
    request = Request(
        transaction_id=tid,
        method="SEND",
        to_path=(record.params.local_uri,),
        from_path=peer_path(leg),
        message_id=f"m{tid}",
        byte_range=ByteRange(1, len(body or b""), len(body or b"")) if body else None,
        content_type=content_type,
        body=body,
    )
    leg.execute(leg.connection.receive_data(request.encode(), leg.now()))


def cpim(sender: str, to: str = ROOM, text: bytes = b"hello") -> bytes:
    return CpimMessage.build(
        from_=CpimAddress(sender), to=(CpimAddress(to),), content_type="text/plain", content=text
    ).encode()


def responses(leg: StandInLeg) -> list[int]:
    return [f.code for f in leg.frames() if isinstance(f, MsrpResponse)]


def sends(leg: StandInLeg) -> list[Any]:
    return [f for f in leg.frames() if isinstance(f, Request) and f.method == "SEND"]


def test_message_is_relayed_unchanged_with_new_ids() -> None:
    """Alice's CPIM message reaches Bob as a new SEND (new transaction id and Message-ID)
    with the same body; Alice gets 200."""
    focus = Focus()
    alice, bob = join(focus, ALICE, "ca"), join(focus, BOB, "cb")
    body = cpim(ALICE)
    send(alice, "message/cpim", body, "t1alice")
    assert responses(alice)[-1] == 200
    [copy] = sends(bob)
    assert copy.body == body and copy.content_type == "message/cpim"
    assert copy.transaction_id != "t1alice" and copy.message_id != "mt1alice"
    assert sends(alice) == []


def test_forged_cpim_from_is_403_and_not_relayed() -> None:
    """A CPIM From that is not the sender is answered 403 and goes nowhere."""
    focus = Focus()
    alice, bob = join(focus, ALICE, "ca"), join(focus, BOB, "cb")
    send(alice, "message/cpim", cpim(BOB), "t2alice")
    assert responses(alice)[-1] == 403
    assert sends(bob) == []


def test_nickname_in_use_is_425() -> None:
    """NICKNAME goes through the conference: first wins, another user gets 425."""
    focus = Focus()
    alice, bob = join(focus, ALICE, "ca"), join(focus, BOB, "cb")
    for leg, tid in ((alice, "n1alice"), (bob, "n2bob")):
        [record] = [c for c in focus.app.calls.values() if c.leg_id == leg.leg_id]
        assert record.params is not None
        request = Request(
            transaction_id=tid,
            method="NICKNAME",
            to_path=(record.params.local_uri,),
            from_path=peer_path(leg),
            headers=(("Use-Nickname", '"Ace"'),),
        )
        leg.execute(leg.connection.receive_data(request.encode(), leg.now()))
    assert responses(alice)[-1] == 200 and responses(bob)[-1] == 425


def test_failed_leg_removes_the_participant_and_sends_bye() -> None:
    """A leg failure (e.g. queue overflow) ends that participant alone, with BYE."""
    from focus.adapters.msrp_leg import LegQueueOverflow

    focus = Focus()
    alice, bob = join(focus, ALICE, "ca"), join(focus, BOB, "cb")
    focus.app.leg_failed(bob, LegQueueOverflow("slow"))  # type: ignore[arg-type]
    assert any(d.startswith(b"BYE ") for d in focus.collect() + focus.wire)
    assert [p.uri for p in focus.app.conference.participants] == [ALICE]
    send(alice, "message/cpim", cpim(ALICE), "t3alice")
    assert responses(alice)[-1] == 200 and sends(bob) == []
