"""The payload codec: exact round trips, only DecodeError on bad input, RFC examples."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mikey import payloads as p
from mikey.errors import DecodeError

from . import strategies as S

FAST = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])

# RFC 4567 §5.1: the I_MESSAGE (PSK, SRTP-ID) and R_MESSAGE of the SIP/SDP example.
RFC4567_I = (
    "AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAGEEoo2pee4hp2"
    "UaDX8ZE22YwKAAAPZG9uYWxkQGR1Y2suY29tAQAAAAAAAQAk0JKpgaVkDaawi9whVBtBt"
    "0KZ14ymNuu62+Nv3ozPLygwK/GbAV9iemnGUIZ19fWQUOSrzKTAv9zV"
)
RFC4567_R = (
    "AQEFgM0XflABAAAAAAAAAAAAAAYAyONQ6gAAAAAJAAAQbWlja2"
    "V5QG1vdXNlLmNvbQABn8HdGE5BMDXFIuGEga+62AgY5cc="
)


@FAST
@given(S.message())
def test_message_round_trip(msg: p.Message) -> None:
    """decode(encode(x)) == x, and re-encoding the decoded message gives the same bytes."""
    data = msg.encode()
    decoded = p.Message.decode(data)
    assert decoded == msg
    assert decoded.encode() == data
    assert decoded.raw == data
    assert len(decoded.spans) == len(msg.payloads)


@FAST
@given(S.message())
def test_encoding_is_deterministic(msg: p.Message) -> None:
    """Encoding the same value twice gives the same bytes and the same spans."""
    assert msg.encode_with_spans() == msg.encode_with_spans()


@FAST
@given(S.message())
def test_spans_delimit_each_payload(msg: p.Message) -> None:
    """Each recorded span holds exactly one payload, starting at its Next byte."""
    decoded = p.Message.decode(msg.encode())
    ends = [s[1] for s in decoded.spans]
    starts = [s[0] for s in decoded.spans]
    assert starts[1:] == ends[:-1]
    if ends:
        assert ends[-1] == len(decoded.raw)


@FAST
@given(st.lists(S.key_data(), max_size=5))
def test_key_data_round_trip(keys: list[p.KeyData]) -> None:
    """Key data sub-payload chains round-trip (RFC 3830 §6.13, RFC 6043 §6.2.1)."""
    assert p.decode_key_data(p.encode_key_data(keys)) == tuple(keys)


@FAST
@given(S.ticket)
def test_ticket_value_round_trip(ticket: p.Ticket) -> None:
    """A TICKET payload value (without Next) round-trips through encode_value/decode_value."""
    assert p.Ticket.decode_value(ticket.encode_value()) == ticket


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    """Any input either decodes or raises DecodeError; decodable input re-encodes exactly."""
    try:
        msg = p.Message.decode(data)
    except DecodeError:
        return
    assert msg.encode() == data


@FAST
@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_bytes_after_a_header_raise_only_decode_error(tail: bytes) -> None:
    """Random payload chains after a valid header raise only DecodeError."""
    data = bytes.fromhex("010e") + tail[:1] + bytes.fromhex("000000000100") + tail[1:]
    with contextlib.suppress(DecodeError):
        assert p.Message.decode(data).encode() == data


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_key_data_and_tickets_raise_only_decode_error(data: bytes) -> None:
    """The sub-decoders (key data, TICKET value, payload chains) raise only DecodeError."""
    for decoder in (p.decode_key_data, p.Ticket.decode_value, p.decode_payload_chain):
        with contextlib.suppress(DecodeError):
            decoder(data)


@FAST
@given(S.message(), st.data())
def test_truncated_or_extended_messages_raise_decode_error(
    msg: p.Message, data: st.DataObject
) -> None:
    """Cutting a message short or appending bytes is always a DecodeError."""
    raw = msg.encode()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        p.Message.decode(raw[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=8))
    with pytest.raises(DecodeError):
        p.Message.decode(raw + extra)


@pytest.mark.parametrize("data_type", range(19))
def test_every_data_type_decodes(data_type: int) -> None:
    """Data types 0–18 (RFC 3830, 4650, 4738, 6043) all decode with their payload chain."""
    msg = p.Message(
        p.Header(data_type, 7, p.EmptyMap()),
        (p.Timestamp(0, 1), p.ErrorPayload(12), p.Verification(0)),
    )
    decoded = p.Message.decode(msg.encode())
    assert decoded.data_type == data_type
    assert decoded == msg


def test_unknown_payload_type_is_a_decode_error() -> None:
    """Payload types without a definition (18, 19, 22...) cannot be skipped (PROFILE §2)."""
    for bad in (18, 19, 20, 22, 255):
        data = bytes([1, 11, bad, 0, 0, 0, 0, 1, 0, 1, 0, 0])
        with pytest.raises(DecodeError):
            p.Message.decode(data)


def test_unknown_version_and_map_type_are_decode_errors() -> None:
    """Version 2 and CS ID map type 3 are refused."""
    with pytest.raises(DecodeError):
        p.Message.decode(bytes([2, 11, 0, 0, 0, 0, 0, 1, 0, 1]))
    with pytest.raises(DecodeError):
        p.Message.decode(bytes([1, 11, 0, 0, 0, 0, 0, 1, 0, 3]))


def test_sign_ends_the_chain() -> None:
    """SIGN has no Next field, so it is the last payload (RFC 3830 §6.5)."""
    msg = p.Message(p.Header(2, 1), (p.Timestamp(0, 5), p.Sign(1, b"sig")))
    data = msg.encode()
    assert data[-5:] == bytes([0x10, 0x03]) + b"sig"
    assert p.Message.decode(data) == msg
    with pytest.raises(ValueError, match="last"):
        p.Message(p.Header(2, 1), (p.Sign(1, b"s"), p.Timestamp(0, 5))).encode()


def test_rfc4567_example_i_message_decodes() -> None:
    """RFC 4567 §5.1's I_MESSAGE is an RFC 3830 PSK message with SRTP-ID map and KEMAC."""
    data = base64.b64decode(RFC4567_I)
    msg = p.Message.decode(data)
    assert msg.header == p.Header(0, 0xCD177E50, p.SrtpIdMap((p.SrtpCs(0, 0, 0),)), 0, True)
    assert [type(x) for x in msg.payloads] == [p.Timestamp, p.Rand, p.Id, p.SecurityPolicy, p.Kemac]
    ident = msg.first(p.Id)
    assert ident == p.Id(0, b"donald@duck.com")
    kemac = msg.first(p.Kemac)
    assert kemac is not None and (kemac.encr_alg, kemac.mac_alg) == (1, 1)
    assert len(kemac.encr_data) == 36 and len(kemac.mac) == 20
    assert msg.encode() == data


