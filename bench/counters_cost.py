"""What the job counters (migration 0011) cost: one worker drains a backlog of no-op jobs
(one in ten fails and goes dead) on this tree and on the tree of the commit before the
counters (`--base`, a copy of its src/), in child processes, blocks interleaved in rotating
order: median jobs/s per variant, the drain's overhead, the worker's CPU per job, and on
PostgreSQL the CPU of every postgres process per job (from /proc: the server is shared, so
this one is noisy). Enqueueing is measured too: jobs/s of enqueue_many in batches of 1,000.

    git archive 81d1e33 src | tar -x -C /tmp/base     # the commit before the counters
    .venv/bin/python bench/counters_cost.py --base /tmp/base/src --jobs 5000 --rounds 5

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from history import drop_schema, fresh_url  # the same fresh stores as its drain

ROOT = Path(__file__).resolve().parents[1]



def child(url: str, jobs: int) -> tuple[float, float, float]:
    """(enqueue jobs/s, drain jobs/s, worker CPU µs per job), on the tree on sys.path."""
    from conveyor import Conveyor, Retry, Settings

    settings = Settings.load(url=url, log_level="CRITICAL")
    app = Conveyor(settings=settings, auto_migrate=True)
    app.migrate()

    @app.task(name="work", retry=Retry(attempts=1))
    async def work(ctx: object, payload: dict[str, int]) -> dict[str, object]:
        if payload["n"] % 10 == 0:
            raise ValueError(f"job {payload['n']} failed on purpose")
        return {"n": payload["n"], "ok": True}

    began = time.perf_counter()
    for start in range(0, jobs, 1000):
        app.enqueue_many([("work", {"n": n}) for n in range(start, min(jobs, start + 1000))])
    enqueue_rate = jobs / (time.perf_counter() - began)

    async def drain() -> tuple[float, float]:
        worker = app.worker(concurrency=50, worker_id=f"bench-{secrets.token_hex(3)}")
        cpu, began = time.process_time(), time.perf_counter()
        ran = await worker.run_until_idle()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        worker.close()
        assert ran == jobs, (ran, jobs)
        return jobs / elapsed, cpu / jobs * 1e6

    try:
        return (enqueue_rate, *asyncio.run(drain()))
    finally:
        app.close()


def server_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process (utime + stime, from /proc)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as comm:
                if not comm.read().startswith("postgres"):
                    continue
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def run_child(url: str, jobs: int, source: str) -> tuple[float, float, float, float]:
    code = ("import sys; sys.path.insert(0, 'bench'); import counters_cost; "
            f"print(*counters_cost.child({url!r}, {jobs}))")
    env = {**os.environ, "PYTHONPATH": source}
    server = server_cpu()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=900)
    server = (server_cpu() - server) / jobs * 1e6
    enqueue, rate, cpu = done.stdout.split()[-3:]
    return float(enqueue), float(rate), float(cpu), server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--base", required=True, help="src/ of the commit before the counters")
    args = parser.parse_args()
    sources = {False: args.base, True: str(ROOT / "src")}
    print(f"## Counters' cost: {args.jobs} jobs, one worker (concurrency 50), {args.rounds} "
          f"rounds, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}"
          "\n")
    print("| store | counters | enqueue jobs/s | drain jobs/s (median) | drain runs | "
          "worker CPU µs/job | server CPU µs/job |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
    for kind in args.stores.split(","):
        results: dict[bool, list[tuple[float, float, float, float]]] = {True: [], False: []}
        with tempfile.TemporaryDirectory() as folder:
            for r in range(args.rounds):
                for counters in ([False, True] if r % 2 == 0 else [True, False]):
                    url = fresh_url(kind, folder)
                    try:
                        results[counters].append(run_child(url, args.jobs,
                                                           sources[counters]))
                    finally:
                        drop_schema(url)
        medians = {}
        for counters in (False, True):
            runs = results[counters]
            medians[counters] = [statistics.median(x[i] for x in runs) for i in range(4)]
            enqueue, rate, cpu, server = medians[counters]
            tree = "this tree" if counters else "before"
            print(f"| {kind} | {tree} | {enqueue:.0f} | {rate:.0f} | "
                  f"{', '.join(f'{x[1]:.0f}' for x in runs)} | {cpu:.0f} | "
                  + (f"{server:.0f} |" if kind == "postgres" else "(in the worker) |"))
        off, on = medians[False], medians[True]
        print(f"| {kind} | overhead | {(off[0] / on[0] - 1) * 100:+.1f} % enqueue time | "
              f"{(off[1] / on[1] - 1) * 100:+.1f} % drain time | | {on[2] - off[2]:+.0f} | "
              f"{on[3] - off[3]:+.0f} |")
    print(f"\nuptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
