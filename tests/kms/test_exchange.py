"""The KMS client against the real KMS resource in memory (PROFILE.md sections 3, 4, 6)."""

from __future__ import annotations

from kms_client import KmsRejected, TicketResolution
from mikey import TicketFlags, TicketGrant

from .conftest import ALICE, BOB, FOCUS, NOW, ROOM, Kms


def grant_for(kms: Kms, initiator: str, responders: list[str], **kw: object) -> TicketGrant:
    d = kms.client(initiator).request_ticket(initiator=initiator, responders=responders, **kw)
    grant = kms.value(d)
    assert isinstance(grant, TicketGrant)
    return grant


def test_ticket_requested_by_alice_for_bob_resolves_for_bob_with_the_same_keys(kms: Kms) -> None:
    """Bob resolving Alice's ticket gets the MPKi, TGK and SPI Alice was granted."""
    grant = grant_for(kms, ALICE, [BOB])
    assert grant.responders == (BOB,)
    assert grant.valid_until is not None and abs(grant.valid_until - (NOW + 3600)) < 1
    resolution = kms.value(kms.client(BOB).resolve_ticket(responder=BOB, ticket=grant.ticket))
    assert isinstance(resolution, TicketResolution)
    assert (resolution.mpki, resolution.tgk, resolution.spi) == (grant.mpki, grant.tgk, grant.spi)
    assert resolution.responder == BOB
    assert len(resolution.rand_r) == 16


def test_ticket_for_bob_cannot_be_resolved_by_alice(kms: Kms) -> None:
    """An account not named in the ticket is refused with 403 (ERR 7), even the requester."""
    grant = grant_for(kms, ALICE, [BOB])
    failure = kms.failure(kms.client(ALICE).resolve_ticket(responder=ALICE, ticket=grant.ticket))
    assert failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (403, 7)


def test_claiming_to_be_the_responder_with_another_key_is_refused(kms: Kms) -> None:
    """Alice's key cannot resolve as Bob: the key may not act as IDRr (403)."""
    grant = grant_for(kms, ALICE, [BOB])
    client = kms.client(ALICE, psk_id=ALICE.encode())
    failure = kms.failure(client.resolve_ticket(responder=BOB, ticket=grant.ticket))
    assert failure.check(KmsRejected)
    assert failure.value.http_status == 403


def test_focus_resolves_as_a_room_uri_by_pattern(kms: Kms) -> None:
    """A key allowed sip:*@conf.example.net resolves a ticket naming the room URI."""
    grant = grant_for(kms, ALICE, [ROOM])
    resolution = kms.value(kms.client(FOCUS).resolve_ticket(responder=ROOM, ticket=grant.ticket))
    assert isinstance(resolution, TicketResolution)
    assert resolution.tgk == grant.tgk


def test_expired_ticket_is_403_err_14(kms: Kms) -> None:
    """A ticket past its TRe no longer resolves: 403 with ERR 14 (invalid ticket)."""
    grant = grant_for(kms, ALICE, [BOB], validity=60.0)
    kms.clock.advance(61.0)
    failure = kms.failure(kms.client(BOB).resolve_ticket(responder=BOB, ticket=grant.ticket))
    assert failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (403, 14)


def test_ticket_sealed_by_another_kms_is_403_err_14(kms: Kms) -> None:
    """A ticket whose MAC does not verify under this KMS's TPK is refused (ERR 14)."""
    grant = grant_for(kms, ALICE, [BOB])
    # The ticket ends with its MAC and a zero Initiator Data length: flip a MAC bit.
    tampered = grant.ticket[:-3] + bytes([grant.ticket[-3] ^ 1]) + grant.ticket[-2:]
    failure = kms.failure(kms.client(BOB).resolve_ticket(responder=BOB, ticket=tampered))
    assert failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (403, 14)


def test_request_for_an_identity_the_key_may_not_act_as_is_403_err_7(kms: Kms) -> None:
    """Bob's key naming itself by IDRpsk cannot request a ticket as Alice."""
    client = kms.client(BOB, psk_id=BOB.encode())
    failure = kms.failure(client.request_ticket(initiator=ALICE, responders=[BOB]))
    assert failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (403, 7)


def test_wrong_key_is_403_err_0(kms: Kms) -> None:
    """A MAC made with a key the KMS does not hold for that identity fails with ERR 0."""
    client = kms.client(ALICE, psk=b"\x00" * 16)
    failure = kms.failure(client.request_ticket(initiator=ALICE, responders=[BOB]))
    assert failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (403, 0)


def test_unknown_identity_is_403(kms: Kms) -> None:
    """An identity without an account is refused with 403."""
    client = kms.client(ALICE)
    failure = kms.failure(
        client.request_ticket(initiator="sip:mallory@example.net", responders=[BOB])
    )
    assert failure.check(KmsRejected)
    assert failure.value.http_status == 403


def test_validity_over_the_kms_maximum_is_capped_with_k(kms: Kms) -> None:
    """A TRe beyond max_ticket_lifetime is granted as the maximum, with K=1 (RFC 6043
    section 4.2.1.4: "possibly with a modified Ticket Policy")."""
    grant = grant_for(kms, ALICE, [BOB], validity=2 * 86400.0)
    assert grant.valid_until is not None and abs(grant.valid_until - (NOW + 86400)) < 1
    assert grant.ticket_policy.flags & TicketFlags.K


def test_client_clock_outside_the_skew_is_409_err_1(kms: Kms) -> None:
    """A request whose timestamp is 10 minutes off is refused with 409 and ERR 1."""
    from twisted.internet.task import Clock

    late = Clock()
    late.advance(NOW - 600)
    client = kms.client(ALICE, reactor=late)
    failure = kms.failure(client.request_ticket(initiator=ALICE, responders=[BOB]))
    assert failure.check(KmsRejected)
    assert (failure.value.http_status, failure.value.err_code) == (409, 1)


def test_grant_and_resolution_reprs_hold_no_keys(kms: Kms) -> None:
    """Neither the grant nor the resolution shows key bytes in its repr."""
    grant = grant_for(kms, ALICE, [BOB])
    resolution = kms.value(kms.client(BOB).resolve_ticket(responder=BOB, ticket=grant.ticket))
    for value in (grant, resolution):
        text = repr(value)
        assert grant.tgk.hex() not in text and repr(grant.tgk) not in text
        assert repr(grant.mpki) not in text
    assert KEYS_NOT_IN(repr(kms.client(ALICE)))


def KEYS_NOT_IN(text: str) -> bool:
    from .conftest import KEYS

    return all(repr(k) not in text and k.hex() not in text for k in KEYS.values())


def test_256_bit_suite_ticket_resolves_with_32_byte_keys(kms: Kms) -> None:
    """PROFILE.md section 2: with the 256-bit suite the TGK and MPKi are 32 bytes end to end."""
    from mikey import SUITE_256

    d = kms.client(BOB, suite=SUITE_256).request_ticket(initiator=BOB, responders=[ALICE])
    grant = kms.value(d)
    assert isinstance(grant, TicketGrant)
    assert len(grant.tgk) == 32 and grant.suite == SUITE_256
    resolution = kms.value(kms.client(ALICE).resolve_ticket(responder=ALICE, ticket=grant.ticket))
    assert isinstance(resolution, TicketResolution)
    assert (resolution.tgk, resolution.mpki) == (grant.tgk, grant.mpki)