def test_rfc4567_example_r_message_decodes() -> None:
    """RFC 4567 §5.1's R_MESSAGE is HDR, T, ID(mickey@mouse.com), V(HMAC-SHA-1)."""
    data = base64.b64decode(RFC4567_R)
    msg = p.Message.decode(data)
    assert msg.header.data_type == p.DataType.PSK_RESP
    assert msg.first(p.Id) == p.Id(0, b"mickey@mouse.com")
    v = msg.payloads[-1]
    assert isinstance(v, p.Verification) and v.auth_alg == 1 and len(v.mac) == 20
    assert msg.encode() == data


def test_ticket_flag_bits_match_rfc6043_layout() -> None:
    """Word 2 after Version is PRF(7) D | E F G H I J K L | M N O Res (RFC 6043 §6.10)."""
    # chain = First Payload, Next, Ticket Type(2), Subtype, Version, then the flag word
    tp = p.TicketPolicy(1, 1, 7, 1, p.TicketFlags.D | p.TicketFlags.O)
    assert p.encode_payload_chain([tp])[5:9].hex() == "07" + "03" + "00" + "20"
    tp = p.TicketPolicy(1, 1, 1, 0, p.TicketFlags.E | p.TicketFlags.L | p.TicketFlags.M)
    assert p.encode_payload_chain([tp])[6:9].hex() == "00" + "81" + "80"


def test_generic_id_entry_layout() -> None:
    """A TLS CS encodes as `01 PT 00 0000 04 SPI` (DIGEST §1.5)."""
    msg = p.Message(p.Header(14, 0, p.GenericIdMap((p.GenericCs(1, 0xF1, spi=b"\0\0\0\1"),))), ())
    assert msg.encode()[8:].hex() == "0102" + "01f1000000" + "0400000001"


def test_key_data_repr_hides_key_and_salt() -> None:
    """KeyData and KEMAC reprs never show key material."""
    k = p.KeyData(p.KeyType.TGK_SALT, b"\x13" * 16, p.KvSpi(b"\1\2\3\4"), b"\x37" * 14)
    assert "1313" not in repr(k) and "3737" not in repr(k) and "b'\\x13" not in repr(k)
    kem = p.Kemac(0, p.encode_key_data([k]))
    assert "\\x13" not in repr(kem)


def test_salt_presence_follows_key_type() -> None:
    """Salt is required for the +SALT types and forbidden otherwise."""
    with pytest.raises(ValueError, match="salt"):
        p.KeyData(p.KeyType.TGK, b"k", salt=b"s")
    with pytest.raises(ValueError, match="salt"):
        p.KeyData(p.KeyType.TEK_SALT, b"k")
