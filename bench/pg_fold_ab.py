"""The PostgreSQL history fold, two forms alternated on one backend and one table: the
form before 2026-12-07 (every row taken FOR UPDATE SKIP LOCKED, each rollup grouping every
row) against this tree's FOLD_HISTORY (one advisory lock, the rollups from one grouped
CTE). Each round fills the pending table with `rows` rows (50 per statement, the rescue's
form; one in ten a failure with a fingerprint; random durations up to 10 ms), vacuums it,
and folds them with one form or the other (order flipped each round), reading the
backend's CPU from /proc around the fold alone; then, once per form, the WAL of the
statement's writes by EXPLAIN (ANALYZE, WAL). `stored` attempts are folded first.
DROPS="stmt,stmt" (with {schema}) knocks out indexes for both forms alike.

    PYTHONPATH=src .venv/bin/python bench/pg_fold_ab.py 10000 16 100000

Figures only: it asserts nothing. The CPU clock ticks every 10 ms: use >= 10,000 rows.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import statistics
import sys
import time
from typing import Any

import orjson
import psycopg

PG = "postgresql://postgres@127.0.0.1:5432/test"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rows_of(count: int, first: int, now: float) -> list[tuple[Any, ...]]:
    """Pending rows (PENDING_COLUMNS) of `count` attempts."""
    rows = []
    for j in range(first, first + count):
        fail = j % 10 == 0
        duration = random.random() * 0.01
        rows.append((f"01JOB{j:020d}", 1, "work", "default", None, "w-1234", "host", 4242,
                     now, now + duration, duration, "dead" if fail else "completed",
                     "ValueError" if fail else None, "x" if fail else None,
                     "Traceback..." if fail else None, None, "a" * 16 if fail else None,
                     0.0005, 80_000_000, 3))
    return rows


def old_fold() -> str:
    from conveyor.store.history_fold_sql import fold_statements

    pending = "{schema}.conveyor_attempts_pending"
    a, r, w, e, ar, ae = fold_statements("a", lambda x: f"floor({x})::int8")
    return (f"WITH a AS (DELETE FROM {pending} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {pending} LIMIT %(limit)s FOR UPDATE SKIP LOCKED)) RETURNING *),\n"
            f"attempts AS ({a}),\nrollups AS ({r}),\nworkers AS ({w}),\n"
            f"errors AS ({e}),\nall_rollups AS ({ar}),\n"
            f"all_errors AS ({ae})\nSELECT count(*) FROM a")


def wal_of(lines: list[str]) -> tuple[int, int]:
    """(records, bytes) of every writing node (each CTE's Insert or Delete)."""
    records = size = 0
    take = False
    for line in lines:
        if "->  Delete on" in line or "->  Insert on" in line:
            take = True
        elif take and line.strip().startswith("WAL:"):
            parts = dict(x.split("=") for x in line.strip()[4:].split())
            records += int(parts["records"])
            size += int(parts["bytes"])
            take = False
    return records, size


def main() -> None:
    from conveyor.store.base import open_store
    from conveyor.store.postgres import history, history_fold

    per_fold, rounds, stored = (int(x) for x in sys.argv[1:4])
    schema = "fold_ab_" + secrets.token_hex(4)
    url = f"{PG}?schema={schema}"

    async def migrate() -> None:
        store = open_store(url)
        await store.open()
        await store.migrate()
        await store.close()

    asyncio.run(migrate())

    def render(template: str) -> str:
        return template.replace("{schema}", schema)

    conn = psycopg.connect(PG, autocommit=True)
    try:
        for drop in filter(None, os.environ.get("DROPS", "").split(",")):
            conn.execute(render(drop))
        pid = conn.info.backend_pid
        insert = render(history.RECORD_LOST)
        forms = {"FOR UPDATE form": render(old_fold()),
                 "this tree": render(history_fold.FOLD_HISTORY)}
        made = 0

        def fill(count: int) -> None:
            nonlocal made
            for start in range(0, count, 50):
                rows = rows_of(min(50, count - start), made, time.time())
                conn.execute(insert, {"rows": orjson.dumps(rows).decode()})
                made += len(rows)

        while made < stored:
            fill(min(10_000, stored - made))
            conn.execute(forms["this tree"], {"limit": 100_000})
        conn.execute(render("VACUUM ANALYZE {schema}.conveyor_attempts"))
        got: dict[str, list[float]] = {name: [] for name in forms}
        for r in range(rounds):
            for name in list(forms)[:: 1 if r % 2 == 0 else -1]:
                fill(per_fold)
                conn.execute(render("VACUUM {schema}.conveyor_attempts_pending"))
                before = cpu_seconds(pid)
                [(moved,)] = conn.execute(forms[name], {"limit": 100_000}).fetchall()
                got[name].append((cpu_seconds(pid) - before) / moved * 1e6)
        for name, sql in forms.items():
            fill(per_fold)
            cursor = conn.execute("EXPLAIN (ANALYZE, WAL) " + sql, {"limit": 100_000})
            records, size = wal_of([row[0] for row in cursor.fetchall()])
            each = ", ".join(f"{x:.1f}" for x in got[name])
            print(f"{name}: fold backend CPU µs/row median {statistics.median(got[name]):.2f}, "
                  f"mean {statistics.mean(got[name]):.2f} ({each}); "
                  f"WAL {records / per_fold:.2f} records, {size / per_fold:.0f} bytes per row")
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


if __name__ == "__main__":
    main()
