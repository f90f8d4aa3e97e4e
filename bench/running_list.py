"""One queue's running jobs on PostgreSQL (issue 16, migration 0024): `?queue=q7&state=running`
and the other readers of the running rows, before and after the migration, on one schema.

Loads N jobs as bench/reads.py does (20 queues; its 0.5 % running under a ghost worker's
lease), then turns completed jobs into running ones (the same ghost, a lease a day ahead)
until `--running` are running, spread over the ids and queues. Migrates with the tree on
PYTHONPATH up to `--before` (default 23), times each read, migrates to the newest, times again:

- list: store.list_jobs(queue=q7, state=running, 51, budget) as the API's first page asks it
  (the budgeted statement), and the same with `after` = the page's last id (the next page);
- rescue (nothing expired, and every lease expired): the rescue's pick (FOR UPDATE SKIP LOCKED
  ... LIMIT 1000), in a transaction rolled back;
- workers: the workers page's running jobs (history_sql.RUNNING_NOW);
- cap: a queue's live leases (the count a queue concurrency cap reads).

p50/p95 ms of --requests each, rounds interleaved by read; plus EXPLAIN (ANALYZE, BUFFERS)
of the list. `--schema NAME --keep` keeps the loaded schema for another run.

    PYTHONPATH=src .venv/bin/python bench/running_list.py --jobs 1000000 --running 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reads import PG, load_postgres, stored_jobs  # noqa: E402

from conveyor.job import JobFilter, JobState  # noqa: E402
from conveyor.store import history_sql  # noqa: E402
from conveyor.store.postgres import queries as q  # noqa: E402
from conveyor.store.postgres.store import PostgresStore  # noqa: E402

MORE_RUNNING = """
UPDATE "{schema}".conveyor_jobs SET state = 'running', worker_id = 'ghost', lease_token = 1,
    lease_expires_at = %(now)s + 86400, finished_at = NULL, dead_reason = NULL
