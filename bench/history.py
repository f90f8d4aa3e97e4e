"""Attempt history: what tracking costs the drain, and how fast the analytics read.

1. Drain: a worker drains a backlog of no-op jobs (one in ten fails and goes dead), with
   history on and off (CONVEYOR_HISTORY), in child processes, blocks interleaved in rotating
   order; median jobs/s per variant, the drain's overhead, and the worker process's CPU per
   job (the on-off difference is what tracking costs it, SQLite's inserts included there).
2. Tracker: the worker-side cost of building one attempt record (Tracker.attach), alone.
3. Analytics: 1,000,000 attempt rows over 30 days (20 tasks, 8 workers, 5 tenants, 6 % failed
   in 40 error groups, two per task) and their rollups, then each analytics read timed 30
   times: p50 and p95 in ms.

    .venv/bin/python bench/history.py --jobs 5000 --rounds 3 --rows 1000000
    .venv/bin/python bench/history.py --skip-drain --rows 1000000     # the reads only

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[1]


def child(url: str, jobs: int, history: bool) -> tuple[float, float, float, float]:
    """Enqueue `jobs`, drain them with one worker, then fold the attempts the settles left
    pending (what the worker's maintenance does about every second): (jobs/s of the drain,
    worker CPU µs per job in the drain, the fold's wall µs per job, its client CPU µs per
    job). run_until_idle runs no fold, so the drain's figures leave the fold out and the
    fold's are its own; drain + fold is the whole cost."""
    from conveyor import Conveyor, Retry, Settings

    settings = Settings.load(url=url, history=history, log_level="CRITICAL")
    app = Conveyor(settings=settings, auto_migrate=True)

    @app.task(name="work", retry=Retry(attempts=1))
    async def work(ctx: object, payload: dict[str, int]) -> dict[str, object]:
        if payload["n"] % 10 == 0:
            raise ValueError(f"job {payload['n']} failed on purpose")
        return {"n": payload["n"], "ok": True}

    for start in range(0, jobs, 1000):
        app.enqueue_many([("work", {"n": n}) for n in range(start, min(jobs, start + 1000))])

    async def drain() -> tuple[float, float, float, float]:
        worker = app.worker(concurrency=50, worker_id=f"bench-{secrets.token_hex(3)}")
        cpu, began = time.process_time(), time.perf_counter()
        ran = await worker.run_until_idle()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        fold_cpu, fold_began = time.process_time(), time.perf_counter()
        while await app.store.fold_history(10_000):
            pass
        folded = time.perf_counter() - fold_began
        fold_cpu = time.process_time() - fold_cpu
        worker.close()
        assert ran == jobs, (ran, jobs)
        return jobs / elapsed, cpu / jobs * 1e6, folded / jobs * 1e6, fold_cpu / jobs * 1e6

    try:
        return asyncio.run(drain())
    finally:
        app.close()


def live_drain(url: str, jobs: int, history: bool) -> tuple[Any, Any, list[int]]:
    """An app with `jobs` jobs of task work queued (one in ten fails, no retry), a worker of
    50 slots that stops after the last, and the count of jobs run so far."""
    from conveyor import Conveyor, Retry, Settings

    settings = Settings.load(url=url, history=history, log_level="CRITICAL")
    app = Conveyor(settings=settings, auto_migrate=True)
    ran = [0]
    worker = app.worker(concurrency=50, worker_id=f"bench-{secrets.token_hex(3)}")

    @app.task(name="work", retry=Retry(attempts=1))
    async def work(ctx: object, payload: dict[str, int]) -> dict[str, object]:
        ran[0] += 1
        if ran[0] == jobs:
            worker.stop()
        if payload["n"] % 10 == 0:
            raise ValueError(f"job {payload['n']} failed on purpose")
        return {"n": payload["n"], "ok": True}

    for start in range(0, jobs, 1000):
        app.enqueue_many([("work", {"n": n}) for n in range(start, min(jobs, start + 1000))])
    return app, worker, ran


