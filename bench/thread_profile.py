"""A CPU profile of every thread of one SQLite drain (worker_cpu.py's: one worker, 10 slots
or the third argument, `jobs` no-op jobs): a cProfile per thread with the thread's CPU clock
(time.thread_time) as its timer, started in each thread as it first runs Python, merged
into one stats file (the first argument) for pstats. cProfile costs ~1 µs of CPU per Python
call here: compare trees by call counts and by differences, not by totals.

    PYTHONPATH=src .venv/bin/python bench/thread_profile.py /tmp/branch.pstats 20000 10
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/thread_profile.py /tmp/base.pstats

Figures only: it asserts nothing (2026-12-08-sqld.md).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import threading
import time
from typing import Any

profiles: list[tuple[str, cProfile.Profile]] = []
lock = threading.Lock()


def boot(frame: Any, event: str, arg: Any) -> None:
    """threading.setprofile's hook: the thread's own profiler replaces it at once."""
    profiler = cProfile.Profile(time.thread_time)
    with lock:
        profiles.append((threading.current_thread().name, profiler))
    profiler.enable()


def main() -> None:
    out = sys.argv[1]
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    slots = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    from conveyor import Conveyor, Settings

    path = os.path.join(tempfile.mkdtemp(), "profiled.db")
    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", log_level="CRITICAL"),
                   auto_migrate=True)
    worker = app.worker(concurrency=slots, worker_id="bench-cpu")
    ran = [0]

    @app.task(name="noop")
    async def noop(ctx: object, payload: dict[str, int]) -> None:
        ran[0] += 1
        if ran[0] == jobs:
            worker.stop()

    for start in range(0, jobs, 1000):
        app.enqueue_many([("noop", {"n": n}) for n in range(start, min(jobs, start + 1000))])
    threading.setprofile(boot)
    loop_profile = cProfile.Profile(time.thread_time)
    profiles.append(("MainThread", loop_profile))
    cpu = time.process_time()
    loop_profile.enable()
    asyncio.run(worker.run(install_signals=False))
    loop_profile.disable()
    cpu = time.process_time() - cpu
    threading.setprofile(None)  # type: ignore[arg-type]
    app.close()
    merged: pstats.Stats | None = None
    for name, profiler in profiles:
        try:
            stats = pstats.Stats(profiler)
        except TypeError:  # a thread that ran no profiled call
            continue
        print(f"thread {name}: {stats.total_tt / jobs * 1e6:.1f} CPU µs/job (profiled)")
        merged = stats if merged is None else merged.add(stats)
    print(f"process: {cpu / jobs * 1e6:.1f} CPU µs/job (profiled)")
    if merged is not None:
        merged.dump_stats(out)


if __name__ == "__main__":
    main()
