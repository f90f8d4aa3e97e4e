"""The worker's event loop: asyncio with timers that fire on time.

asyncio's epoll selector waits in whole milliseconds, rounded up, so every `asyncio.sleep`
overshoots by up to a millisecond: 5-10 % of a 10 ms job. This selector waits on the epoll
file descriptor with select(), whose timeout has microsecond resolution, then collects the
ready events with a zero-timeout epoll call. Nothing spins.
"""

from __future__ import annotations

import asyncio
import select
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class PreciseEpollSelector(selectors.EpollSelector):
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            epoll_fd = self._selector.fileno()  # type: ignore[attr-defined]
            if epoll_fd < 1024:  # select() cannot watch higher descriptors
                select.select([epoll_fd], [], [], timeout)
                timeout = 0
        return super().select(timeout)


def new_loop() -> asyncio.AbstractEventLoop:
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    return asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the precise loop."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)
