"""MSRP URIs and path lists (RFC 4975 §6, §6.1, §9)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.msrp import MsrpError, MsrpParseError, MsrpUri, format_path, parse_path


def test_parse_rfc_example() -> None:
    """The RFC 4975 §6 example URI parses into its parts."""
    uri = MsrpUri.parse("msrp://host.example.com:8493/asfd34;tcp")
    assert (uri.scheme, uri.host, uri.port, uri.session_id, uri.transport) == (
        "msrp",
        "host.example.com",
        8493,
        "asfd34",
        "tcp",
    )
    assert not uri.secure


def test_parse_full_form_round_trips() -> None:
    """Userinfo, msrps, IPv6 literal and parameters survive parse and str."""
    text = "msrps://bob@[2001:db8::1]:2855/s3ss/i+on=;tcp;foo=bar;flag"
    uri = MsrpUri.parse(text)
    assert str(uri) == text
    assert uri.secure
    assert uri.userinfo == "bob"
    assert uri.params == (("foo", "bar"), ("flag", None))


@pytest.mark.parametrize(
    "text",
    [
        "msrp://host.example.com:8493/asfd34",  # no transport
        "sip://host.example.com:8493/asfd34;tcp",  # wrong scheme
        "msrp://10.0.0.1/asfd34;tcp",  # IP without port (§6)
        "msrp://[::1]/x;tcp",  # IPv6 without port
        "msrp://host:99999/x;tcp",  # port out of range
        "msrp://[zz::1]:1/x;tcp",  # bad IPv6
        "msrp://host:1/a b;tcp",  # space in session-id
        "msrp://host:1/a%20b;tcp",  # no pct-encoding in session-id
        "",
    ],
)
def test_parse_rejects_malformed(text: str) -> None:
    """Malformed URIs raise the 400 parse error."""
    with pytest.raises(MsrpParseError) as info:
        MsrpUri.parse(text)
    assert info.value.status == 400


def test_host_name_without_port_is_allowed() -> None:
    """Only IP authorities must carry a port (RFC 4975 §6)."""
    assert MsrpUri.parse("msrp://relay.example.com;tcp").port is None


def test_comparison_rules_equal() -> None:
    """Scheme/host/transport case, userinfo, IP spelling and params do not matter (§6.1)."""
    base = MsrpUri.parse("msrp://host.example.com:8493/asfd34;tcp")
    assert base == MsrpUri.parse("MSRP://HOST.Example.COM:8493/asfd34;TCP")
    assert base == MsrpUri.parse("msrp://alice@host.example.com:8493/asfd34;tcp;x=y")
    assert base == MsrpUri.parse("msrp://ho%73t.example.com:8493/asfd34;tcp")
    assert MsrpUri.parse("msrp://[::1]:1/a;tcp") == MsrpUri.parse("msrp://[0:0::1]:1/a;tcp")
    assert hash(base) == hash(MsrpUri.parse("msrp://HOST.example.com:8493/asfd34;tcp"))


@pytest.mark.parametrize(
    "other",
    [
        "msrps://host.example.com:8493/asfd34;tcp",  # scheme
        "msrp://host.example.com/asfd34;tcp",  # port absent vs present
        "msrp://host.example.com:8494/asfd34;tcp",  # port
        "msrp://host.example.com:8493/ASFD34;tcp",  # session-id is case-sensitive
        "msrp://host.example.com:8493;tcp",  # session-id absent
        "msrp://host.example.com:8493/asfd34;sctp",  # transport
        "msrp://other.example.com:8493/asfd34;tcp",  # host
    ],
)
def test_comparison_rules_differ(other: str) -> None:
    """Each §6.1 difference makes two URIs unequal."""
    assert MsrpUri.parse("msrp://host.example.com:8493/asfd34;tcp") != MsrpUri.parse(other)


def test_path_lists() -> None:
    """A path is URIs separated by SP, leftmost first hop; serialised with single SPs."""
    text = "msrp://a.example:1/x;tcp msrp://b.example:2/y;tcp"
    path = parse_path("  " + text.replace(" ", "   ") + " ")
    assert [uri.host for uri in path] == ["a.example", "b.example"]
    assert format_path(path) == text
    with pytest.raises(MsrpParseError):
        parse_path("   ")


_SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@settings(max_examples=200)
@given(
    scheme=st.sampled_from(["msrp", "msrps"]),
    host=_SAFE,
    port=st.none() | st.integers(0, 65535),
    session=st.none() | st.text(alphabet="abcXYZ019-._~+=/", min_size=1, max_size=20),
)
def test_round_trip_property(scheme: str, host: str, port: int | None, session: str | None) -> None:
    """str() and parse() are inverses for every well-formed URI."""
    uri = MsrpUri(scheme=scheme, host=host, port=port, session_id=session)
    again = MsrpUri.parse(str(uri))
    assert str(again) == str(uri)
    assert again == uri


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_msrp_error(text: str) -> None:
    """Arbitrary text either parses or raises MsrpError, nothing else."""
    with contextlib.suppress(MsrpError):
        MsrpUri.parse(text)


def test_userinfo_with_password_is_rejected() -> None:
    """A userinfo part must not carry a password (RFC 4975 §6)."""
    with pytest.raises(MsrpParseError):
        MsrpUri.parse("msrp://bob:secret@host.example.com:1/x;tcp")


def test_repeated_paths_are_parsed_once() -> None:
    """A path seen before costs a cache lookup, not a second parse: every frame of a
    session repeats the same To-Path and From-Path (RFC 4975 §7.1), and re-parsing them
    dominated the per-frame cost on the relay hot path."""
    import sys
    from typing import Any

    text = "msrps://127.0.0.1:20001/s8f7c6d5e4b3a2;tcp msrps://[::1]:20002/t9;tcp"

    def lines_run() -> int:
        count = 0

        def tracer(frame: Any, event: str, _arg: object) -> Any:
            nonlocal count
            if event == "line":
                count += 1
            return tracer

        sys.settrace(tracer)
        try:
            first = parse_path(text)
        finally:
            sys.settrace(None)
        assert first == parse_path(text)
        return count

    lines_run()
    assert lines_run() < 10
