"""The sync door: how sync code (a WSGI view, a script) runs the app's async store.

    door = SyncDoor()
    job = door.run(store, store.get(job_id, None))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .store.base import Store, drive_inline

T = TypeVar("T")


class SyncDoor:
    """Runs the async store from sync code. An inline store (SQLite) never suspends, so its
    coroutines are driven to the end right here: no thread hop, no event loop. Other stores
    run on a private event loop in a background thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, store: Store, coro: Coroutine[Any, Any, T]) -> T:
        if getattr(store, "inline", False):
            return drive_inline(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._portal()).result()

    def _portal(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="conveyor-portal",
                                          daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not loop.is_running():
                loop.close()
