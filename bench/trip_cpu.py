"""The SQLite store's settle-and-claim trip alone, as a worker's store thread makes it: no
event loop, no task. A fresh file with `--jobs` no-op jobs; then trips of `--batch` (the
peer harness's worker: 10 slots, ~15 a trip): settle the previous trip's jobs as Complete
(each with its attempt record, as a worker with history on sends them) and claim as many,
until the queue is empty. CPU µs per job (time.process_time), trees interleaved in child
processes, each round's order flipped, medians; `--profile N`: one run under cProfile.

    .venv/bin/python bench/trip_cpu.py --rounds 6 --base /tmp/base/src
    .venv/bin/python bench/trip_cpu.py --queues default      # a worker that names its queue

Figures only: it asserts nothing. Trees older than settle_and_claim are not supported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def drain(path: str, jobs: int, batch: int, queues: list[str] | None,
          profile: int = 0) -> float:
    from conveyor import Conveyor, Settings
    from conveyor.history.records import AttemptRecord
    from conveyor.store.base import ClaimAsk, Complete, drive_inline

    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", log_level="CRITICAL"),
                   auto_migrate=True)

    @app.task(name="noop")
    async def noop(ctx: object, payload: dict[str, int]) -> None:
        return None

    for start in range(0, jobs, 1000):
        app.enqueue_many([("noop", {"n": n}) for n in range(start, min(jobs, start + 1000))])
    store = app.store
    ask = ClaimAsk(tuple(queues) if queues else None, "bench-trip", batch, 60.0)
    history = app.settings.history

    def run() -> int:
        done, held = 0, []
        while True:
            now = time.time()
            items = [Complete(job.lease, None, AttemptRecord(
                job.task, job.queue, job.tenant, job.attempt, now - 0.001, now, "bench-trip",
                "host", 1, None, 1 << 20) if history else None) for job in held]
            answer = drive_inline(store.settle_and_claim(items, ask))
            done += len(items)
            held = answer.jobs
            if not held:
                return done

    try:
        cpu = time.process_time()
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            done = profiler.runcall(run)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
        else:
            done = run()
        cpu = time.process_time() - cpu
        assert done == jobs, (done, jobs)
        return cpu / jobs * 1e6
    finally:
        app.close()


def child(src: str, args: argparse.Namespace) -> float:
    done = subprocess.run([sys.executable, __file__, "--child", "--jobs", str(args.jobs),
                           "--batch", str(args.batch), *(["--queues", *args.queues]
                                                        if args.queues else [])],
                          check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": src})
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=15)
    parser.add_argument("--queues", nargs="*", help="the claim's queues (default: every)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--base", help="another tree's src/ to time too, interleaved")
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.child or args.profile:
            print(drain(os.path.join(folder, "trip.db"), args.jobs, args.batch, args.queues,
                        args.profile))
            return
    trees = {"this": str(ROOT / "src")} | ({"base": args.base} if args.base else {})
    figures: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        for name in (list(trees) if round_ % 2 == 0 else list(reversed(trees))):
            figures[name].append(child(trees[name], args))
    print(f"{args.jobs} jobs, trips of {args.batch}, queues {args.queues or 'every'}, "
          f"history {os.environ.get('CONVEYOR_HISTORY', 'default')}: store CPU µs/job")
    for name, runs in figures.items():
        print(f"  {name:>4}: {' '.join(f'{f:.1f}' for f in runs)}  "
              f"median {statistics.median(runs):.1f}")
    if len(trees) == 2:
        ratios = [a / b for a, b in zip(figures["this"], figures["base"], strict=True)]
        print(f"  this/base per round: {' '.join(f'{r:.3f}' for r in ratios)}  "
              f"median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
