"""What each SQLite durability mode costs: enqueue throughput and latency, and a worker's
claim + settle loop, for CONVEYOR_SQLITE_DURABILITY = normal, auto and full.

    .venv/bin/python bench/sqlite_durability.py                 # in a folder under /work
    .venv/bin/python bench/sqlite_durability.py --jobs 2000 --folder /some/disk

Each mode gets a fresh database file on the same disk (fsync cost is the disk's), in
`--rounds` rounds that take the modes in a rotated order (a shared machine is noisy); each
figure is the median over the rounds. Prints one row per mode and measure; it asserts
nothing. Measures: enqueue one at a time through `app.enqueue` (p50/p95/p99 latency and
jobs/s), `enqueue_many` in batches of 100, and claim + settle in batches of 20 through the
store (a worker's writes without the task bodies).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

from conveyor import Conveyor, Settings
from conveyor.store.base import Complete

MODES = ("normal", "auto", "full")


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


def enqueue_one(app: Conveyor, n: int) -> dict[str, float]:
    latencies = []
    for i in range(n):
        began = time.perf_counter()
        app.enqueue("bench", {"n": i})
        latencies.append(time.perf_counter() - began)
    latencies.sort()
    return {"jobs/s": n / sum(latencies), "p50 ms": percentile(latencies, 0.5) * 1000,
            "p95 ms": percentile(latencies, 0.95) * 1000,
            "p99 ms": percentile(latencies, 0.99) * 1000}


def enqueue_batches(app: Conveyor, n: int, size: int = 100) -> dict[str, float]:
    began = time.perf_counter()
    for start in range(0, n, size):
        app.enqueue_many([("bench", {"n": i}) for i in range(start, min(n, start + size))])
    return {"jobs/s": n / (time.perf_counter() - began)}


def claim_settle(app: Conveyor, batch: int = 20) -> dict[str, float]:
    done, began = 0, time.perf_counter()
    while True:
        jobs = app.call(lambda s: s.claim(None, "bench", batch, 30.0))
        if not jobs:
            break
        app.call(lambda s, jobs=jobs: s.settle([Complete(j.lease) for j in jobs]))
        done += len(jobs)
    return {"jobs/s": done / (time.perf_counter() - began)}


def run_mode(folder: str, mode: str, jobs: int) -> dict[str, dict[str, float]]:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{mode}.db")
    settings = Settings.load(env={}, url=f"sqlite:///{path}", sqlite_durability=mode)
    app = Conveyor(settings=settings)

    @app.task()
    def bench(ctx: Any, payload: Any) -> None:
        return None

    app.migrate()
    figures = {"enqueue one at a time": enqueue_one(app, jobs),
               "enqueue_many (100 a batch)": enqueue_batches(app, jobs * 5),
               "claim + settle (20 a batch)": claim_settle(app)}
    app.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="single enqueues per mode")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every mode")
    parser.add_argument("--folder", default=None, help="where the database files go "
                        "(default: a temporary folder under the working folder)")
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="durability-", dir=os.getcwd())
    runs: dict[str, list[dict[str, dict[str, float]]]] = {mode: [] for mode in MODES}
    try:
        print(f"# SQLite durability modes: {args.jobs} single enqueues, {args.jobs * 5} in "
              f"batches, then every job claimed and settled; median of {args.rounds} "
              f"rounds; files in {folder}", flush=True)
        for round_ in range(args.rounds):
            for mode in MODES[round_ % 3:] + MODES[:round_ % 3]:
                runs[mode].append(run_mode(os.path.join(folder, str(round_)), mode, args.jobs))
        print(f"{'mode':8} {'measure':30} {'jobs/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'p99 ms':>8}")
        for mode in MODES:
            for measure in runs[mode][0]:
                values = {key: statistics.median(run[measure][key] for run in runs[mode])
                          for key in runs[mode][0][measure]}
                cells = [f"{values[k]:8.3f}" if k in values else f"{'':8}"
                         for k in ("p50 ms", "p95 ms", "p99 ms")]
                print(f"{mode:8} {measure:30} {values['jobs/s']:9.0f} {' '.join(cells)}")
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