WHERE state = 'completed' AND ('x' || substr(md5(id), 1, 8))::bit(32)::bigint %% 1000
      < %(per_mille)s"""
RESCUE_PICK = """SELECT id FROM "{schema}".conveyor_jobs
    WHERE state = 'running' AND lease_expires_at < %(now)s
    LIMIT 1000 FOR UPDATE SKIP LOCKED"""
CAP = """SELECT count(*) FROM "{schema}".conveyor_jobs AS job
    WHERE job.state = 'running' AND job.queue = %(queue)s AND job.queue <> ''
      AND job.lease_expires_at > %(now)s"""
WHERE = JobFilter(queue="q7", states=(JobState.RUNNING,))
BUDGET = 8 * 1024 * 1024


def fill(schema: str, jobs: int, running: int) -> None:
    load_postgres(f"{PG}?schema={schema}", schema, jobs, 3600)
    with psycopg.connect(PG, autocommit=True) as conn:
        have = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_jobs '
                            "WHERE state = 'running'").fetchone()[0]
        completed = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_jobs '
                                 "WHERE state = 'completed'").fetchone()[0]
        per_mille = round(1000 * max(0, running - have) / completed)
        conn.execute(MORE_RUNNING.replace("{schema}", schema),
                     {"now": time.time(), "per_mille": per_mille})
        conn.execute(f'VACUUM ANALYZE "{schema}".conveyor_jobs')
    # the counters' deltas folded, as a running server's maintenance does (the list's first
    # page asks the counters whether anything matches: unfolded, a scan of every delta row)
    store = PostgresStore(f"{PG}?schema={schema}")

    async def fold() -> None:
        try:
            await store.fold_counts()
        finally:
            await store.close()

    asyncio.run(fold())
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".conveyor_count_deltas')


def timed(call: Any, requests: int) -> list[float]:
    took = []
    for _ in range(requests):
        began = time.perf_counter()
        call()
        took.append((time.perf_counter() - began) * 1000)
    return took


def rolled_back(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(sql, params).fetchall()


def readers(store: PostgresStore, conn: psycopg.Connection, schema: str,
            loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    first = loop.run_until_complete(store.list_jobs(WHERE, None, 51, budget=BUDGET))
    last = first[-1].id if first else None
    now = conn.execute("SELECT date_part('epoch', now())").fetchone()[0]

    def sql(text: str) -> str:
        return text.replace("{schema}", schema).replace('""', '"')

    return {
        "list first page": lambda: loop.run_until_complete(
            store.list_jobs(WHERE, None, 51, budget=BUDGET)),
        "list next page": lambda: loop.run_until_complete(
            store.list_jobs(WHERE, last, 51, budget=BUDGET)),
        "rescue, none expired": lambda: rolled_back(conn, sql(RESCUE_PICK), {"now": now}),
        "rescue, all expired": lambda: rolled_back(conn, sql(RESCUE_PICK),
                                                   {"now": now + 2 * 86400}),
        "workers page running": lambda: conn.execute(
            store.statement(history_sql.RUNNING_NOW), {"tenant": None}).fetchall(),
        "queue cap count": lambda: conn.execute(sql(CAP), {"queue": "q7", "now": now}).fetchall(),
    }


def explain_list(conn: psycopg.Connection, store: PostgresStore) -> str:
    from conveyor.store.postgres.reads import _where

    where_sql, params = _where(WHERE, None, 51)
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + store.statement(
        q.LIST_BUDGETED.replace("{where}", where_sql)), {**params, "budget": BUDGET}).fetchall()
    return "\n".join(row[0] for row in plan)


def time_all(store: PostgresStore, schema: str, requests: int, rounds: int
             ) -> tuple[dict[str, dict[str, float]], str]:
    loop = asyncio.new_event_loop()
    with psycopg.connect(PG, autocommit=True) as conn:
        calls = readers(store, conn, schema, loop)
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(rounds):
            for name, call in calls.items():
                call()  # warm
                samples[name] += timed(call, requests)
        plan = explain_list(conn, store)
    loop.run_until_complete(store.close())
    loop.close()
    figures = {name: {"p50": statistics.median(took),
                      "p95": statistics.quantiles(took, n=20)[18], "n": len(took)}
               for name, took in samples.items()}
    return figures, plan


def migrated(url: str, before: int | None) -> PostgresStore:
    store = PostgresStore(url)
    if before is not None:
        store._migrations = [m for m in store._migrations if m.version <= before]

    async def run() -> None:
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())
    return PostgresStore(url)


def sqlite_run(jobs: int, requests: int, rounds: int) -> dict[str, Any]:
    """The same list on SQLite at `jobs` (reads.py's mix: 0.5 % running): first and next page
    of q7's running jobs, and of a queue with none running (the worst walk of the running
    ids: every running row)."""
    import sqlite3
    import tempfile

    from reads import load_sqlite

    from conveyor.store.sqlite.reads import list_statement
    from conveyor.store.sqlite.store import SQLiteStore

    path = Path(tempfile.mkdtemp(prefix="conveyor-runidx-")) / "jobs.db"
    url = f"sqlite:///{path}"
    store = SQLiteStore(url)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(store.migrate())
    loop.run_until_complete(store.close())
    load_sqlite(path, jobs)
    conn = sqlite3.connect(path)
    running = conn.execute("SELECT count(*) FROM conveyor_jobs WHERE state = 'running' "
                           "AND queue = 'q7'").fetchone()[0]
    conn.execute("UPDATE conveyor_jobs SET queue = 'q-idle' WHERE queue = 'q19' "
                 "AND state <> 'running'")  # a queue with jobs, none of them running
    conn.commit()
    sql, params = list_statement(WHERE, None, 51)
    plan = " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    conn.close()
    store = SQLiteStore(url)
    idle = JobFilter(queue="q-idle", states=(JobState.RUNNING,))
    first = loop.run_until_complete(store.list_jobs(WHERE, None, 51, budget=BUDGET))
    calls = {
        "list first page": lambda: loop.run_until_complete(
            store.list_jobs(WHERE, None, 51, budget=BUDGET)),
        "list next page": lambda: loop.run_until_complete(
            store.list_jobs(WHERE, first[-1].id, 51, budget=BUDGET)),
        "list, queue none running": lambda: loop.run_until_complete(
            store.list_jobs(idle, "ffffffff", 51, budget=BUDGET)),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            call()
            samples[name] += timed(call, requests)
    loop.run_until_complete(store.close())
    figures = {name: {"p50": statistics.median(took),
                      "p95": statistics.quantiles(took, n=20)[18], "n": len(took)}
               for name, took in samples.items()}
    print(f"sqlite, {jobs:,} jobs, q7 running {running}; plan: {plan}")
    for name, fig in figures.items():
        print(f"  {name:26s} p50 {fig['p50']:8.2f} ms  p95 {fig['p95']:8.2f} ms")
    path.unlink()
    return {"jobs": jobs, "q7_running": running, "plan": plan, "figures": figures}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--running", type=int, default=50_000)
    parser.add_argument("--before", type=int, default=23)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schema", default=f"bench_running_{os.getpid()}")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--sqlite", action="store_true", help="time the list on SQLite instead")
    args = parser.parse_args()
    if args.sqlite:
        result = sqlite_run(args.jobs, args.requests, args.rounds)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
        return
    url = f"{PG}?schema={args.schema}"
    migrated(url, args.before)  # the schema, up to --before
    if stored_jobs(args.schema) == 0:
        began = time.perf_counter()
        fill(args.schema, args.jobs, args.running)
        print(f"loaded in {time.perf_counter() - began:.0f} s", flush=True)
    with psycopg.connect(PG, autocommit=True) as conn:
        counts = dict(conn.execute(f'SELECT state, count(*) FROM "{args.schema}".conveyor_jobs '
                                   "GROUP BY 1").fetchall())
        q7 = conn.execute(f'SELECT count(*) FROM "{args.schema}".conveyor_jobs WHERE '
                          "state = 'running' AND queue = 'q7'").fetchone()[0]
    print(f"jobs by state: {counts}; q7 running: {q7}")
    run: dict[str, Any] = {"jobs": sum(counts.values()), "running": counts.get("running"),
                           "q7_running": q7}
    try:
        for label, before in (("before", args.before), ("after", None)):
            store = migrated(url, before)  # (an unopened store: list_jobs opens it)
            figures, plan = time_all(store, args.schema, args.requests, args.rounds)
            run[label] = {"figures": figures, "plan": plan}
            print(f"\n## {label} (schema version {'<= ' + str(before) if before else 'newest'})")
            for name, fig in figures.items():
                print(f"  {name:24s} p50 {fig['p50']:8.2f} ms  p95 {fig['p95']:8.2f} ms")
            print(plan)
    finally:
        if not args.keep:
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))


if __name__ == "__main__":
    main()
