"""What attempt history adds to one settle batch on PostgreSQL, at the store level: the
settle's wall time and client CPU per job with and without attempt records (batches of 50,
one in ten a dead failure, interleaved in rotating blocks), and then, by EXPLAIN (ANALYZE,
BUFFERS, WAL) in a transaction rolled back, the server's time, buffers and WAL of the
history statement of one batch and of the fold of 5,000 pending rows.

    PYTHONPATH=src .venv/bin/python bench/history_trip.py --jobs 5000 --rounds 4

With --settle-ab OLD_ROOT: the settles alone (claims made first), this checkout against
another, history off and on, interleaved, with the backends' CPU (read from /proc):

    PYTHONPATH=src .venv/bin/python bench/history_trip.py --settle-ab /tmp/hist-old \
        --jobs 10000 --batch 10 --rounds 5

backend_cpu_child (a live drain with the backends' CPU) serves bench/history_ab.py.

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from history import PG, drop_schema

BATCH = 50


def items_of(jobs: list[Any], track: bool, now: float) -> list[Any]:
    from conveyor.history.records import AttemptRecord
    from conveyor.job import ErrorInfo
    from conveyor.store.base import Complete, Fail

    items = []
    for i, job in enumerate(jobs):
        record = AttemptRecord(
            task=job.task, queue=job.queue, tenant=None, number=1, started_at=now,
            ended_at=now + 0.001, worker_id="w", host="h", pid=1, cpu=None, rss=80_000_000,
            fingerprint="a" * 16 if i % 10 == 0 else None,
            error_message="x" if i % 10 == 0 else None) if track else None
        items.append(Fail(job.lease, ErrorInfo(1, "ValueError", "x", "Traceback..."), None,
                          attempt=record) if i % 10 == 0
                     else Complete(job.lease, b'{"n":1,"ok":true}', attempt=record))
    return items


async def settle_cost(store: Any, jobs: int, track: bool) -> tuple[float, float]:
    """(settle wall µs per job, settle client CPU µs per job) over `jobs` jobs."""
    from conveyor.job import NewJob, new_id

    for start in range(0, jobs, 1000):
        await store.enqueue_many([NewJob(new_id(), "work", "default", b"{}")
                                  for _ in range(min(1000, jobs - start))])
    wall = cpu = 0.0
    while claimed := await store.claim(None, "w", BATCH, 30):
        items = items_of(claimed, track, time.time())
        c, w = time.process_time(), time.perf_counter()
        await store.settle(items)
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
    return wall / jobs * 1e6, cpu / jobs * 1e6


async def explain(store: Any, sql: str, params: dict[str, Any]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS, WAL) of `sql` in a transaction rolled back: the top
    node's time, and the buffers and WAL of the whole statement."""
    async with store.pools.connection() as conn:
        await conn.execute("BEGIN")
        cursor = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + sql, params)
        lines = [r[0] for r in await cursor.fetchall()]
        await conn.execute("ROLLBACK")
    wal = [line.strip() for line in lines if line.strip().startswith("WAL:")][:1]
    timing = [line.strip() for line in lines if "Execution Time" in line]
    return "; ".join(wal + timing)


