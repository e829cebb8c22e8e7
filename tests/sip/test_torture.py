"""RFC 4475 torture-test messages (fixtures extracted bit-exact from its Appendix A)."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.sip.errors import SipParseError, VersionNotSupported
from focus.sip.framing import StreamParser
from focus.sip.message import Request, Response, check_request, check_response, parse_message

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"

# §3.1.1 valid messages, plus the §3.2-§3.4 messages that are syntactically valid (their
# semantics are handled by the server core: 416, 420, 415, 483, ...).
VALID = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq",
    "semiuri", "transports", "mpart01", "unreason", "noreason",
    "badbranch", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01", "bcast",
    "zeromf", "cparam01", "cparam02", "regescrt", "sdp01", "inv2543",
    # §3.1.2.12: an invalid Date; we never interpret Date, so (as the RFC allows for
    # elements that do not care about Date) we accept the message.  Deliberate tolerance.
    "baddate",
]  # fmt: skip

# §3.1.2 invalid messages and §3.3.1/§3.3.8/§3.3.9 ones that must be answered with 400.
INVALID = [
    "badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri", "lwsruri",
    "lwsstart", "trws", "escruri", "regbadct", "badaspec", "baddn", "mismatch01",
    "mismatch02", "bigcode", "insuf", "multi01", "mcl01",
]  # fmt: skip


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.dat").read_bytes()


def parse_and_check(data: bytes) -> Request | Response:
    msg = parse_message(data)
    if isinstance(msg, Request):
        check_request(msg)
    else:
        check_response(msg)
    return msg


def test_every_fixture_is_classified() -> None:
    """Each message of the archive is listed exactly once as valid, invalid or badvers."""
    names = {p.stem for p in FIXTURES.glob("*.dat")}
    assert names == {*VALID, *INVALID, "badvers"}


@pytest.mark.parametrize("name", VALID)
def test_valid_message_parses(name: str) -> None:
    """A message RFC 4475 calls valid parses, passes the §8.1.1 checks and round-trips."""
    msg = parse_and_check(load(name))
    again = parse_message(msg.encode())
    # encode() always writes Content-Length (§18.3); everything else is unchanged.
    assert again.headers.remove("Content-Length") == msg.headers.remove("Content-Length")
    assert again.body == msg.body
    assert parse_message(again.encode()) == again


@pytest.mark.parametrize("name", INVALID)
def test_invalid_message_is_rejected_with_400(name: str) -> None:
    """A message RFC 4475 calls invalid raises SipParseError whose answer is 400."""
    with pytest.raises(SipParseError) as info:
        parse_and_check(load(name))
    assert info.value.status == 400


def test_baddn_is_rejected_for_its_display_name() -> None:
    """§3.1.2.15: with its missing final CRLF restored, baddn fails on the display name."""
    with pytest.raises(SipParseError, match=r"display name|URI"):
        parse_and_check(load("baddn") + b"\r\n")


def test_unknown_version_is_505() -> None:
    """§3.1.2.16: SIP/7.0 is answered with 505 Version Not Supported."""
    with pytest.raises(VersionNotSupported) as info:
        parse_message(load("badvers"))
    assert info.value.status == 505


def test_wsinv_values_are_understood() -> None:
    """§3.1.1.1: folded, oddly spaced header values parse to their intended meaning."""
    msg = parse_and_check(load("wsinv"))
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.max_forwards == 68
    assert msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    assert msg.to.tag == "1918181833n"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display_text == 'J Rosenberg \\"'
    vias = msg.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert vias[2].branch == "z9hG4bK30239"
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.contacts[0].params.get("q") == "0.33"
    assert len(msg.body) == 150


def test_dblreq_extra_octets_are_ignored() -> None:
    """§3.1.1.8: octets after Content-Length in a datagram are discarded."""
    msg = parse_message(load("dblreq"))
    assert msg.body == b""


def test_dblreq_on_a_stream_yields_two_messages() -> None:
    """On a stream dblreq frames as two requests; its last stray octets end the stream."""
    out = StreamParser().feed(load("dblreq"))
    assert [type(m).__name__ for m in out] == ["Request", "Request", "StreamError"]


def test_esc01_keeps_escapes_and_compares_unescaped() -> None:
    """§3.1.1.3: escaped user parts survive parsing and compare equal to unescaped."""
    from focus.sip.uri import SipURI, uri_equal

    msg = parse_and_check(load("esc01"))
    assert isinstance(msg, Request)
    assert uri_equal(msg.to.uri, SipURI.parse("sip:user@example.com"))
