"""The worker's own CPU per job: one worker (50 slots, or --concurrency) drains a backlog of
no-op jobs on a fresh SQLite file (worker.run until the last job stops it: maintenance on
its own intervals, as in production), and time.process_time across the drain (every thread
of this process: the event loop's, the store's, the heartbeat's) divided by the jobs. Each
round in its own child process; prints each round's figure and the median. With --profile,
one more drain under cProfile, its top functions by own time.

    .venv/bin/python bench/worker_cpu.py --jobs 20000 --rounds 3
    .venv/bin/python bench/worker_cpu.py --jobs 20000 --rounds 0 --profile 25
    .venv/bin/python bench/worker_cpu.py --base /tmp/base/src     # A/B: another tree's src
    .venv/bin/python bench/worker_cpu.py --base /tmp/main/src --base /tmp/base/src  # three
    CONVEYOR_HISTORY=false .venv/bin/python bench/worker_cpu.py --concurrency 10 \
        --base /tmp/base/src     # the harness's slots; the attempt history knocked out

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def drain(path: str, jobs: int, profile: int = 0, concurrency: int = 50
          ) -> tuple[float, float]:
    """CPU µs per job of one drain of `jobs` no-op jobs on a fresh SQLite file: the whole
    process's, and the loop thread's alone (the worker's Python, without the store's)."""
    from conveyor import Conveyor, Settings

    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", log_level="CRITICAL"),
                   auto_migrate=True)

    worker = app.worker(concurrency=concurrency, worker_id="bench-cpu")
    ran = [0]

    @app.task(name="noop")
    async def noop(ctx: object, payload: dict[str, int]) -> None:
        ran[0] += 1
        if ran[0] == jobs:
            worker.stop()

    for start in range(0, jobs, 1000):
        app.enqueue_many([("noop", {"n": n}) for n in range(start, min(jobs, start + 1000))])

    async def run() -> tuple[float, float]:
        cpu, loop_cpu = time.process_time(), time.thread_time()
        await worker.run(install_signals=False)
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        assert ran[0] == jobs, (ran, jobs)
        return cpu / jobs * 1e6, loop_cpu / jobs * 1e6

    try:
        if not profile:
            return asyncio.run(run())
        import cProfile
        import pstats

        try:
            from conveyor.worker import storecalls
        except ImportError:  # an older tree (--base): its store calls go to a thread pool
            storecalls = None  # type: ignore[assignment]

        profiler, in_store = cProfile.Profile(), cProfile.Profile()
        drive = storecalls.drive_inline if storecalls is not None else None

        def profiled_drive(coro: Any) -> Any:  # on the one store thread: its own profile
            return in_store.runcall(drive, coro)

        if storecalls is not None:
            storecalls.drive_inline = profiled_drive
        figure = profiler.runcall(asyncio.run, run())
        print("--- the loop's thread")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
        print("--- the store's thread")
        pstats.Stats(in_store).sort_stats("tottime").print_stats(profile)
        return figure
    finally:
        app.close()


def child(src: str, jobs: int, concurrency: int) -> tuple[float, float]:
    """One drain in a child process on the tree at `src`."""
    done = subprocess.run([sys.executable, __file__, "--child", "--jobs", str(jobs),
                           "--concurrency", str(concurrency)],
                          check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": src})
    process, loop = done.stdout.split()[-2:]
    return float(process), float(loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50,
                        help="the worker's slots (the peer harness runs 10: smaller trips)")
    parser.add_argument("--base", action="append", default=[],
                        help="another tree's src/ to drain with too, interleaved (repeatable: "
                             "base, base2, ...; the trees' order rotates round by round)")
    parser.add_argument("--profile", type=int, default=0, help="show this many functions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.child:
            print(*drain(os.path.join(folder, "drain.db"), args.jobs,
                         concurrency=args.concurrency))
            return
        trees = {"this": str(ROOT / "src")} | {
            "base" + (str(i + 1) if i else ""): src for i, src in enumerate(args.base)}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            shift = round_ % len(trees)
            names = list(trees)[shift:] + list(trees)[:shift]
            if round_ // len(trees) % 2:
                names.reverse()
            for name in names:
                figures[name].append(child(trees[name], args.jobs, args.concurrency))
        print(f"{args.jobs} no-op jobs, one worker of {args.concurrency} slots, SQLite: "
              "CPU µs/job")
        for name, runs in figures.items():
            for which, label in ((0, "process"), (1, "loop thread")):
                column = [run[which] for run in runs]
                if column:
                    print(f"  {name:>5} {label:>11}: {' '.join(f'{f:.1f}' for f in column)}"
                          f"  median {statistics.median(column):.1f}")
        if args.profile:
            figure = drain(os.path.join(folder, "profiled.db"), args.jobs, args.profile,
                           args.concurrency)
            print(f"profiled drain (cProfile on): {figure[0]:.1f} CPU µs/job")


if __name__ == "__main__":
    main()
