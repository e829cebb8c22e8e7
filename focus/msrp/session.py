"""What SDP negotiated for an MSRP session, and which connection each session is bound to.

RFC 4975 §5.4: the passive side learns who connected from the first request's To-Path: it
names a session URI the passive side handed out in SDP (no match → 481), and a session may
be bound to one connection only (already bound elsewhere → 506).  :class:`SessionRegistry`
is the shared, sans-IO table of those URIs; every :class:`MsrpConnection` of an endpoint
uses the same registry.  In this profile each session has its own TLS-PSK connection
(PROFILE §9), but the registry does not rely on it.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from .errors import MsrpSessionBoundElsewhere, MsrpSessionUnknown
from .uri import MsrpUri

__all__ = ["SessionParams", "SessionRegistry"]


@attrs.frozen
class SessionParams:
    """One MSRP session as negotiated in SDP (RFC 4975 §8).

    ``local_uri`` is our ``a=path`` URI (the peer's To-Path); ``peer_path`` is the peer's
    ``a=path`` list, used as the To-Path of our requests.  ``accept_types`` and
    ``accept_wrapped_types`` are what *we* declared (incoming SENDs of other types get 415);
    ``peer_accept_types``/``peer_accept_wrapped_types``/``peer_max_size`` are what the peer
    declared (we never send it anything else, RFC 4975 §8.6).
    """

    local_uri: MsrpUri
    peer_path: tuple[MsrpUri, ...]
    accept_types: tuple[str, ...] = ("*",)
    accept_wrapped_types: tuple[str, ...] = ()
    peer_accept_types: tuple[str, ...] = ("*",)
    peer_accept_wrapped_types: tuple[str, ...] = ()
    peer_max_size: int | None = None

    @property
    def peer_uri(self) -> MsrpUri:
        """The peer's own session URI: the rightmost of its path (RFC 4975 §8.3)."""
        return self.peer_path[-1]


class SessionRegistry:
    """Session URIs we handed out, and the connection each is bound to (RFC 4975 §5.4)."""

    def __init__(self) -> None:
        self._sessions: dict[MsrpUri, SessionParams] = {}
        self._bound: dict[MsrpUri, Hashable] = {}

    def add(self, params: SessionParams) -> None:
        """Expect requests for ``params.local_uri`` (after our SDP offer/answer)."""
        self._sessions[params.local_uri] = params

    def remove(self, local_uri: MsrpUri) -> None:
        """Forget a session (SIP BYE, leg torn down); later requests get 481."""
        self._sessions.pop(local_uri, None)
        self._bound.pop(local_uri, None)

    def lookup(self, local_uri: MsrpUri) -> SessionParams | None:
        return self._sessions.get(local_uri)

    def bound_to(self, local_uri: MsrpUri) -> Hashable | None:
        return self._bound.get(local_uri)

    def bind(self, local_uri: MsrpUri, connection_id: Hashable) -> SessionParams:
        """Bind a session to a connection; raise 481 (unknown) or 506 (bound elsewhere)."""
        params = self._sessions.get(local_uri)
        if params is None:
            raise MsrpSessionUnknown("no such session")
        owner = self._bound.get(local_uri)
        if owner is not None and owner != connection_id:
            raise MsrpSessionBoundElsewhere("session already bound to another connection")
        self._bound[local_uri] = connection_id
        return params

    def unbind_connection(self, connection_id: Hashable) -> list[MsrpUri]:
        """Release every session of a failed connection (RFC 4975 §5.4); return them."""
        released = [uri for uri, owner in self._bound.items() if owner == connection_id]
        for uri in released:
            del self._bound[uri]
        return released