async def statement_costs(store: Any) -> None:
    """The history statement of one batch of 50 (the no-join form, as the rescue's), and the
    fold of 5,000 pending rows."""
    import orjson

    from conveyor.history.rollup import bucket
    from conveyor.store.history_rows import attempt_rows
    from conveyor.store.postgres import history, history_fold

    now = time.time()

    class Fake:
        def __init__(self, n: int) -> None:
            from conveyor.job import Lease
            self.lease, self.task, self.queue = Lease(f"job-{n}", 1), "work", "default"

    items = items_of([Fake(n) for n in range(BATCH)], True, now)
    rows = [(*row, bucket(row[10])) for row in attempt_rows(items)]
    for name, sql in pending_forms(history).items():
        params = {"rows": orjson.dumps(rows).decode()}
        print(f"- settle's history rows, {BATCH} rows, {name}: "
              f"{await explain(store, store.statement(sql), params)}")
    fill = store.statement(history.RECORD_LOST)
    await store._count(fill, {"rows": orjson.dumps(rows * (5000 // BATCH)).decode()})
    print(f"- fold of 5,000 pending rows: "
          f"{await explain(store, store.statement(history_fold.FOLD_HISTORY), {'limit': 10_000})}")


def pending_forms(history: Any) -> dict[str, str]:
    forms = {"as shipped (RECORD_LOST: no join)": history.RECORD_LOST}
    extra = getattr(history, "BENCH_FORMS", {})
    forms.update(extra)
    return forms


async def one_round(jobs: int, track: bool) -> tuple[float, float]:
    from conveyor.store.base import open_store

    url = f"{PG}?schema=bench_{secrets.token_hex(4)}"
    store = open_store(url)
    await store.open()
    try:
        await store.migrate()
        return await settle_cost(store, jobs, track)
    finally:
        await store.close()
        drop_schema(url)


async def main_async(jobs: int, rounds: int) -> None:
    from conveyor.store.base import open_store

    got: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(rounds):
        for track in ((False, True) if r % 2 == 0 else (True, False)):
            got[track].append(await one_round(jobs, track))
    print(f"## PostgreSQL settle, batches of {BATCH}, {jobs} jobs, {rounds} rounds\n")
    print("| history | settle wall µs/job | settle client CPU µs/job |\n| --- | ---: | ---: |")
    for track in (False, True):
        print(f"| {'on' if track else 'off'} | "
              f"{statistics.median(x[0] for x in got[track]):.1f} | "
              f"{statistics.median(x[1] for x in got[track]):.1f} |")
    print("\n## Server cost (EXPLAIN ANALYZE, BUFFERS, WAL; rolled back)\n")
    url = f"{PG}?schema=bench_{secrets.token_hex(4)}"
    store = open_store(url)
    await store.open()
    try:
        await store.migrate()
        await statement_costs(store)
    finally:
        await store.close()
        drop_schema(url)


def backend_cpu_child(url: str, jobs: int, history: bool) -> tuple[float, ...]:
    """history.child_live with the CPU seconds of every PostgreSQL backend its connections
    used (read from /proc before the pools close): (jobs/s, worker CPU µs/job, fold µs/job,
    fold client CPU µs/job, server CPU µs/job). Run in a child process of its own."""
    import psycopg
    from history import child_live

    pids: set[int] = set()
    original = psycopg.AsyncConnection.connect.__func__  # type: ignore[attr-defined]

    async def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = await original(cls, *args, **kwargs)
        pids.add(conn.info.backend_pid)
        return conn

    psycopg.AsyncConnection.connect = classmethod(connect)  # type: ignore[assignment]
    from conveyor import app as app_module

    close, spent = app_module.Conveyor.close, [0.0]

    def close_counting(self: Any) -> None:
        spent[0] = sum(backend_cpu(pid) for pid in pids)
        close(self)

    app_module.Conveyor.close = close_counting  # type: ignore[method-assign]
    parts(os.environ.get("BENCH_PARTS", ""))
    result = child_live(url, jobs, history)
    return (*result, spent[0] / jobs * 1e6)


def settle_child(url: str, jobs: int, batch: int, track: bool, analyze: bool = False
                 ) -> tuple[float, float, float]:
    """Settle `jobs` claimed jobs in batches of `batch` (records on or off), the claims made
    first (`analyze`: then the jobs table analyzed, as autovacuum would in time): (settle
    wall, client CPU, backends' CPU) in µs per job, the settles alone. Run in a child process
    of its own, on whichever checkout's sources are on its path."""
    import psycopg

    pids: set[int] = set()
    original = psycopg.AsyncConnection.connect.__func__  # type: ignore[attr-defined]

    async def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = await original(cls, *args, **kwargs)
        pids.add(conn.info.backend_pid)
        return conn

    psycopg.AsyncConnection.connect = classmethod(connect)  # type: ignore[assignment]

    async def run() -> tuple[float, float, float]:
        from conveyor.job import NewJob, new_id
        from conveyor.store.base import open_store

        store = open_store(url)
        await store.open()
        try:
            await store.migrate()
            for start in range(0, jobs, 1000):
                await store.enqueue_many([NewJob(new_id(), "work", "default", b"{}")
                                          for _ in range(min(1000, jobs - start))])
            claimed = []
            while more := await store.claim(None, "w", batch, 300):
                claimed.append(items_of(more, track, time.time()))
            if analyze:
                await store._count("ANALYZE {schema}.conveyor_jobs", {})
            server = sum(backend_cpu(pid) for pid in pids)
            cpu, wall = time.process_time(), time.perf_counter()
            for items in claimed:
                await store.settle(items)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            server = sum(backend_cpu(pid) for pid in pids) - server
        finally:
            await store.close()
        return wall / jobs * 1e6, cpu / jobs * 1e6, server / jobs * 1e6

    return asyncio.run(run())


def settle_ab(old: str, jobs: int, batch: int, rounds: int, analyze: bool) -> None:
    """The settles alone, old checkout against this one, history off and on, interleaved
    round by round in rotating order: medians in µs per job."""
    import subprocess
    import sys

    roots = {"old": old, "new": str(Path(__file__).resolve().parents[1])}
    variants = [(code, track) for code in ("old", "new") for track in (False, True)]
    got: dict[tuple[str, bool], list[list[float]]] = {v: [] for v in variants}
    for r in range(rounds):
        for code, track in variants[r % 4:] + variants[:r % 4]:
            url = f"{PG}?schema=bench_{secrets.token_hex(4)}"
            run = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                   f"import history_trip as t; print(*t.settle_child({url!r}, {jobs}, "
                   f"{batch}, {track}, {analyze}))")
            try:
                done = subprocess.run([sys.executable, "-c", run], check=True, text=True,
                                      capture_output=True, timeout=900,
                                      env={**os.environ, "PYTHONPATH": roots[code] + "/src"})
            finally:
                drop_schema(url)
            got[code, track].append([float(x) for x in done.stdout.split()[-3:]])
    print(f"## PostgreSQL settles alone: {jobs} jobs in batches of {batch}, {rounds} rounds, "
          f"jobs table {'analyzed' if analyze else 'fresh (no statistics)'}\n")
    print("| checkout | history | settle wall µs/job | client CPU µs/job | backends' CPU µs/job |")
    print("| --- | --- | ---: | ---: | ---: |")
    for code, track in variants:
        print(f"| {code} | {'on' if track else 'off'} | " + " | ".join(
            f"{statistics.median(x[i] for x in got[code, track]):.1f}" for i in range(3)) + " |")
    print()


def parts(which: str) -> None:
    """Leave parts of history out, to split its cost: `nofold` (the settles' share alone:
    nothing folded), `nowrite` (the worker's records alone: the settle writes none),
    `foldafter` (none folded during the drain, all of it after), `unlogged` (the pending
    table UNLOGGED: a figure, never to ship, as it loses pending history on a crash)."""
    from conveyor.store.postgres import store

    async def no_fold(self: Any, limit: int = 0) -> int:
        return 0

    if "nofold" in which:
        store.PostgresStore.fold_history = no_fold  # type: ignore[method-assign]
    if "foldafter" in which:  # maintenance folds nothing: it is all folded after the drain
        from conveyor.worker.maintenance import Maintenance

        Maintenance.fold_history = no_fold  # type: ignore[assignment,method-assign]
    if "unlogged" in which:  # a figure only: the pending rows would not survive a crash
        migrate = store.PostgresStore.migrate

        async def migrate_unlogged(self: Any) -> int:
            applied: int = await migrate(self)
            await self._count("ALTER TABLE {schema}.conveyor_attempts_pending SET UNLOGGED", {})
            return applied

        store.PostgresStore.migrate = migrate_unlogged  # type: ignore[method-assign]
    if "nowrite" in which:
        store.settled_rows = lambda items: None


def backend_cpu(pid: int) -> float:
    """A live process's user + system CPU seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--settle-ab", metavar="OLD_ROOT",
                        help="only the settles, this checkout against the one at OLD_ROOT")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--analyze", action="store_true",
                        help="--settle-ab: ANALYZE the jobs table before the settles")
    args = parser.parse_args()
    if args.settle_ab:
        settle_ab(args.settle_ab, args.jobs, args.batch, args.rounds, args.analyze)
    else:
        asyncio.run(main_async(args.jobs, args.rounds))


if __name__ == "__main__":
    main()
