"""may_act_as patterns and URI normalisation (PROFILE.md sections 1 and 6)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms._identity import IdentityPattern, InvalidIdentity, normalise_uri


def test_exact_pattern_matches_with_case_insensitive_scheme_and_host() -> None:
    """An exact URI pattern matches the same URI with scheme and host in another case."""
    pattern = IdentityPattern.parse("sip:alice@example.net")
    assert pattern.matches("SIP:alice@Example.NET")


def test_exact_pattern_user_part_is_case_sensitive() -> None:
    """The user part is compared case-sensitively (RFC 3261 section 19.1.4)."""
    assert not IdentityPattern.parse("sip:alice@example.net").matches("sip:Alice@example.net")


def test_wildcard_matches_any_user_of_the_domain_only() -> None:
    """`sip:*@domain` covers every user at that domain and no other domain."""
    pattern = IdentityPattern.parse("sip:*@conf.example.net")
    assert pattern.matches("sip:lobby@conf.example.net")
    assert not pattern.matches("sip:lobby@example.net")
    assert not pattern.matches("sip:lobby@evil.conf.example.net")
    assert not pattern.matches("sips:lobby@conf.example.net")


@pytest.mark.parametrize(
    "text",
    ["alice@example.net", "sip:alice", "sip:al*ce@example.net", "sip:a@b;transport=tcp", ""],
)
def test_bad_patterns_are_refused(text: str) -> None:
    """Strings that are not bare sip:user@host URIs or whole-user wildcards are refused."""
    with pytest.raises(InvalidIdentity):
        IdentityPattern.parse(text)


def test_normalise_refuses_wildcards() -> None:
    """A wildcard is a pattern, never an identity."""
    with pytest.raises(InvalidIdentity):
        normalise_uri("sip:*@example.net")


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_pattern_parse_raises_only_invalid_identity(text: str) -> None:
    """Arbitrary text either parses, round-trips through str(), or raises InvalidIdentity."""
    try:
        pattern = IdentityPattern.parse(text)
    except InvalidIdentity:
        return
    assert IdentityPattern.parse(str(pattern)) == pattern
