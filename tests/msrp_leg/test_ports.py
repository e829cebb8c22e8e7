"""The port allocator and how passive legs use it."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock

from focus.adapters.msrp_leg import LegConfig, PortAllocator, PortRangeExhausted
from tests.msrp_leg._support import Recorder, config, passive


def test_hands_out_each_port_once_then_reports_exhaustion() -> None:
    """Every port of the inclusive range is handed out once; then PortRangeExhausted."""
    allocator = PortAllocator(5000, 5002)
    assert sorted(allocator.allocate() for _ in range(3)) == [5000, 5001, 5002]
    with pytest.raises(PortRangeExhausted, match="5000 to 5002"):
        allocator.allocate()


def test_released_port_is_reused_last() -> None:
    """A released port comes back, but only after the ports not used recently (round robin)."""
    allocator = PortAllocator(5000, 5002)
    first = allocator.allocate()
    allocator.release(first)
    assert allocator.allocate() == 5001
    assert allocator.allocate() == 5002
    assert allocator.allocate() == first
    allocator.release(5001)
    allocator.release(5001)  # twice is harmless
    assert allocator.in_use == {5000, 5002}


@pytest.mark.parametrize("bounds", [(0, 10), (10, 9), (65535, 65536)])
def test_invalid_ranges_are_refused(bounds: tuple[int, int]) -> None:
    """A range that is empty or outside 1..65535 is a configuration error."""
    with pytest.raises(ValueError, match="port_range"):
        PortAllocator(*bounds)
    with pytest.raises(ValueError, match="port_range"):
        LegConfig(port_range=bounds)


class BusyPorts(MemoryReactorClock):
    """A memory reactor on which some ports are held by another program."""

    def __init__(self, busy: set[int]) -> None:
        super().__init__()
        self.busy = busy

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        if port in self.busy:
            raise CannotListenError(interface, port, OSError("in use"))
        return super().listenTCP(port, factory, backlog, interface)


def test_leg_skips_ports_held_by_others() -> None:
    """A port some other program holds is skipped; the leg listens on the next free one."""
    reactor = BusyPorts({20000, 20001})
    allocator = PortAllocator(20000, 20003)
    leg = passive(reactor, Recorder(), allocator, cfg=config(port_range=(20000, 20003)))
    assert leg.port == 20002
    assert allocator.in_use == {20002}


def test_leg_start_reports_exhaustion() -> None:
    """When no port of the range can be bound, start() raises PortRangeExhausted."""
    reactor = BusyPorts({20000, 20001})
    allocator = PortAllocator(20000, 20001)
    with pytest.raises(PortRangeExhausted):
        passive(reactor, Recorder(), allocator, cfg=config(port_range=(20000, 20001)))
    assert allocator.in_use == frozenset()


def test_legs_get_distinct_ports_until_the_range_is_used_up() -> None:
    """Each passive leg gets its own port; one leg more than ports raises, and an ended
    leg's port becomes available again."""
    reactor = MemoryReactorClock()
    allocator = PortAllocator(20000, 20001)
    cfg = config(port_range=(20000, 20001))
    a = passive(reactor, Recorder(), allocator, "a", cfg)
    b = passive(reactor, Recorder(), allocator, "b", cfg)
    assert {a.port, b.port} == {20000, 20001}
    with pytest.raises(PortRangeExhausted):
        passive(reactor, Recorder(), allocator, "c", cfg)
    a.close()
    c = passive(reactor, Recorder(), allocator, "c", cfg)
    assert c.port == a.port
