"""What the fold costs with and without migration 0028's indexes and all tenants' worker
hours (issue 15): one round of one tree's fold on its own store, run alternately for two
trees by the caller (old and new source trees, same data). Each round inserts `rows` pending
attempts ended over 5 minutes after the last round's (50 tenants, 10 tasks, 20 queues, 4
workers, one in ten failed with one of 7 error groups, as view_reads.py's history), then
folds them all, 10,000 rows a statement, timing the fold alone: PostgreSQL the backend's
CPU (/proc) and wall, running the tree's FOLD_HISTORY on its own connection; SQLite the
process CPU of the store's fold_history.

    PYTHONPATH=<tree>/src .venv/bin/python bench/rollup_fold_ab.py postgres|sqlite NAME ROUND \
        [rows]   # NAME: the store's (schema rollidx_fold_NAME, or /tmp/rollidx_fold_NAME.db)

Prints one JSON line: store, name, round, rows, cpu_ms, wall_ms (per 10,000 rows).
Figures only: it asserts nothing. Drop the schemas and files after.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

PG = "postgresql://postgres@127.0.0.1:5432/test"
T0 = 1_790_000_000.0
_PENDING = """INSERT INTO {schema}conveyor_attempts_pending (job_id, attempt, task, queue,
    tenant, worker_id, host, pid, started_at, ended_at, duration, outcome, error_type,
    error_message, fingerprint, cpu, rss, bucket)
SELECT 'j' || ({first} + n), 1, 'bench.t' || (n % 10), 'q' || (n % 20), 'org-' || (n % 50),
    'w' || (n % 4), 'host', 100 + n % 4, {start} + (n * 300.0 / {rows}) - 0.05,
    {start} + (n * 300.0 / {rows}), 0.05 + (n % 13997) / 1e6,
    CASE WHEN n % 10 = 0 THEN 'dead' ELSE 'completed' END,
    CASE WHEN n % 10 = 0 THEN 'ValueError' END, CASE WHEN n % 10 = 0 THEN 'bad input' END,
    CASE WHEN n % 10 = 0 THEN 'f' || (n % 7) || '0123456789abcde' END, 0.01, 1000000, 6
FROM generate_series(0, {rows} - 1) AS n"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres(name: str, round_: int, rows: int) -> tuple[float, float]:
    import psycopg

    from conveyor.store.postgres.history_fold import FOLD_HISTORY
    from conveyor.store.postgres.store import PostgresStore

    schema = f"rollidx_fold_{name}"
    if round_ == 0:
        store = PostgresStore(f"{PG}?schema={schema}")

        async def migrate() -> None:
            await store.migrate()
            await store.close()

        asyncio.run(migrate())
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(_PENDING.format(schema=f'"{schema}".', first=round_ * rows, rows=rows,
                                     start=T0 + 300 * round_))
        conn.execute(f'VACUUM ANALYZE "{schema}".conveyor_attempts_pending')
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        sql = FOLD_HISTORY.replace("{schema}", f'"{schema}"')
        began, began_cpu, moved = time.perf_counter(), cpu_seconds(pid), 0
        while True:
            row = conn.execute(sql, {"limit": 10_000}).fetchone()
            moved += row[0] if row else 0
            if not row or row[0] < 10_000:
                break
        return cpu_seconds(pid) - began_cpu, time.perf_counter() - began


def sqlite(name: str, round_: int, rows: int) -> tuple[float, float]:
    import sqlite3

    from conveyor.store.sqlite.store import SQLiteStore

    path = f"/tmp/rollidx_fold_{name}.db"
    store = SQLiteStore(f"sqlite:///{path}")

    async def run() -> tuple[float, float]:
        await store.migrate()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(_PENDING.format(schema="", first=round_ * rows, rows=rows,
                                     start=T0 + 300 * round_)
                     .replace(f"FROM generate_series(0, {rows} - 1) AS n",
                              f"FROM (WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 "
                              f"FROM s WHERE n < {rows} - 1) SELECT n FROM s)"))
        conn.close()
        began, began_cpu = time.perf_counter(), time.process_time()
        while await store.fold_history(10_000) >= 10_000:
            pass
        took = time.process_time() - began_cpu, time.perf_counter() - began
        await store.close()
        return took

    return asyncio.run(run())


def main() -> None:
    kind, name, round_ = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 20_000
    cpu, wall = (postgres if kind == "postgres" else sqlite)(name, round_, rows)
    print(json.dumps({"store": kind, "name": name, "round": round_, "rows": rows,
                      "cpu_ms": round(cpu * 1000 * 10_000 / rows, 1),
                      "wall_ms": round(wall * 1000 * 10_000 / rows, 1)}))


if __name__ == "__main__":
    main()