def child_live(url: str, jobs: int, history: bool) -> tuple[float, float, float, float]:
    """The same drain by a live worker (worker.run(): maintenance on its own intervals, so
    the history fold runs about once a second beside the claims, as in production) until
    every job ran; then what is still pending is folded, timed apart. Same figures as
    child(). Works with a checkout that has no fold (its fold figures are then 0)."""
    app, worker, ran = live_drain(url, jobs, history)

    async def drain() -> tuple[float, float, float, float]:
        cpu, began = time.process_time(), time.perf_counter()
        await worker.run(install_signals=False)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        fold = getattr(app.store, "fold_history", None)
        fold_cpu, fold_began = time.process_time(), time.perf_counter()
        while fold is not None and await fold(10_000):
            pass
        folded = time.perf_counter() - fold_began
        fold_cpu = time.process_time() - fold_cpu
        assert ran[0] == jobs, (ran, jobs)
        return jobs / elapsed, cpu / jobs * 1e6, folded / jobs * 1e6, fold_cpu / jobs * 1e6

    try:
        return asyncio.run(drain())
    finally:
        app.close()


def fresh_url(kind: str, folder: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder}/drain-{secrets.token_hex(4)}.db"
    return f"{PG}?schema=bench_{secrets.token_hex(4)}"


def drop_schema(url: str) -> None:
    if "schema=" not in url:
        return
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{url.split("schema=")[1]}" CASCADE')


