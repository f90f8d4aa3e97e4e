"""Where a worker's store calls run. An inline store (SQLite) would block the loop for each
write, delaying every job's wake-up; its calls go to one thread instead (sqlite3 releases the
GIL while it works). Any other store's are awaited on the loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..store.base import Store, drive_inline

T = TypeVar("T")


class StoreCalls:
    def __init__(self, store: Store) -> None:
        self.thread = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-store")
                       if getattr(store, "inline", False) else None)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a store coroutine; an inline store's runs on the store thread instead."""
        if self.thread is None:
            return await coro
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.thread, drive_inline, coro)
        try:
            return await future
        except asyncio.CancelledError:
            if future.cancelled() and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
                with contextlib.suppress(ValueError):  # the thread took it just now
                    coro.close()  # the store thread never took it: no "never awaited" warning
            raise

    def close(self) -> None:
        if self.thread is not None:
            self.thread.shutdown(wait=True)
