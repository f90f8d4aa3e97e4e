"""Where a SQLite worker's CPU per job goes, every thread counted: one worker (10 slots)
drains `--jobs` no-op jobs on a fresh file (bench/worker_cpu.py's drain) with a cProfile
profiler (on the thread's CPU clock) in each thread (the loop's, the store's, a thread
pool's in old trees), enabled only across worker.run; the threads' stats merged and dumped
(pstats) to `--out` (the loop's thread alone to `--out`.loop). Run it
for two trees and compare with bench/gap_compare.py. Figures only: it asserts nothing.

    PYTHONHASHSEED=0 PYTHONPATH=/tmp/base/src .venv/bin/python bench/gap_profile.py \
        --jobs 4000 --out /tmp/base.prof
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import tempfile
import threading
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--out", help="the merged pstats file (without it: no profilers, "
                        "for a run under valgrind --tool=callgrind)")
    parser.add_argument("--drop-triggers", action="store_true",
                        help="drop every trigger after the migrations (a knock-out: the kept "
                             "counts' triggers; the counts then go wrong, the drain does not)")
    parser.add_argument("--statements", action="store_true",
                        help="no profilers: each SQL statement's thread CPU (time.thread_time "
                             "around execute, its triggers inside), per job, by statement")
    parser.add_argument("--fold", action="store_true",
                        help="after the drain, fold what it left (store.fold_history until "
                             "empty, store.fold_counts: interval work a short drain skips) "
                             "and print that CPU per job apart")
    parser.add_argument("--no-interval-fold", action="store_true",
                        help="maintenance's interval fold of the history off during the drain "
                             "(with --fold every row is folded once after it, in batches of "
                             "10,000: a figure that repeats, where the interval folds' count "
                             "follows the wall clock)")
    parser.add_argument("--drop-index", action="append", default=[],
                        help="drop this index after the migrations (a knock-out; repeatable)")
    args = parser.parse_args()
    profilers: list[cProfile.Profile] = []
    live = [False]
    original = threading.Thread.run

    def run_profiled(thread: threading.Thread) -> None:  # every thread its own profiler
        profiler = cProfile.Profile(time.thread_time)  # CPU, not the waits
        profilers.append(profiler)
        profiler.enable()
        try:
            original(thread)
        finally:
            profiler.disable()

    if args.out:
        threading.Thread.run = run_profiled  # type: ignore[method-assign,assignment]
    spent: dict[str, list[float]] = {}
    if args.statements:
        timing = live  # counted only across worker.run
        import sqlite3

        class Timed(sqlite3.Connection):
            def execute(self, sql: str, *rest: Any) -> sqlite3.Cursor:
                if not timing[0]:
                    return super().execute(sql, *rest)
                start = time.thread_time()
                try:
                    return super().execute(sql, *rest)
                finally:
                    entry = spent.setdefault(" ".join(sql.split())[:70], [0, 0.0])
                    entry[0] += 1
                    entry[1] += time.thread_time() - start

            def executemany(self, sql: str, *rest: Any) -> sqlite3.Cursor:
                if not timing[0]:
                    return super().executemany(sql, *rest)
                start = time.thread_time()
                try:
                    return super().executemany(sql, *rest)
                finally:
                    entry = spent.setdefault(" ".join(sql.split())[:70], [0, 0.0])
                    entry[0] += 1
                    entry[1] += time.thread_time() - start

        connect = sqlite3.connect

        def timed_connect(*a: Any, **k: Any) -> sqlite3.Connection:
            return connect(*a, **k, factory=Timed)

        sqlite3.connect = timed_connect  # type: ignore[assignment]
    from conveyor import Conveyor, Settings

    if args.no_interval_fold:
        from conveyor.worker.maintenance import Maintenance

        async def no_fold(self: Maintenance) -> int:
            return 0

        Maintenance.fold_history = no_fold  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as folder:
        app = Conveyor(settings=Settings.load(url=f"sqlite:///{folder}/gap.db",
                                              log_level="CRITICAL"), auto_migrate=True)
        worker = app.worker(concurrency=args.concurrency, worker_id="bench-gap")
        ran = [0]

        @app.task(name="noop")
        async def noop(ctx: object, payload: dict[str, int]) -> None:
            ran[0] += 1
            if ran[0] == args.jobs:
                worker.stop()

        for start in range(0, args.jobs, 1000):
            app.enqueue_many([("noop", {"n": n})
                              for n in range(start, min(args.jobs, start + 1000))])
        if args.drop_triggers or args.drop_index:
            import sqlite3

            with sqlite3.connect(f"{folder}/gap.db") as db:
                for (name,) in db.execute("SELECT name FROM sqlite_master "
                                          "WHERE type = 'trigger'").fetchall():
                    if args.drop_triggers:
                        db.execute(f'DROP TRIGGER "{name}"')
                for name in args.drop_index:
                    db.execute(f'DROP INDEX "{name}"')
        main_profiler = cProfile.Profile(time.thread_time)

        async def run() -> Any:
            live[0] = True
            await worker.run(install_signals=False)

        cpu = time.process_time()
        if args.out:
            main_profiler.runcall(asyncio.run, run())
        else:
            asyncio.run(run())
        cpu = time.process_time() - cpu
        folds: list[str] = []
        if args.fold:
            from conveyor.store.base import drive_inline

            for name in ("fold_history", "fold_counts"):
                if not hasattr(app.store, name):
                    continue
                spent_fold = time.process_time()
                while drive_inline(getattr(app.store, name)(*(
                        (10_000,) if name == "fold_history" else ()))) >= 10_000:
                    pass
                spent_fold = time.process_time() - spent_fold
                folds.append(f"{name} {spent_fold / args.jobs * 1e6:.1f} CPU µs/job")
        app.close()
    assert ran[0] == args.jobs
    if not args.out:
        print(f"{cpu / args.jobs * 1e6:.1f} CPU µs/job", *folds, sep="; ")
        for sql, (calls, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
            print(f"  {seconds / args.jobs * 1e6:6.2f} µs/job {calls / args.jobs:6.3f} calls/job"
                  f"  {sql}")
        return
    pstats.Stats(main_profiler).dump_stats(args.out + ".loop")  # the loop's thread alone
    stats = pstats.Stats(main_profiler)
    for profiler in profilers:
        with contextlib.suppress(TypeError):  # a thread that profiled nothing
            stats.add(profiler)
    stats.dump_stats(args.out)
    print(f"{cpu / args.jobs * 1e6:.1f} CPU µs/job under cProfile, {len(profilers) + 1} threads")


if __name__ == "__main__":
    os.environ.setdefault("CONVEYOR_LOG_LEVEL", "CRITICAL")
    main()
