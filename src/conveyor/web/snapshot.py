"""A shared, short-lived copy of a read, for the dashboard overview, the gauges of /metrics,
the queues page and the dead page (not for the API's job lists or a job's page, which are
always read fresh).

    overview = Snapshot(max_age=1.0)
    data, age = await overview.get(tenant, lambda: read_overview(tenant))

- **Never older than `max_age`:** a copy is handed out only while its read began at most
  `max_age` seconds before the request came in; its age (seconds since that read began) goes
  with it, shown on the page and as a metric.
- **Never waiting long on a slow read while a usable copy exists** (`stale` and `wait`, both
  0 by default: off): a request for a copy older than `max_age` but at most `max_age + stale`
  old starts a read (or joins the one under way) and waits for it at most `wait` seconds;
  if the read is not done by then, the request gets the older copy, with its age (the page
  says a newer read is under way), and the read goes on to replace it. A dashboard refreshed
  while the store is busy answers in `wait` plus its rendering, not in the slowest read.
- **Single-flight:** requests that come in while a read of the same key is under way wait
  for that read and share its result: N dashboards refreshing together cost one read.
- A read that fails is not kept: each of its waiters gets the error, the next request reads
  again.
- Keys (a tenant's scope, or None for all tenants) whose copy is too old to be handed out
  (older than `max_age + stale`) are dropped as new copies are made, so the copies held stay
  a handful.
- `changed()` (a change made through this server) keeps the copies for what `max_age`
  allows, but none made before it is handed out past `max_age` any more: the change shows
  within `max_age`, never `max_age + stale`, later.
- `drop()` forgets every copy, and every read under way as a copy to share: a request after
  it reads again (a change made through this server shows at once, web/fresh.py). A read
  that began before the drop still answers its own waiters, but is not kept.

It runs on the server's event loop only (no locks: nothing here awaits between a check and
the write that depends on it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("conveyor.web")


@dataclass(frozen=True, slots=True)
class Copy(Generic[T]):
    value: T
    began: float  # the clock's time when its read began


class Snapshot(Generic[T]):
    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic, *,
                 stale: float = 0.0, wait: float = 0.0) -> None:
        for name, seconds in (("max_age", max_age), ("stale", stale), ("wait", wait)):
            if not seconds >= 0:
                raise ValueError(f"a snapshot's {name} is 0 seconds or more; got {seconds!r}")
        self.max_age = max_age
        self.stale = stale  # seconds past max_age a copy may be handed out while a read runs
        self.wait = wait  # seconds a request with such a copy waits for the read first
        self.clock = clock
        self.copies: dict[Hashable, Copy[T]] = {}
        # reads under way, by key: (the generation they began in, the read)
        self.reading: dict[Hashable, tuple[int, asyncio.Future[Copy[T]]]] = {}
        self.generation = 0  # one more with every drop()
        self.reads = 0  # store reads made (tests, and the dashboard's age line)
        self.changed_at = float("-inf")  # no copy whose read began before it is served stale

    def drop(self) -> None:
        """Forget every copy and the reads under way: the next request of each key reads."""
        self.generation += 1
        self.copies.clear()

    @staticmethod
    async def settle(*snapshots: Snapshot[Any], timeout: float) -> None:
        """Wait up to `timeout` in all for the reads under way of `snapshots` (the server
        stopping: a read that a request no longer waits for must not be cut off holding a
        store connection)."""
        tasks = [task for shared in snapshots for _, task in shared.reading.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def changed(self) -> None:
        """A change was made: copies read before it are served only while `max_age` lasts."""
        self.changed_at = self.clock()

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        """(value, age in seconds): the kept copy if fresh enough, else one read shared by
        every request for `key` that comes in while it runs (a task of its own: a request
        that goes away does not cancel it for the others)."""
        asked = self.clock()
        kept = self.copies.get(key)
        if kept is not None and asked - kept.began <= self.max_age:
            return kept.value, asked - kept.began
        task = self._reading(key, read)
        if (kept is not None and self.stale > 0 and kept.began >= self.changed_at
                and asked - kept.began <= self.max_age + self.stale):
            # a usable older copy: the read's answer if it comes within `wait`, else that copy
            # (asyncio.wait cancels nothing: the read goes on and is kept for the next request)
            await asyncio.wait((task,), timeout=self.wait)
            if not task.done():
                return kept.value, self.clock() - kept.began
        made = await asyncio.shield(task)
        return made.value, self.clock() - made.began

    def _reading(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> asyncio.Future[Copy[T]]:
        """The read of `key` under way since the last drop, or a new one."""
        under_way = self.reading.get(key)
        if under_way is not None and under_way[0] == self.generation:
            return under_way[1]
        task = asyncio.ensure_future(self._read(key, read, self.generation))
        task.add_done_callback(_retrieved)
        self.reading[key] = (self.generation, task)
        return task

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[T]],
                    generation: int) -> Copy[T]:
        began = self.clock()
        self.reads += 1
        try:
            made = Copy(await read(), began)
        finally:
            under_way = self.reading.get(key)
            if under_way is not None and under_way[0] == generation:
                del self.reading[key]
        if generation == self.generation:  # else dropped while it read: it may miss a change
            self._keep(key, made)
        return made

    def _keep(self, key: Hashable, made: Copy[T]) -> None:
        now = self.clock()
        usable = self.max_age + self.stale
        for old in [k for k, c in self.copies.items() if now - c.began > usable]:
            del self.copies[old]
        if self.max_age > 0:
            self.copies[key] = made


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark a failed read's error as seen, and log it: its waiters got it, but a page served
    an older copy meanwhile did not (there may be no waiter left)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("a dashboard read failed (pages show their older copy, with its age, "
                    "until a read succeeds): %s", exc)
