"""RANDRr length follows the longest key in play (PROFILE.md section 2, RFC 6043 §12.1)."""

from __future__ import annotations

import pytest

import mikey
from kms_client import TicketResolution
from tests.kms.conftest import ALICE, BOB, Kms


@pytest.mark.parametrize(
    ("ticket_suite", "own_suite", "length"),
    [
        (mikey.SUITE_128, mikey.SUITE_128, 16),
        (mikey.SUITE_256, mikey.SUITE_128, 32),
        (mikey.SUITE_128, mikey.SUITE_256, 32),
        (mikey.SUITE_256, mikey.SUITE_256, 32),
    ],
    ids=["128-ticket-128-client", "256-ticket-128-client", "128-ticket-256-client", "256-256"],
)
def test_rand_r_is_as_long_as_the_longest_key(
    kms: Kms, ticket_suite: mikey.Suite, own_suite: mikey.Suite, length: int
) -> None:
    """resolve_ticket draws RANDRr of the longer of the ticket's suite (its TP PRF Func) and
    the client's own suite, since the same RANDRr goes into the TRANSFER_RESP."""
    grant = kms.value(
        kms.client(ALICE, suite=ticket_suite).request_ticket(initiator=ALICE, responders=[BOB])
    )
    assert isinstance(grant, mikey.TicketGrant) and grant.ticket_policy.prf == ticket_suite.prf
    resolution = kms.value(
        kms.client(BOB, suite=own_suite).resolve_ticket(responder=BOB, ticket=grant.ticket)
    )
    assert isinstance(resolution, TicketResolution)
    assert len(resolution.rand_r) == length
    assert resolution.tgk == grant.tgk and len(grant.tgk) == ticket_suite.key_len


def test_given_rand_r_is_used_as_is(kms: Kms) -> None:
    """A caller-supplied RANDRr is sent unchanged whatever the ticket's suite."""
    grant = kms.value(
        kms.client(ALICE, suite=mikey.SUITE_256).request_ticket(initiator=ALICE, responders=[BOB])
    )
    assert isinstance(grant, mikey.TicketGrant)
    rand_r = bytes(range(20))
    resolution = kms.value(
        kms.client(BOB).resolve_ticket(responder=BOB, ticket=grant.ticket, rand_r=rand_r)
    )
    assert isinstance(resolution, TicketResolution) and resolution.rand_r == rand_r
