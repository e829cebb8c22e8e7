"""URIs, addresses, Via, CSeq and header containers (RFC 3261 §19, §20, §25)."""

from __future__ import annotations

import pytest

from focus.sip.errors import BadRequest, SipParseError
from focus.sip.headers import Address, CSeq, Via, canonical_name, split_list
from focus.sip.message import Headers
from focus.sip.uri import AbsoluteURI, SipURI, TelURI, parse_uri, uri_equal


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.net",
        "sips:bob:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent",
        "sip:192.0.2.4",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:user;par=u%40example.net@example.com",
        "tel:+358-555-1234567;postd=pp22",
        "urn:service:sos",
    ],
)
def test_uri_round_trip(text: str) -> None:
    """parse_uri and str are inverses for SIP, SIPS, tel and other absolute URIs."""
    assert str(parse_uri(text)) == text


def test_uri_kinds() -> None:
    """The scheme selects the URI class; unknown schemes are carried opaquely."""
    assert isinstance(parse_uri("SIP:a@b.c"), SipURI)
    assert isinstance(parse_uri("tel:+1234"), TelURI)
    assert isinstance(parse_uri("mailto:a@b.c"), AbsoluteURI)


@pytest.mark.parametrize(
    "text", ["sip:", "sip:a@", "sip:a@b:99999", "sip:a@300.1.1.1", "sip:a b@c", "<sip:a@b>"]
)
def test_bad_uris_raise_parse_error(text: str) -> None:
    """Malformed URIs raise SipParseError."""
    with pytest.raises(SipParseError):
        parse_uri(text)


# RFC 3261 §19.1.4: the equivalent and non-equivalent pairs given there.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
]  # fmt: skip
DIFFERENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris(a: str, b: str) -> None:
    """The §19.1.4 examples of equivalent URIs compare equal, both ways."""
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_rfc3261_different_uris(a: str, b: str) -> None:
    """The §19.1.4 examples of non-equivalent URIs compare unequal."""
    assert not uri_equal(parse_uri(a), parse_uri(b))


def test_address_forms() -> None:
    """name-addr and addr-spec parse; addr-spec parameters belong to the header (§20)."""
    a = Address.parse('"Alice A." <sip:alice@example.net;transport=tcp>;tag=abc')
    assert a.display_text == "Alice A."
    assert isinstance(a.uri, SipURI) and a.uri.transport == "tcp"
    assert a.tag == "abc"
    b = Address.parse("sip:bob@example.net;tag=xyz")
    assert b.tag == "xyz" and str(b.uri) == "sip:bob@example.net"
    c = Address.parse("Bob<sip:bob@example.net>")
    assert c.display_name == "Bob"
    assert Address.parse(str(a)) == a


def test_address_with_tag() -> None:
    """with_tag replaces or adds the tag parameter."""
    a = Address.parse("<sip:a@b.c>;tag=1").with_tag("2")
    assert a.tag == "2" and str(a) == "<sip:a@b.c>;tag=2"


def test_via_parse_and_params() -> None:
    """Via parses with whitespace around separators and exposes branch/rport/received."""
    v = Via.parse("SIP / 2.0 / udp  192.0.2.1 : 5070 ; branch = z9hG4bKx ; rport")
    assert (v.transport, v.host, v.port, v.branch) == ("UDP", "192.0.2.1", 5070, "z9hG4bKx")
    assert v.wants_rport and v.rport is None
    v2 = v.with_params(v.params.set("rport", "1234").set("received", "2001:db8::1"))
    assert v2.rport == 1234 and v2.received == "2001:db8::1"
    assert Via.parse(str(v2)) == v2


def test_via_rejects_other_protocols() -> None:
    """A Via whose protocol is not SIP/2.0 is a parse error."""
    with pytest.raises(SipParseError):
        Via.parse("SIP/3.0/UDP host")


def test_cseq_limits() -> None:
    """CSeq numbers must be below 2**31 (§8.1.1.5)."""
    assert CSeq.parse("  2147483647   BYE") == CSeq(2**31 - 1, "BYE")
    with pytest.raises(BadRequest):
        CSeq.parse("2147483648 BYE")


def test_split_list_respects_quotes_and_brackets() -> None:
    """Commas inside quoted strings and <> do not split a list header (§7.3.1)."""
    assert split_list('"a, b" <sip:x@y>, <sip:z@w;p=1,2>') == [
        '"a, b" <sip:x@y>',
        "<sip:z@w;p=1,2>",
    ]


def test_compact_forms_and_case() -> None:
    """Compact forms and any capitalisation map to the canonical name (§7.3.3)."""
    assert canonical_name("v") == "Via"
    assert canonical_name("cALL-id") == "Call-ID"
    h = Headers.of([("v", "SIP/2.0/UDP a"), ("VIA", "SIP/2.0/UDP b, SIP/2.0/UDP c")])
    assert h.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert h.prepend("Via", "SIP/2.0/UDP z").get("v") == "SIP/2.0/UDP z"
    assert h.set("Via", "x").lines("Via") == ["x"]
    assert "Via" not in h.remove("v")
