"""REFER to a conference URI (RFC 3515, RFC 4579 §5.5 and §5.11), sans-IO decisions.

Pure: no Twisted, no clock, no randomness.  The service hands this module the REFER's
header values and what it knows (the room's policy, who sent it, who is in the room)
and gets back what to do:

* :func:`parse_refer_to` reads the one Refer-To (RFC 3515 §2.4.1: zero or several are a
  400) into a :class:`ReferTarget`: the URI to act on and the method, taken from the
  URI's ``method`` parameter (RFC 3261 §19.1.1; RFC 4579 §5.11 writes
  ``<sip:carol@chicago.example.com;method=BYE>``), INVITE when absent.
* :func:`decide_refer` applies the room policy: :class:`InviteMember` (dial out to the
  target, RFC 4579 §5.5) when the referrer may invite (``policies.may_invite``), or
  :class:`RemoveMember` (send BYE to that participant, RFC 4579 §5.11) when the referrer
  is a moderator (``policies.is_moderator``) and the target is in the room; otherwise
  it raises :class:`ReferRefused` with the status to answer (403, 404, 416, 400).
* :func:`refer_notify` builds the NOTIFYs of the implicit subscription (RFC 3515
  §2.4.4-§2.4.7): Event ``refer`` (with ``id=<CSeq>`` so several REFERs in one dialog
  stay apart, §2.4.6), a ``message/sipfrag`` body that is exactly one Status-Line
  (§2.4.5: a minimal, complete implementation; nothing of the far end's response is
  copied, per RFC 3515 §5), and ``Subscription-State`` ``active;expires=N`` while the
  reference is pending, ``terminated;reason=noresource`` with the final status.

Deviations, written down where they are decided: only ``sip:``/``sips:`` targets are
accepted (416 otherwise: the focus cannot bring an HTTP resource into a chat room, and
RFC 3515 §2.4.2 says not to accept REFERs it cannot act on); methods other than INVITE
and BYE (RFC 4579 §5.7's REFER-with-REFER, for instance) are refused with 403; embedded
URI headers (``?Replaces=``) are refused with 403 rather than ignored, because acting on
a REFER while silently dropping part of it would do something the referrer did not ask.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from focus.sip.errors import SipError
from focus.sip.headers import Address
from focus.sip.uri import SipURI
from policies import Identity, PolicyError, Room, is_moderator, may_invite

__all__ = [
    "REFER_EVENT",
    "SIPFRAG",
    "InviteMember",
    "ReferAction",
    "ReferError",
    "ReferNotify",
    "ReferRefused",
    "ReferTarget",
    "RemoveMember",
    "decide_refer",
    "parse_refer_to",
    "refer_notify",
    "sipfrag",
]

REFER_EVENT = "refer"
"""RFC 3515 §3: the event package of the implicit subscription."""
SIPFRAG = "message/sipfrag;version=2.0"
"""RFC 3420 body type of every refer NOTIFY (RFC 3515 §2.4.5)."""

DEFAULT_REFER_EXPIRES = 120
"""Seconds the implicit subscription lasts while the reference is pending; it ends
earlier with the final NOTIFY.  RFC 3515 §2.4.4 leaves the duration to the notifier."""


class ReferError(Exception):
    """Root of this module's errors; ``sip_status`` is the answer to the REFER."""

    def __init__(self, sip_status: int, reason: str) -> None:
        super().__init__(reason)
        self.sip_status = sip_status
        self.reason = reason


class ReferRefused(ReferError):
    """The REFER is answered with ``sip_status`` (400, 403, 404, 416) and no subscription."""


@attrs.frozen
class ReferTarget:
    """The one Refer-To: ``uri`` without the ``method`` parameter (the identity to
    invite or remove), the requested ``method`` and the optional display name."""

    uri: str
    method: str = "INVITE"
    display_name: str | None = None


