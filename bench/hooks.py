"""Per-job cost of lifecycle hooks, task middleware and job logs, against none of them.

    python bench/hooks.py                       # 5,000 jobs per drain, 3 rounds, SQLite file
    python bench/hooks.py --jobs 20000 --rounds 5

Two measures per variant:
- drain: a worker in this process drains N no-op async jobs (enqueued beforehand) on a fresh
  SQLite file; wall time and this process's CPU time per job (the best of the rounds; the
  variants' order rotates each round);
- path: the worker-side calls alone (lifecycle started / ended / written, the middleware
  chain), timed in a loop without the store, so the added µs/job is not lost in its noise.

`--ab ../main/src` instead compares a drain with default settings (INFO logs to a file, as the
CLI worker's) between this tree and another, in alternating subprocesses.

Variants: none; logs (JSON job logs to a file, INFO); hooks (a sync hook on every event and an
async one on "completed", one middleware); all (both).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor import Conveyor, JobContext, Settings
from conveyor.job import ClaimedJob
from conveyor.observability.logs import JsonFormatter
from conveyor.store.base import Complete

if TYPE_CHECKING:
    from conveyor.hooks import HookEvent

VARIANTS = ("none", "logs", "hooks", "all")


def make_app(url: str, variant: str, sample: str) -> Conveyor:
    if variant == "default":  # whatever this source tree does with default settings
        app = Conveyor(url, settings=Settings())
    else:
        app = Conveyor(url, settings=Settings(job_logs=variant in ("logs", "all"),
                                              log_sample=sample))
    if variant in ("hooks", "all"):
        from conveyor.hooks import EVENTS

        seen = [0]

        def count(event: HookEvent) -> None:
            seen[0] += 1

        async def also(event: HookEvent) -> None:
            seen[0] += 1

        for name in EVENTS:
            app.on(name)(count)
        app.on("completed")(also)

        @app.middleware
        async def passthrough(ctx: JobContext, call_next: Any) -> Any:
            return await call_next()

    @app.task
    async def noop(ctx: JobContext, payload: Any) -> None:
        return None

    return app


def log_to(path: Path, on: bool) -> logging.Handler:
    logger = logging.getLogger("conveyor")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if on else logging.WARNING)
    logger.propagate = False
    return handler


def drain(folder: Path, variant: str, jobs: int, sample: str) -> tuple[float, float]:
    """(wall µs per job, CPU µs per job) for one drain."""
    url = f"sqlite:///{folder / f'{variant}-{time.monotonic_ns()}.db'}"
    handler = log_to(folder / f"{variant}.log", variant in ("logs", "all", "default"))
    app = make_app(url, variant, sample)
    for start in range(0, jobs, 1000):
        app.enqueue_many([("noop", {"i": i}) for i in range(start, min(start + 1000, jobs))])
    worker = app.worker(concurrency=50, maintenance=False, worker_id=f"bench-{variant}")
    wall, cpu = time.perf_counter(), time.process_time()
    ran = asyncio.run(worker.run_until_idle())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert ran == jobs, (ran, jobs)
    worker.close()
    app.close()
    handler.close()
    return wall / jobs * 1e6, cpu / jobs * 1e6


def path_cost(folder: Path, variant: str, jobs: int, sample: str) -> float:
    """µs per job of the worker-side calls alone: started, middleware, ended, written."""
    handler = log_to(folder / f"path-{variant}.log", variant in ("logs", "all"))
    app = make_app(f"sqlite:///{folder / 'path.db'}", variant, sample)
    worker = app.worker(concurrency=1, maintenance=False, worker_id="bench-path")
    lifecycle = worker.runner.lifecycle
    hooks = app.hooks

    async def loop() -> float:
        async def task() -> None:
            return None

        began = time.perf_counter()
        for i in range(jobs):
            job = ClaimedJob(id=f"job-{i}", task="noop", queue="default", payload=b"{}",
                             attempt=1, max_attempts=3, token=i)
            ctx = worker.runner.context(job)
            lifecycle.started(job)
            if hooks.middleware:
                await hooks.wrap(ctx, task)
            else:
                await task()
            outcome = Complete(job.lease)
            lifecycle.ended(job, ctx, outcome, 0.001)
            lifecycle.written([outcome], [True])
        await hooks.drain()
        return time.perf_counter() - began

    seconds = asyncio.run(loop())
    worker.close()
    app.close()
    handler.close()
    return seconds / jobs * 1e6


def best(values: Any) -> float:
    """The fastest round: on a shared machine, others' load only ever adds time."""
    return min(values)


def median_by_variant(rounds: int, measure: Callable[[str], Any]) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
        for variant in order:
            results[variant].append(measure(variant))
    return results


def one_drain(jobs: int) -> None:
    """Print `wall cpu` µs/job of one drain with default settings and INFO logging to a file
    (run by --ab under each source tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = drain(Path(tmp), "default", jobs, "")
    print(f"{wall:.2f} {cpu:.2f}")


def ab(other: str, jobs: int, rounds: int) -> None:
    """Default settings, this tree against `other` (a src/ folder): alternating subprocesses,
    the best round of each."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    runs: dict[str, list[tuple[float, float]]] = {here: [], other: []}
    for r in range(rounds):
        for tree in ([here, other] if r % 2 == 0 else [other, here]):
            env = {**os.environ, "PYTHONPATH": tree}
            out = subprocess.run([sys.executable, __file__, "--one-drain", "--jobs", str(jobs)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            wall, cpu = map(float, out.split())
            runs[tree].append((wall, cpu))
    base = runs[other]
    print(f"A/B with default settings (INFO logs to a file), {jobs} jobs, best of {rounds} "
          f"rounds")
    for tree, label in ((other, "before"), (here, "this tree")):
        wall = best(w for w, _ in runs[tree])
        cpu = best(c for _, c in runs[tree])
        print(f"{label:10} {tree}: drain {wall:.1f} µs/job "
              f"({wall / best(w for w, _ in base) - 1:+.1%}), "
              f"CPU {cpu:.1f} µs/job ({cpu / best(c for _, c in base) - 1:+.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", default="all", help="CONVEYOR_LOG_SAMPLE for the logs")
    parser.add_argument("--ab", metavar="SRC", help="compare default settings with another "
                        "source tree's src/ folder (e.g. a checkout of main)")
    parser.add_argument("--one-drain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_drain:
        return one_drain(args.jobs)
    if args.ab:
        return ab(args.ab, args.jobs, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        drains = median_by_variant(args.rounds, lambda v: drain(folder, v, args.jobs, args.sample))
        paths = median_by_variant(args.rounds, lambda v: path_cost(folder, v, args.jobs,
                                                                   args.sample))
    base_wall = best(w for w, _ in drains["none"])
    base_cpu = best(c for _, c in drains["none"])
    base_path = best(paths["none"])
    print(f"jobs per drain: {args.jobs}, rounds: {args.rounds}, log sample: {args.sample} "
          f"(best of the rounds; order rotated)")
    print(f"{'variant':8} {'drain µs/job':>13} {'vs none':>8} {'CPU µs/job':>11} "
          f"{'vs none':>8} {'path µs/job':>12} {'added':>7}")
    for variant in VARIANTS:
        wall = best(w for w, _ in drains[variant])
        cpu = best(c for _, c in drains[variant])
        path = best(paths[variant])
        print(f"{variant:8} {wall:13.1f} {wall / base_wall - 1:+8.1%} {cpu:11.1f} "
              f"{cpu / base_cpu - 1:+8.1%} {path:12.1f} {path - base_path:+7.1f}")


if __name__ == "__main__":
    main()
