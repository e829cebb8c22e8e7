"""Identity URIs and patterns (RFC 3261 §19.1.4 as PROFILE §1 applies it)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Identity, PolicyError, UriPattern, normalize_uri


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("sip:alice@example.net", "sip:alice@example.net"),
        ("SIP:alice@EXAMPLE.Net", "sip:alice@example.net"),
        ("sip:alice@example.net;transport=tcp?subject=x", "sip:alice@example.net"),
        ("<sips:alice@example.net:5061>", "sips:alice@example.net:5061"),
        ("sip:%61lice@example.net", "sip:alice@example.net"),
        ("sip:a%2fb@example.net", "sip:a%2Fb@example.net"),
        ("sip:alice:secret@example.net", "sip:alice@example.net"),
        ("sip:lobby@[2001:DB8::1]", "sip:lobby@[2001:db8::1]"),
        ("tel:+15551234;phone-context=x", "tel:+15551234"),
        ("sip:conf.example.net", "sip:conf.example.net"),
    ],
)
def test_normalization(text: str, normal: str) -> None:
    """Scheme and host fold case, parameters and headers drop, escapes of unreserved
    characters decode, passwords never enter the identity."""
    assert normalize_uri(text) == normal


def test_user_part_is_case_sensitive() -> None:
    """RFC 3261 §19.1.4: the user part compares case-sensitively."""
    assert Identity.parse("sip:Alice@example.net") != Identity.parse("sip:alice@example.net")


@pytest.mark.parametrize(
    "text",
    ["", "alice", "sip:", "sip:alice@", "sip:al ice@example.net", "sip:a@h:99999", "1x:y"],
)
def test_garbage_is_a_policy_error(text: str) -> None:
    """Text that is not a URI raises PolicyError."""
    with pytest.raises(PolicyError):
        Identity.parse(text)


def test_patterns() -> None:
    """'*' matches anyone, sip:*@host any user at that exact host, a URI exactly itself."""
    anyone = UriPattern.parse("*")
    domain = UriPattern.parse("sip:*@Example.net")
    exact = UriPattern.parse("sip:alice@example.net")
    assert anyone.matches("sip:x@y") and anyone.matches("not a uri")
    assert domain.matches("sip:bob@example.net;transport=tls")
    assert not domain.matches("sips:bob@example.net")
    assert not domain.matches("sip:bob@sub.example.net")
    assert not domain.matches("sip:example.net")
    assert not domain.matches("garbage")
    assert exact.matches("SIP:alice@EXAMPLE.NET")
    assert not exact.matches("sip:Alice@example.net")


@pytest.mark.parametrize("text", ["sip:a*@example.net", "sip:*@*.example.net", "tel:*@x", "**"])
def test_bad_patterns_are_refused(text: str) -> None:
    """Only '*', sip:*@host and exact URIs are patterns."""
    with pytest.raises(PolicyError):
        UriPattern.parse(text)


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_policy_errors(text: str) -> None:
    """Parsing any text gives an identity whose normal form is stable, or PolicyError."""
    try:
        identity = Identity.parse(text)
    except PolicyError:
        return
    assert Identity.parse(str(identity)) == identity
