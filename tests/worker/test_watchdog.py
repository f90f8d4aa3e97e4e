"""The lease watchdog: jobs whose lease ran out unrenewed are stopped, by the monotonic clock."""

from __future__ import annotations

from conveyor.job import Lease
from conveyor.worker.watchdog import LeaseWatch


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_renewed_in_time_is_never_expired() -> None:
    ticks = Ticks()
    watch = LeaseWatch(lease=3.0, interval=0.5, monotonic=ticks)
    held = [Lease("a", 1), Lease("b", 1)]
    for _ in range(20):
        assert watch.expired(held) == []
        watch.renewed(ticks.now)
        ticks.now += 1.0


def test_leases_unrenewed_for_a_lease_are_expired_once() -> None:
    ticks = Ticks()
    watch = LeaseWatch(lease=3.0, interval=0.5, monotonic=ticks)
    held = [Lease("a", 1)]
    assert watch.expired(held) == []
    watch.renewed(ticks.now)
    ticks.now += 2.9
    assert watch.expired(held) == []
    ticks.now += 0.2
    assert watch.expired(held) == ["a"]
    watch._stopping.add("a")  # what run() does once it has stopped it
    assert watch.expired(held) == []  # reported once while it winds down
    assert watch.expired([]) == []
    assert "a" not in watch.first_seen


def test_a_lease_first_seen_counts_from_one_interval_earlier() -> None:
    """Claimed after the last renewal: its own lease runs from its claim, which the watchdog
    saw at most one interval late, so it is stopped early rather than late."""
    ticks = Ticks()
    watch = LeaseWatch(lease=3.0, interval=0.5, monotonic=ticks)
    watch.renewed(ticks.now)
    ticks.now += 10.0  # the store has been unreachable since
    assert watch.expired([Lease("new", 7)]) == []
    ticks.now += 2.4
    assert watch.expired([Lease("new", 7)]) == []
    ticks.now += 0.2
    assert watch.expired([Lease("new", 7)]) == ["new"]
