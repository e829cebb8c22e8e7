"""Hypothesis properties of the parsers: errors, splitting and round trips."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focus.sip.errors import SipError
from focus.sip.framing import StreamError, StreamParser, parse_datagram
from focus.sip.headers import Address, Via
from focus.sip.message import Headers, Limits, Request, Response, parse_message
from focus.sip.uri import Parameters, SipURI, parse_uri

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

uri_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-.!*_+~", min_size=1,
                    max_size=12)  # fmt: skip
token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-.!%*_+`'~", min_size=1,
                max_size=12)  # fmt: skip
host = st.sampled_from(["example.com", "192.0.2.1", "[2001:db8::1]", "a-b.c.example"])
sip_uris = st.builds(
    SipURI,
    host=host,
    user=st.none() | uri_token,
    port=st.none() | st.integers(1, 65535),
    params=st.lists(st.tuples(uri_token, st.none() | uri_token), max_size=3)
    .map(tuple)
    .map(Parameters),
    scheme=st.sampled_from(["sip", "sips"]),
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    uri = draw(sip_uris)
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "FOO"]))
    headers = Headers.of(
        [
            ("Via", f"SIP/2.0/UDP {draw(host)};branch=z9hG4bK{draw(token)}"),
            ("From", Address(uri=draw(sip_uris), params=Parameters((("tag", draw(token)),)))),
            ("To", Address(uri=draw(sip_uris), display_name=draw(st.none() | token))),
            ("Call-ID", draw(token)),
            ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
            ("Max-Forwards", draw(st.integers(0, 255))),
            *draw(st.lists(st.tuples(token, token), max_size=4)),
        ]
    )
    body = draw(st.binary(max_size=64))
    return Request(method=method, uri=uri, headers=headers, body=body)


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_sip_errors(data: bytes) -> None:
    """Arbitrary bytes either parse or raise a SipError, as a datagram and on a stream."""
    with contextlib.suppress(SipError):
        parse_datagram(data)
    for item in StreamParser(Limits(max_header_bytes=256, max_body_bytes=256)).feed(data):
        assert isinstance(item, (Request, Response, StreamError))


@SETTINGS
@given(st.lists(requests(), min_size=1, max_size=3), st.data())
def test_stream_split_anywhere_gives_same_messages(
    msgs: list[Request], data: st.DataObject
) -> None:
    """Feeding a stream in arbitrary pieces (down to one byte) yields the same messages."""
    wire = b"\r\n".join(m.encode() for m in msgs)
    whole = StreamParser().feed(wire)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    parser = StreamParser()
    split = [m for p in pieces for m in parser.feed(p)]
    assert split == whole
    bytewise = StreamParser()
    assert [m for i in range(len(wire)) for m in bytewise.feed(wire[i : i + 1])] == whole
    assert len(whole) == len(msgs)


@SETTINGS
@given(requests())
def test_parse_serialize_parse_is_stable(req: Request) -> None:
    """encode → parse gives back the request, and a second trip changes nothing."""
    first = parse_message(req.encode())
    assert isinstance(first, Request)
    assert first.uri == req.uri and first.body == req.body and first.method == req.method
    assert parse_message(first.encode()) == first
    assert first.encode() == parse_message(first.encode()).encode()


@SETTINGS
@given(sip_uris)
def test_uri_round_trip(uri: SipURI) -> None:
    """str and parse_uri are inverses on generated SIP URIs."""
    assert parse_uri(str(uri)) == uri


@SETTINGS
@given(st.text(max_size=80))
def test_header_value_parsers_raise_only_sip_errors(text: str) -> None:
    """Address and Via parsers raise only SipError on arbitrary text."""
    for parse in (Address.parse, Via.parse, parse_uri):
        with contextlib.suppress(SipError):
            parse(text)