def parse_refer_to(values: Sequence[str]) -> ReferTarget:
    """Read the Refer-To header field values of a REFER (each list element one value).

    Raises :class:`ReferRefused`: 400 for zero or several values (RFC 3515 §2.4.1) or a
    malformed one, 416 for a non-SIP URI, 403 for embedded URI headers.
    """
    if len(values) != 1:
        raise ReferRefused(400, "a REFER needs exactly one Refer-To (RFC 3515 §2.4.1)")
    try:
        address = Address.parse(values[0])
    except SipError as exc:
        raise ReferRefused(400, "malformed Refer-To") from exc
    uri = address.uri
    if not isinstance(uri, SipURI):
        raise ReferRefused(416, "Refer-To must be a sip: or sips: URI")
    if uri.headers:
        raise ReferRefused(403, "Refer-To with embedded headers is not supported")
    method = (uri.params.get("method") or "INVITE").upper()
    if method not in ("INVITE", "BYE"):
        raise ReferRefused(403, f"REFER with method {method[:20]} is not supported")
    if uri.user is None:
        raise ReferRefused(400, "Refer-To names no user")
    bare = attrs.evolve(uri, params=uri.params.remove("method"))
    return ReferTarget(uri=str(bare), method=method, display_name=address.display_text)


@attrs.frozen
class InviteMember:
    """Dial out to ``target`` on behalf of ``referrer`` (RFC 4579 §5.5)."""

    target: ReferTarget
    referrer: str


@attrs.frozen
class RemoveMember:
    """End the legs of the participant ``target`` with BYE (RFC 4579 §5.11)."""

    target: ReferTarget
    referrer: str


ReferAction = InviteMember | RemoveMember


def decide_refer(
    room: Room,
    *,
    referrer: str,
    target: ReferTarget,
    referrer_is_participant: bool,
    target_is_participant: bool,
) -> ReferAction:
    """What the focus does with an accepted-looking REFER to ``room``.

    INVITE: the referrer must be a participant (or a moderator, who may act without
    being in the room) whom the policy lets invite (``may_invite``: its list and the
    moderators), else 403; a target the room denies, or a closed room, is 403 too —
    a REFER never lets in someone the policy keeps out.  BYE: only moderators (403
    otherwise), and only for someone in the room (404).
    """
    moderator = is_moderator(room, referrer)
    if target.method == "BYE":
        if not moderator:
            raise ReferRefused(403, "only moderators may remove participants")
        if not target_is_participant:
            raise ReferRefused(404, "no such participant in the room")
        return RemoveMember(target, referrer)
    if not (referrer_is_participant or moderator):
        raise ReferRefused(403, "only participants may invite")
    if not may_invite(room, referrer):
        raise ReferRefused(403, "the room policy does not let you invite")
    if not room.settings.enabled:
        raise ReferRefused(403, "the room is closed")
    if _denied(room, target.uri):
        raise ReferRefused(403, "the target is denied by the room policy")
    return InviteMember(target, referrer)


def _denied(room: Room, uri: str) -> bool:
    try:
        who = Identity.parse(uri)
    except PolicyError:
        return True  # not an identity the policy can reason about: keep it out
    return any(pattern.matches(who) for pattern in room.settings.deny)


def sipfrag(status: int, reason: str) -> bytes:
    """A message/sipfrag body that is one SIP Status-Line (RFC 3515 §2.4.5)."""
    if not 100 <= status <= 699:
        raise ValueError("a SIP status is 100..699")
    text = "".join(c if " " <= c <= "~" else "?" for c in reason)[:100] or "Unknown"
    return f"SIP/2.0 {status} {text}\r\n".encode("ascii")


@attrs.frozen
class ReferNotify:
    """One NOTIFY of a refer subscription: header values and body."""

    event: str
    subscription_state: str
    body: bytes
    content_type: str = SIPFRAG

    @property
    def final(self) -> bool:
        return self.subscription_state.startswith("terminated")

    def headers(self) -> list[tuple[str, object]]:
        return [("Event", self.event), ("Subscription-State", self.subscription_state)]


def refer_notify(
    status: int, reason: str, *, cseq: int, expires: int = DEFAULT_REFER_EXPIRES
) -> ReferNotify:
    """The NOTIFY reporting ``status`` of the referenced request (RFC 3515 §2.4.4-§2.4.7):
    a provisional status keeps the subscription ``active;expires=…``, a final one ends it
    with ``terminated;reason=noresource``.  ``cseq`` is the REFER's CSeq number."""
    state = "terminated;reason=noresource" if status >= 200 else f"active;expires={expires}"
    return ReferNotify(
        event=f"{REFER_EVENT};id={cseq}",
        subscription_state=state,
        body=sipfrag(status, reason),
    )
