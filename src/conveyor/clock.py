"""Injected time. Production code asks a Clock; tests advance a FakeClock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time in epoch seconds."""
        ...

    def store_now(self) -> float | None:
        """What to pass to the store as `now`: None lets the database's clock decide."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def store_now(self) -> float | None:
        return None


class FakeClock:
    """A clock that only moves when told to.

    >>> clock = FakeClock(1_000.0)
    >>> clock.advance(30); clock.now()
    1030.0
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def store_now(self) -> float | None:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when
