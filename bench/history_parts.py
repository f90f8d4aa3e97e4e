"""Where history's CPU goes in a SQLite drain: a live worker (worker.run()) drains no-op
jobs (one in ten dead) with history on or off, and the store thread's and the loop thread's
CPU in each part is summed by wrapping it (time.thread_time): the settle and claim
(settle_and_claim, the worker's one trip for both; settle and claim alone), write_history
(the attempt rows' insert, inside the settle), the fold, Tracker.attach and
Tracker.stamp (the peak RSS read per settle trip, where the tree has it). "history parts"
sums write_history, fold, attach and stamp: what history costs the drain on its own.

    PYTHONPATH=src .venv/bin/python bench/history_parts.py on 5000
    PYTHONPATH=src .venv/bin/python bench/history_parts.py off 5000

Figures only: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from history import live_drain

spent: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)


def _timed(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        began = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.thread_time() - began
            calls[key] += 1
    return run


def _timed_async(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> Any:  # driven inline on the store thread
        began = time.thread_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            spent[key] += time.thread_time() - began
            calls[key] += 1
    return run


def main(history: bool, jobs: int) -> None:
    import conveyor.store.sqlite.exchange as sqlite_exchange
    import conveyor.store.sqlite.store as sqlite_store
    from conveyor.store.sqlite.store import SQLiteStore
    from conveyor.worker import tracking

    # the worker settles by settle_and_claim (exchange.py), which calls its own import of
    # write_history: both names are wrapped
    for module in (sqlite_store, sqlite_exchange):
        module.write_history = _timed(module.write_history, "write_history")  # type: ignore[attr-defined]
    for name, key in (("settle", "settle"), ("settle_and_claim", "settle_and_claim"),
                      ("fold_history", "fold"), ("claim", "claim")):
        setattr(SQLiteStore, name, _timed_async(getattr(SQLiteStore, name), key))
    tracking.Tracker.attach = _timed(tracking.Tracker.attach, "attach")  # type: ignore[method-assign]
    if hasattr(tracking.Tracker, "stamp"):  # the peak RSS read once per settle trip
        tracking.Tracker.stamp = _timed(tracking.Tracker.stamp, "stamp")  # type: ignore[method-assign]
    url = f"sqlite:///{tempfile.mkdtemp()}/parts.db"
    app, worker, _ran = live_drain(url, jobs, history)

    async def drain() -> tuple[float, float]:
        cpu, began = time.process_time(), time.perf_counter()
        await worker.run(install_signals=False)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        while await app.store.fold_history(10_000):  # what the drain left: counted apart
            pass
        return elapsed, cpu

    elapsed, cpu = asyncio.run(drain())
    app.close()
    print(f"history {'on' if history else 'off'}: drain wall {elapsed / jobs * 1e6:.1f} "
          f"µs/job, process CPU {cpu / jobs * 1e6:.1f} µs/job")
    for key in sorted(spent):
        print(f"  {key}: {spent[key] / jobs * 1e6:.1f} µs/job ({calls[key]} calls)")
    parts = sum(spent[key] for key in ("write_history", "fold", "attach", "stamp"))
    print(f"  history parts: {parts / jobs * 1e6:.1f} µs/job")


if __name__ == "__main__":
    main(sys.argv[1] == "on", int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
