"""A sliding-window limiter kept in one process: the HTTP API's enqueue rate
(CONVEYOR_API_ENQUEUE_RATE), counted per token (per tenant for tenant tokens).

It counts as the store's rates do (model.py): at most N accepted jobs in any sliding window of
PERIOD; a batch of n counts n, and is accepted whole or not at all.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """>>> window = SlidingWindow(2, 10.0, clock=lambda: 0.0)
    >>> window.take("acme"), window.take("acme"), window.take("acme")
    (0.0, 0.0, 10.0)
    """

    def __init__(self, rate: int, period: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.period = period
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def take(self, key: str, count: int = 1) -> float:
        """Record `count` events for `key` and return 0.0, or record nothing and return the
        seconds until they would fit (infinity when `count` is over the rate itself)."""
        if count > self.rate:
            return float("inf")
        now = self.clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.period:
            events.popleft()
        over = len(events) + count - self.rate
        if over <= 0:
            events.extend([now] * count)
            return 0.0
        return max(events[over - 1] + self.period - now, 0.001)
