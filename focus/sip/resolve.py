"""Locating the next hop (RFC 3263 basics), with the DNS itself left to an adapter.

:func:`plan_resolution` applies RFC 3263 §4.1 (transport) and §4.2 (port, SRV or A)
to a URI.  An IP literal gives a :class:`~focus.sip.transaction.Target` at once;
a host name gives a :class:`Resolve` command that the adapter carries out (SRV then
A records, or A records only when a port is given) and answers with
``UserAgent.resolved(query_id, targets, now)``.  NAPTR (§4.1) is not used: the
transport comes from the ``transport`` parameter, else UDP for ``sip:`` and TLS for
``sips:`` — the RFC's own fallback when NAPTR records are absent.

:func:`order_srv` sorts SRV records by priority and weight (RFC 2782) with an
injected random source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from .errors import UnsupportedScheme
from .transaction import Target
from .uri import URI, SipURI

__all__ = ["Resolve", "SrvRecord", "order_srv", "plan_resolution", "srv_name"]


@attrs.frozen
class Resolve:
    """Ask the adapter to resolve ``host``: SRV ``srv_name(transport, host)`` first when
    ``use_srv`` (then A/AAAA of each SRV target), else A/AAAA with ``port``."""

    query_id: int
    host: str
    transport: str
    port: int
    use_srv: bool


@attrs.frozen
class SrvRecord:
    """One SRV answer (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


def srv_name(transport: str, host: str) -> str:
    """RFC 3263 §4.2: _sips._tcp for TLS, _sip._tcp for TCP, _sip._udp for UDP."""
    t = transport.upper()
    if t == "TLS":
        return f"_sips._tcp.{host}"
    return f"_sip._{t.lower()}.{host}"


def plan_resolution(uri: URI, default_transport: str | None = None) -> Target | Resolve:
    """RFC 3263 §4.1/§4.2 for ``uri`` (maddr wins over host, §18.1.1/§19.1.1).

    The query id of a returned :class:`Resolve` is 0; the caller numbers it."""
    if not isinstance(uri, SipURI):
        raise UnsupportedScheme(f"cannot route to {uri.scheme}: URIs")
    host = uri.maddr or uri.host
    if uri.transport:
        transport = uri.transport.upper()
    elif uri.secure:
        transport = "TLS"
    else:
        transport = (default_transport or "UDP").upper()
    if uri.secure and transport == "TCP":
        transport = "TLS"
    default_port = 5061 if transport == "TLS" else 5060
    literal = attrs.evolve(uri, host=host).host_is_ip
    if literal:
        return Target(transport, host.strip("[]"), uri.port or default_port)
    if uri.port is not None:
        return Resolve(0, host, transport, uri.port, use_srv=False)
    return Resolve(0, host, transport, default_port, use_srv=True)


def order_srv(records: Sequence[SrvRecord], random: Callable[[int], bytes]) -> list[SrvRecord]:
    """RFC 2782 ordering: ascending priority; within one priority a weighted random
    order (weight 0 records get a small chance)."""
    out: list[SrvRecord] = []
    for prio in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == prio]
        while group:
            total = sum(r.weight for r in group)
            pick = int.from_bytes(random(4), "big") % (total + 1) if total else 0
            running = 0
            for r in sorted(group, key=lambda r: r.weight):
                running += r.weight
                if running >= pick:
                    out.append(r)
                    group.remove(r)
                    break
    return out
