"""The worker's per-job Python on its event loop alone: no store trip, no thread. A worker
(10 slots, history as configured) is handed `--jobs` claimed no-op jobs in batches of
`--batch` (Slots.hold, as a claim would), each batch run to its end (Slots.join) and its
outcomes taken (Outcomes.take, as a settle trip would, then dropped). What it times is what
every job costs the loop: the slot's task, the context, the executor and its attempt record,
the lifecycle's start and end. CPU µs/job (time.process_time), trees interleaved in child
processes, order flipped each round, medians.

    .venv/bin/python bench/loop_cpu.py --rounds 8 --base /tmp/main/src

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

ROOT = Path(__file__).resolve().parents[1]


def drain(path: str, jobs: int, batch: int) -> float:
    from conveyor import Conveyor, Settings
    from conveyor.job import ClaimedJob

    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", log_level="WARNING"),
                   auto_migrate=True)

    @app.task(name="noop")
    async def noop(ctx: object, payload: dict[str, int]) -> None:
        return None

    worker = app.worker(concurrency=batch, worker_id="bench-loop", maintenance=False)
    now = time.time()
    started = {"starts_at": now} if "starts_at" in ClaimedJob.__dataclass_fields__ else {}
    claimed = [ClaimedJob(f"{n:036d}", "noop", "default", b'{"n": 1}', 1, 3, n, None, None,
                          0, now, None, now, **started) for n in range(jobs)]

    async def run() -> float:
        worker._ensure_loop_state()
        cpu = time.process_time()
        for start in range(0, jobs, batch):
            worker.slots.hold(claimed[start:start + batch])
            await worker.slots.join()
            worker.outcomes.take()
        return (time.process_time() - cpu) / jobs * 1e6

    try:
        return asyncio.run(run())
    finally:
        worker.close()
        app.close()


def child(src: str, args: argparse.Namespace) -> float:
    done = subprocess.run([sys.executable, __file__, "--child", "--jobs", str(args.jobs),
                           "--batch", str(args.batch)], check=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": src})
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--base", action="append", default=[], help="another tree's src/")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            print(drain(os.path.join(folder, "loop.db"), args.jobs, args.batch))
        return
    trees = {"this": str(ROOT / "src")} | {
        "base" + (str(i + 1) if i else ""): src for i, src in enumerate(args.base)}
    figures: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        names = list(trees)[round_ % len(trees):] + list(trees)[:round_ % len(trees)]
        if round_ // len(trees) % 2:
            names.reverse()
        for name in names:
            figures[name].append(child(trees[name], args))
    print(f"{args.jobs} no-op jobs in batches of {args.batch}, the loop alone, history "
          f"{os.environ.get('CONVEYOR_HISTORY', 'default')}: CPU µs/job")
    for name, runs in figures.items():
        ratio = [a / b for a, b in zip(runs, figures["this"], strict=True)]
        print(f"  {name:>5}: {' '.join(f'{f:.2f}' for f in runs)}  median "
              f"{statistics.median(runs):.2f} (x{statistics.median(ratio):.3f} of this)")


if __name__ == "__main__":
    main()