def run_child(url: str, jobs: int, history: bool, live: bool = False
              ) -> tuple[float, float, float, float]:
    function = "child_live" if live else "child"
    code = ("import sys; sys.path.insert(0, 'bench'); import history; "
            f"print(*history.{function}({url!r}, {jobs}, {history}))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=900)
    rate, cpu, fold, fold_cpu = done.stdout.split()[-4:]
    return float(rate), float(cpu), float(fold), float(fold_cpu)


def drain_bench(kinds: list[str], jobs: int, rounds: int, live: bool = False) -> None:
    """Rounds of one drain with history off and one with it on (order alternating), each in
    a fresh database; the overhead is the median of the rounds' own ratios (a round's two
    drains ran close together, so the machine's load drifts less between them)."""
    how = "worker.run(), maintenance on its intervals" if live else "run_until_idle"
    print(f"## Drain: {jobs} jobs, one worker (concurrency 50, {how}), {rounds} rounds\n")
    print("| store | history | jobs/s (median) | runs | worker CPU µs/job | fold µs/job "
          "(wall, client CPU) |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    for kind in kinds:
        results: dict[bool, list[tuple[float, float, float, float]]] = {True: [], False: []}
        with tempfile.TemporaryDirectory() as folder:
            for r in range(rounds):
                order = [False, True] if r % 2 == 0 else [True, False]
                for history in order:
                    url = fresh_url(kind, folder)
                    try:
                        results[history].append(run_child(url, jobs, history, live))
                    finally:
                        drop_schema(url)
        for history in (False, True):
            runs = results[history]
            print(f"| {kind} | {'on' if history else 'off'} | "
                  f"{statistics.median(x[0] for x in runs):.0f} | "
                  f"{', '.join(f'{x[0]:.0f}' for x in runs)} | "
                  f"{statistics.median(x[1] for x in runs):.0f} | "
                  f"{statistics.median(x[2] for x in runs):.1f}, "
                  f"{statistics.median(x[3] for x in runs):.1f} |")
        pairs = list(zip(results[False], results[True], strict=True))
        drain = [off[0] / on[0] - 1 for off, on in pairs]
        whole = [(1 / on[0] + on[2] / 1e6) / (1 / off[0] + off[2] / 1e6) - 1 for off, on in pairs]
        cpu = [(on[1] + on[3]) - (off[1] + off[3]) for off, on in pairs]
        print(f"| {kind} | overhead | drain time +{statistics.median(drain) * 100:.1f} % "
              f"(rounds: {', '.join(f'{x * 100:+.0f}' for x in drain)}); drain + fold "
              f"+{statistics.median(whole) * 100:.1f} % | | +{statistics.median(cpu):.0f} "
              "µs/job (drain + fold) | |")
    print()


def tracker_bench(n: int = 200_000) -> None:
    from conveyor.codec import Codec
    from conveyor.job import ClaimedJob
    from conveyor.store.base import Complete
    from conveyor.worker.tracking import Meter, Tracker

    tracker = Tracker(Codec(), "bench-worker", "host")
    job = ClaimedJob(id="j", task="work", queue="default", payload=b"{}", attempt=1,
                     max_attempts=3, token=1)
    outcome = Complete(job.lease, b"{}")
    began = time.perf_counter()
    stamp = getattr(tracker, "stamp", lambda: None)  # the peak RSS, once per settle trip
    for i in range(n):
        meter = Meter()
        tracker.attach(job, outcome, 0.0, 0.001, meter)
        if i % 100 == 99:
            stamp()
    per = (time.perf_counter() - began) / n * 1e6
    print(f"## Worker-side tracking CPU\n\nTracker.attach (record + peak RSS per 100 + attach to "
          f"the settle item): {per:.1f} µs per job ({n} runs)\n")


def settle_bench(rounds: int = 3) -> None:
    """The SQLite store's share alone: settle CPU per item, with and without records."""
    print("## The store's share: SQLiteStore.settle CPU per job (median of "
          f"{rounds})\n\n| batch | history off | history on |\n| ---: | ---: | ---: |")
    for size in (50, 5):
        off = sorted(asyncio.run(_settle_cpu(False, size)) for _ in range(rounds))
        on = sorted(asyncio.run(_settle_cpu(True, size)) for _ in range(rounds))
        print(f"| {size} | {off[rounds // 2]:.1f} µs | {on[rounds // 2]:.1f} µs |")
    print()


async def _settle_cpu(track: bool, size: int, jobs: int = 3000) -> float:
    from conveyor.history.records import AttemptRecord
    from conveyor.job import ErrorInfo, NewJob, new_id
    from conveyor.store.base import Complete, Fail, Settle
    from conveyor.store.sqlite.store import SQLiteStore

    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(f"sqlite:///{folder}/settle.db")
        await store.open()
        await store.migrate()
        spent = 0.0
        for _ in range(jobs // size):
            await store.enqueue_many([NewJob(new_id(), "work", "default", b"{}")
                                      for _ in range(size)])
            now, items = time.time(), []
            for i, job in enumerate(await store.claim(None, "w", size, 30)):
                record = AttemptRecord(
                    task=job.task, queue=job.queue, tenant=None, number=1, started_at=now,
                    ended_at=now + 0.001, worker_id="w", host="h", pid=1, cpu=0.0001,
                    rss=1000, fingerprint="a" * 16 if i % 10 == 0 else None) if track else None
                item: Settle = (Fail(job.lease, ErrorInfo(1, "ValueError", "x"), None,
                                     attempt=record) if i % 10 == 0
                                else Complete(job.lease, b'{"n":1}', attempt=record))
                items.append(item)
            began = time.process_time()
            await store.settle(items)
            spent += time.process_time() - began
        await store.close()
    return spent / jobs * 1e6


# --- analytics at scale ------------------------------------------------------------------


def fake_rows(count: int, now: float) -> list[tuple[Any, ...]]:
    from conveyor.history.fingerprint import fingerprint

    rng = random.Random(7)
    tasks = [f"task_{i:02d}" for i in range(20)]
    prints = [fingerprint("ValueError", f"kind {i}", f"tasks.py:f{i}") for i in range(40)]
    rows = []
    for n in range(count):
        ended = now - rng.random() * 30 * 86400
        task = tasks[n % 20]
        duration = rng.lognormvariate(-3, 1.2)
        failed = rng.random() < 0.06
        outcome = ("dead" if rng.random() < 0.3 else "retried") if failed else "completed"
        # a fingerprint holds the top frame of the task's own code: two kinds per task
        fp = prints[(n % 20) * 2 + rng.randrange(2)] if failed else None
        rows.append((f"job-{n}", 1, task, f"q{n % 4}", f"tenant{n % 5}", f"w{n % 8}", "host",
                     100 + n % 8, ended - duration, ended, duration, outcome,
                     "ValueError" if failed else None, "kind" if failed else None, None, None,
                     fp, duration / 2, 80_000_000))
    return rows


async def load(store: Any, rows: list[tuple[Any, ...]]) -> None:
    """The rows as a settle leaves them (pending), then folded by the store's own fold."""
    from conveyor.history.rollup import bucket

    if store.url.startswith("sqlite"):
        from conveyor.store.sqlite.history import _PENDING

        for start in range(0, len(rows), 100_000):
            with store.db.write() as conn:
                conn.executemany(_PENDING, [(*row, bucket(row[10]))
                                            for row in rows[start:start + 100_000]])
            while await store.fold_history(10_000):
                pass
        with store.db.write() as conn:
            conn.execute("ANALYZE")
        return
    import orjson
    import psycopg

    from conveyor.store.postgres.history import RECORD_LOST

    schema = store.target.quoted_schema
    async with (await psycopg.AsyncConnection.connect(PG, autocommit=True) as conn,
                conn.cursor() as cursor):
        for start in range(0, len(rows), 10_000):
            await cursor.execute(RECORD_LOST.replace("{schema}", schema), {
                "rows": orjson.dumps([(*row, bucket(row[10]))
                                      for row in rows[start:start + 10_000]]).decode()})
            while await store.fold_history(10_000):
                pass
        await cursor.execute(f"ANALYZE {schema}.conveyor_attempts")
        for table in ("rollups", "worker_rollups", "error_rollups", "attempts_pending"):
            await cursor.execute(f"VACUUM ANALYZE {schema}.conveyor_{table}")
        await cursor.execute(f"VACUUM {schema}.conveyor_attempts")


async def reads_bench(kind: str, count: int, repeat: int) -> None:
    from conveyor.history.records import TimeRange
    from conveyor.store.base import open_store

    now = time.time()
    with tempfile.TemporaryDirectory() as folder:
        url = fresh_url(kind, folder)
        store = open_store(url)
        await store.open()
        await store.migrate()
        try:
            began = time.perf_counter()
            await load(store, fake_rows(count, now))
            print(f"### {kind}: {count:,} attempt rows loaded in "
                  f"{time.perf_counter() - began:.0f} s\n")
            day, month = TimeRange(now - 86400, now), TimeRange(now - 30 * 86400, now)
            tenant = TimeRange(now - 7 * 86400, now, tenant="tenant3")
            hour = TimeRange(now - 3600, now)
            groups = await store.error_groups(month, 1)
            reads = {
                "tasks 24h": lambda: store.task_analytics(day),
                "tasks 30d": lambda: store.task_analytics(month),
                "tasks 7d, one tenant": lambda: store.task_analytics(tenant),
                "errors 24h": lambda: store.error_groups(day),
                "errors 30d": lambda: store.error_groups(month),
                "errors 7d, one tenant": lambda: store.error_groups(tenant),
                "workers 1h": lambda: store.worker_analytics(hour),
                "workers 24h": lambda: store.worker_analytics(day),
                "slow 24h": lambda: store.slow_attempts(day),
                "slow 30d": lambda: store.slow_attempts(month),
                "slow 7d, one tenant": lambda: store.slow_attempts(tenant),
                "a group's dead jobs": lambda: store.group_dead_jobs(groups[0].fingerprint),
                "a job's attempts": lambda: store.job_attempts("job-4242"),
            }
            print("| read | p50 ms | p95 ms |\n| --- | ---: | ---: |")
            for name, read in reads.items():
                times = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    await read()
                    times.append((time.perf_counter() - t) * 1000)
                times.sort()
                p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
                print(f"| {name} | {statistics.median(times):.1f} | {p95:.1f} |")
            print()
        finally:
            await store.close()
            drop_schema(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--live", action="store_true",
                        help="drain with worker.run() (maintenance folds on its interval) "
                             "rather than run_until_idle (maintenance between claims)")
    args = parser.parse_args()
    kinds = args.stores.split(",")
    print(f"# Attempt history bench ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs)\n")
    if not args.skip_drain:
        drain_bench(kinds, args.jobs, args.rounds, args.live)
        tracker_bench()
        if "sqlite" in kinds:
            settle_bench()
    if not args.skip_reads:
        print(f"## Analytics reads ({args.repeat} runs each)\n")
        for kind in kinds:
            asyncio.run(reads_bench(kind, args.rows, args.repeat))


if __name__ == "__main__":
    main()
