"""What the PostgreSQL history fold costs per row, in the server's CPU, with many attempts
stored: a migrated schema gets `stored` attempts (random durations, ended_at rising, one
every `every` seconds, 50 tenants; as history_fold_scale.py does on SQLite) and 2,000
pending rows per fold after them (one in ten failed); the store's fold statement (FOLD_HISTORY, as
the tree at PYTHONPATH renders it) folds 2,000 twice (warm-up), then `folds` times 2,000,
timed: the backend's utime + stime from /proc (the server is on this machine) per row,
and the wall time. The schema is dropped afterwards.

    PYTHONPATH=src .venv/bin/python bench/pg_fold_cpu.py SCHEMA [stored] [every] [folds] \
        [--keys]

(--keys: the pending rows of 10 tasks and 20 queues, not all one: history_fold_scale.py's.)

Figures only: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import psycopg
from slow_read_cpu import backend_cpu

from conveyor.store.postgres.history_fold import FOLD_HISTORY
from conveyor.store.postgres.store import PostgresStore

URL = os.environ.get("BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")

STORED = """
INSERT INTO {schema}.conveyor_attempts (job_id, attempt, task, queue, tenant, worker_id, host,
    pid, started_at, ended_at, duration, outcome, rss)
SELECT 'job-' || i, 1, 'work', 'default', 'org-' || mod(i, 50), 'w', 'h', 1,
       1.7e9 + i * %(every)s, 1.7e9 + i * %(every)s + d, d, 'completed', 5e7
FROM (SELECT i, floor(random() * 4000) / 1e6 AS d
      FROM generate_series(1, %(stored)s) AS i) AS s"""
PENDING_ROWS = """
INSERT INTO {schema}.conveyor_attempts_pending (job_id, attempt, task, queue, tenant,
    worker_id, host, pid, started_at, ended_at, duration, outcome, error_type,
    error_message, error_traceback, fingerprint, rss, bucket)
SELECT 'p-' || n, 1, {task}, {queue}, 'org-' || mod(n, 50), 'w', 'h', 1,
       %(after)s + n * 0.003 - d, %(after)s + n * 0.003, d,
       CASE WHEN mod(n, 10) = 0 THEN 'dead' ELSE 'completed' END,
       CASE WHEN mod(n, 10) = 0 THEN 'ValueError' END, CASE WHEN mod(n, 10) = 0 THEN 'boom' END,
       CASE WHEN mod(n, 10) = 0 THEN 'tb' END,
       CASE WHEN mod(n, 10) = 0 THEN 'abcdef0123456789' END, 5e7, 2
FROM (SELECT n, 0.0001 + floor(random() * 3900) / 1e6 AS d
      FROM generate_series(0, %(pending)s - 1) AS n) AS s"""


KEYS = {False: {"task": "'work'", "queue": "'default'"},
        True: {"task": "'work-' || mod(n, 10)", "queue": "'q' || mod(n, 20)"}}


def main(schema: str, stored: int, every: float, folds: int, keys: bool = False) -> None:
    store = PostgresStore(f"{URL}?schema={schema}")
    asyncio.run(store.migrate())
    asyncio.run(store.close())
    try:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(store.statement(STORED), {"every": every, "stored": stored})
            conn.execute(store.statement(PENDING_ROWS.format_map(KEYS[keys] | {
                "schema": "{schema}"})), {
                "after": 1.7e9 + stored * every + 10, "pending": (folds + 2) * 2000})
            conn.execute(store.statement("VACUUM ANALYZE {schema}.conveyor_attempts"))
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            fold = store.statement(FOLD_HISTORY)
            for _ in range(2):  # warm-up
                conn.execute(fold, {"limit": 2000})
            moved, began, cpu_before = 0, time.perf_counter(), backend_cpu(pid)
            for _ in range(folds):  # /proc counts 10 ms ticks: the folds' sum, per row
                moved += conn.execute(fold, {"limit": 2000}).fetchone()[0]  # type: ignore[index]
            cpu = (backend_cpu(pid) - cpu_before) / moved * 1e6
            wall = (time.perf_counter() - began) / moved * 1e6
        print(f"PostgreSQL fold, {folds} x 2,000, {stored} attempts stored one every {every} "
              f"s: server CPU {cpu:.2f} µs/row, wall {wall:.2f} µs/row", flush=True)
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--keys"]
    main(args[0], int(args[1]) if len(args) > 1 else 500_000,
         float(args[2]) if len(args) > 2 else 0.01,
         int(args[3]) if len(args) > 3 else 6, keys="--keys" in sys.argv)
