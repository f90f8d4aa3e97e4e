"""What the job counters (migration 0011) cost the drain: one worker drains a backlog of no-op
jobs (one in ten fails and goes dead), with the counters' triggers in place and with them
dropped, on the same code otherwise (the fold still runs every second, and finds nothing to
do), in child processes, blocks interleaved in rotating order: median jobs/s per variant, the
drain's overhead, the worker's CPU per job, and the database server's CPU per job on
PostgreSQL (from /proc, the backends of the bench's schema only).

Enqueueing is measured too (the insert trigger's share): jobs/s of enqueue_many in 1,000s.

    .venv/bin/python bench/counters_cost.py --jobs 5000 --rounds 5

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

from history import PG, drop_schema, fresh_url  # the same fresh stores as its drain

ROOT = Path(__file__).resolve().parents[1]

DROP_SQLITE = ["DROP TRIGGER conveyor_count_inserted", "DROP TRIGGER conveyor_count_updated",
               "DROP TRIGGER conveyor_count_deleted"]
DROP_PG = [f"DROP TRIGGER conveyor_count_{name} ON {{schema}}.conveyor_jobs"
           for name in ("inserted", "updated", "deleted")]


def child(url: str, jobs: int, counters: bool) -> tuple[float, float, float]:
    """(enqueue jobs/s, drain jobs/s, worker CPU µs per job)."""
    from conveyor import Conveyor, Retry, Settings

    settings = Settings.load(url=url, log_level="CRITICAL")
    app = Conveyor(settings=settings, auto_migrate=True)
    app.migrate()
    if not counters:
        drop_triggers(url)

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


def drop_triggers(url: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in DROP_SQLITE:
                conn.execute(statement)
        return
    import psycopg

    schema = f'"{url.split("schema=")[1]}"'
    with psycopg.connect(PG, autocommit=True) as conn:
        for statement in DROP_PG:
            conn.execute(statement.replace("{schema}", schema))


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


def run_child(url: str, jobs: int, counters: bool) -> tuple[float, float, float, float]:
    code = ("import sys; sys.path.insert(0, 'bench'); import counters_cost; "
            f"print(*counters_cost.child({url!r}, {jobs}, {counters}))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
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
    args = parser.parse_args()
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
                        results[counters].append(run_child(url, args.jobs, counters))
                    finally:
                        drop_schema(url)
        medians = {}
        for counters in (False, True):
            runs = results[counters]
            medians[counters] = [statistics.median(x[i] for x in runs) for i in range(4)]
            enqueue, rate, cpu, server = medians[counters]
            print(f"| {kind} | {'on' if counters else 'off'} | {enqueue:.0f} | {rate:.0f} | "
                  f"{', '.join(f'{x[1]:.0f}' for x in runs)} | {cpu:.0f} | "
                  f"{server:.0f} |" if kind == "postgres" else
                  f"| {kind} | {'on' if counters else 'off'} | {enqueue:.0f} | {rate:.0f} | "
                  f"{', '.join(f'{x[1]:.0f}' for x in runs)} | {cpu:.0f} | (in the worker) |")
        off, on = medians[False], medians[True]
        print(f"| {kind} | overhead | {(off[0] / on[0] - 1) * 100:+.1f} % enqueue time | "
              f"{(off[1] / on[1] - 1) * 100:+.1f} % drain time | | {on[2] - off[2]:+.0f} | "
              f"{on[3] - off[3]:+.0f} |")
    print(f"\nuptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
