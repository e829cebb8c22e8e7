"""The KMS's HTTP status and MIKEY Error answers with the real engine (PROFILE.md section 3)."""

from __future__ import annotations

import pytest
from treq.testing import StubTreq

from kms import MAX_BODY_SIZE, build_resource
from mikey import build_request_init, build_resolve_init, read_error

from .conftest import ALICE, BASE, BOB, KEYS, KMS_ID, NOW, Kms


@pytest.fixture
def http(kms: Kms) -> StubTreq:
    return StubTreq(build_resource(kms.engine, clock=kms.clock))


def post(http: StubTreq, path: str, body: bytes, content_type: str = "application/mikey"):
    d = http.post(BASE + path, data=body, headers={"Content-Type": content_type})
    http.flush()
    responses: list[object] = []
    d.addBoth(responses.append)
    response = responses[0]
    bodies: list[bytes] = []
    http.content(response).addBoth(bodies.append)
    return response, bodies[0]


def request_init(csb_id: int = 0x01020304, rand: bytes = b"r" * 16) -> bytes:
    return build_request_init(
        psk=KEYS[ALICE],
        initiator=ALICE,
        kms=KMS_ID,
        responders=[BOB],
        valid_until=NOW + 600,
        now=NOW,
        csb_id=csb_id,
        rand=rand,
    )


def test_wrong_content_type_is_415_with_a_mikey_error(http: StubTreq) -> None:
    """A valid REQUEST_INIT sent as text/plain is refused with 415 and an Error (ERR 12)."""
    response, body = post(http, "/request", request_init(), "text/plain")
    assert response.code == 415
    assert read_error(body).err_codes == (12,)


def test_garbage_body_is_400_with_a_mikey_error(http: StubTreq) -> None:
    """Bytes that are no MIKEY message get 400 and a decodable MIKEY Error body."""
    response, body = post(http, "/request", b"\x00garbage, not MIKEY at all")
    assert response.code == 400
    assert response.headers.getRawHeaders("content-type") == ["application/mikey"]
    assert read_error(body).err_codes == (12,)


def test_error_copies_the_csb_id_of_a_readable_header(http: StubTreq) -> None:
    """An Error answering a message with a readable header carries its CSB ID (RFC 6043 5.4)."""
    damaged = request_init(csb_id=0xCAFE0001)[:40]
    response, body = post(http, "/request", damaged)
    assert response.code == 400
    assert read_error(body).csb_id == 0xCAFE0001


def test_replayed_request_is_409_err_1(http: StubTreq) -> None:
    """The same REQUEST_INIT twice: 200 the first time, 409 with ERR 1 the second."""
    message = request_init()
    first, _ = post(http, "/request", message)
    assert first.code == 200
    again, body = post(http, "/request", message)
    assert again.code == 409
    assert read_error(body).err_codes == (1,)


def test_replayed_resolve_is_409_err_1(http: StubTreq, kms: Kms) -> None:
    """The same RESOLVE_INIT twice: the second is refused as a replay."""
    grant = kms.value(kms.client(ALICE).request_ticket(initiator=ALICE, responders=[BOB]))
    message = build_resolve_init(
        psk=KEYS[BOB],
        responder=BOB,
        kms=KMS_ID,
        ticket=grant.ticket,  # type: ignore[attr-defined]
        now=NOW,
        csb_id=7,
        rand_r=b"q" * 16,
    )
    first, _ = post(http, "/resolve", message)
    assert first.code == 200
    again, body = post(http, "/resolve", message)
    assert again.code == 409
    assert read_error(body).err_codes == (1,)


def test_request_sent_to_resolve_is_400(http: StubTreq) -> None:
    """A REQUEST_INIT posted to /resolve is a malformed resolve (400), not a crash."""
    response, body = post(http, "/resolve", request_init())
    assert response.code == 400
    assert read_error(body).err_codes


def test_request_for_another_kms_is_403_err_7(http: StubTreq) -> None:
    """A REQUEST_INIT naming another KMS in IDRkms is refused with ERR 7."""
    message = build_request_init(
        psk=KEYS[ALICE],
        initiator=ALICE,
        kms="sip:other-kms@example.net",
        responders=[BOB],
        valid_until=NOW + 600,
        now=NOW,
        csb_id=1,
        rand=b"s" * 16,
    )
    response, body = post(http, "/request", message)
    assert response.code == 403
    assert read_error(body).err_codes == (7,)


def test_body_over_64k_is_413(http: StubTreq) -> None:
    """More than 64 KiB is refused with 413."""
    response, _ = post(http, "/request", b"\x01" * (MAX_BODY_SIZE + 1))
    assert response.code == 413
