"""KMS accounts: who shares which pre-shared key with the KMS, and who each key may act as.

PROFILE.md section 3: each user (and the focus) shares a pre-shared key with the KMS.
IDRpsk (ID type 2) may name the key; when it is absent the KMS finds the key from IDRi
(ticket request) or IDRr (ticket resolve). Section 6: the KMS keeps, per key, the list of
identities (exact URIs or `sip:*@domain` patterns) that key may act as.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from ._identity import IdentityPattern, normalise_uri

__all__ = ["Account", "AccountStore", "AmbiguousIdentity"]


@attrs.frozen
class Account:
    """One account: the identity it is known by, its key, and whom that key may act as."""

    identity: str
    key: bytes = attrs.field(repr=False)
    may_act_as: tuple[IdentityPattern, ...]
    # The IDRpsk value (RFC 6043 section 6.6, ID type 2) that names this key. Defaults
    # to the UTF-8 bytes of the identity, so a client sending IDRpsk = its URI is found.
    psk_id: bytes

    def may_act_as_uri(self, uri: str) -> bool:
        """True when this account's key is authorised to speak for *uri*."""
        return any(pattern.matches(uri) for pattern in self.may_act_as)


class AmbiguousIdentity(LookupError):
    """Several accounts may act as an identity and none is named by it exactly."""


@attrs.frozen
class AccountStore:
    """An immutable set of accounts with the two lookups the KMS needs.

    A reload (SIGHUP) builds a new store and swaps it in whole, so a request never sees
    half of an old file and half of a new one.
    """

    accounts: tuple[Account, ...]
    _by_identity: Mapping[str, Account] = attrs.field(repr=False)
    _by_psk_id: Mapping[bytes, Account] = attrs.field(repr=False)

    @classmethod
    def of(cls, accounts: Iterable[Account]) -> AccountStore:
        """Index *accounts*; duplicate identities or PSK ids are a ValueError."""
        items = tuple(accounts)
        by_identity: dict[str, Account] = {}
        by_psk_id: dict[bytes, Account] = {}
        for account in items:
            ident = normalise_uri(account.identity)
            if ident in by_identity:
                raise ValueError(f"duplicate account identity {account.identity!r}")
            if account.psk_id in by_psk_id:
                raise ValueError(f"duplicate psk_id of account {account.identity!r}")
            by_identity[ident] = account
            by_psk_id[account.psk_id] = account
        return cls(accounts=items, by_identity=by_identity, by_psk_id=by_psk_id)

    def __len__(self) -> int:
        return len(self.accounts)

    def by_psk_id(self, psk_id: bytes) -> Account | None:
        """The account whose key IDRpsk names, if any."""
        return self._by_psk_id.get(psk_id)

    def for_identity(self, uri: str) -> Account | None:
        """The account whose key speaks for *uri* when no IDRpsk names one.

        An account whose own identity is *uri* wins. Otherwise the one account allowed to
        act as *uri* (for example the focus acting as a room URI) is used; when several
        could, AmbiguousIdentity is raised, because guessing would let one key's MAC
        check run against another's (the sender must name its key with IDRpsk then).
        """
        try:
            exact = self._by_identity.get(normalise_uri(uri))
        except ValueError:
            return None
        if exact is not None:
            return exact
        candidates = [a for a in self.accounts if a.may_act_as_uri(uri)]
        if len(candidates) > 1:
            raise AmbiguousIdentity(uri)
        return candidates[0] if candidates else None
