"""Hypothesis strategies for every MIKEY payload value (RFC 3830 §6, RFC 6043 §6)."""

from __future__ import annotations

from hypothesis import strategies as st

from mikey import payloads as p

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
small = st.binary(max_size=24)
blob8 = st.binary(max_size=40)

kv = st.one_of(
    st.just(p.KvNull()),
    st.builds(p.KvSpi, blob8),
    st.builds(p.KvInterval, blob8, blob8),
)


@st.composite
def key_data(draw: st.DrawFn) -> p.KeyData:
    key_type = draw(st.integers(0, 15))
    salted = key_type in (1, 3, 5)
    return p.KeyData(key_type, draw(small), draw(kv), draw(small) if salted else None)


def _ts(ts_type: int) -> st.SearchStrategy[int]:
    return st.integers(0, 2**64 - 1) if ts_type in (0, 1) else u32


timestamp = st.integers(0, 3).flatmap(lambda t: st.builds(p.Timestamp, st.just(t), _ts(t)))
timestamp_r = st.integers(0, 3).flatmap(lambda t: st.builds(p.TimestampR, u8, st.just(t), _ts(t)))
mac = st.sampled_from([(0, 0), (1, 20), (2, 32)]).flatmap(
    lambda a: st.tuples(st.just(a[0]), st.binary(min_size=a[1], max_size=a[1]))
)
kemac = st.builds(
    lambda e, d, m: p.Kemac(e, d, m[0], m[1]),
    u8,
    st.one_of(st.binary(max_size=60), st.lists(key_data(), max_size=3).map(p.encode_key_data)),
    mac,
)
verification = mac.map(lambda m: p.Verification(m[0], m[1]))
dh = st.sampled_from([(0, 192), (1, 96), (2, 128)]).flatmap(
    lambda g: st.builds(
        p.Dh,
        st.just(g[0]),
        st.binary(min_size=g[1], max_size=g[1]),
        kv,
        st.integers(0, 15),
    )
)
chash = st.sampled_from([(0, 20), (1, 16), (2, 32)]).flatmap(
    lambda h: st.builds(p.Chash, st.just(h[0]), st.binary(min_size=h[1], max_size=h[1]))
)
security_policy = st.builds(
    p.SecurityPolicy, u8, u8, st.lists(st.builds(p.PolicyParam, u8, small), max_size=4).map(tuple)
)
flags = st.integers(0, 0xFFF).map(lambda bits: p.TicketFlags(bits << 5))

simple_payload = st.one_of(
    timestamp,
    timestamp_r,
    st.builds(p.Rand, blob8),
    st.builds(p.RandR, u8, blob8),
    st.builds(p.Id, u8, small),
    st.builds(p.Cert, u8, small),
    st.builds(p.Idr, u8, u8, small),
    kemac,
    st.builds(p.Pke, st.integers(0, 3), small),
    dh,
    chash,
    verification,
    security_policy,
    st.builds(p.ErrorPayload, u8, u16),
    st.builds(p.GeneralExtension, u8, small),
)

ticket_policy = st.builds(
    p.TicketPolicy,
    u16,
    u8,
    u8,
    st.integers(0, 0x7F),
    flags,
    st.lists(simple_payload, max_size=4).map(tuple),
    st.integers(0, 0x1F),
)
ticket = st.builds(p.Ticket, ticket_policy, st.binary(max_size=60), st.binary(max_size=30))
payload = st.one_of(simple_payload, ticket_policy, ticket)
sign = st.builds(p.Sign, st.integers(0, 15), st.binary(max_size=40))

generic_cs = st.builds(
    p.GenericCs, u8, u8, st.booleans(), st.lists(u8, max_size=4).map(tuple), small, blob8
)
cs_map = st.one_of(
    st.lists(st.builds(p.SrtpCs, u8, u32, u32), max_size=3).map(lambda e: p.SrtpIdMap(tuple(e))),
    st.builds(p.EmptyMap, u8),
    st.lists(generic_cs, max_size=3).map(lambda e: p.GenericIdMap(tuple(e))),
)
header = st.builds(p.Header, u8, u32, cs_map, st.integers(0, 0x7F), st.booleans())


@st.composite
def message(draw: st.DrawFn) -> p.Message:
    body = draw(st.lists(payload, max_size=6))
    if draw(st.booleans()):
        body.append(draw(sign))
    return p.Message(draw(header), tuple(body))
