"""The stats' durations read on PostgreSQL (issue 16): the old way (fetch the run times of up
to 5,000 jobs completed in the last hour, percentiles in Python) against today's
(queries.DURATION_PERCENTILES: the three percentiles in one statement), interleaved, on
`--jobs` jobs finished a second apart (the last hour holds 3,600 of them, one in ten dead).
First checks that both give the same numbers for several windows and tenants.
Then the same for the stats' rates: the hour's rows per queue, minute, outcome and retried
(`--queues` queues, every minute of the hour) fetched and summed in Python, against
counters.OUTCOMES_ALL (four sums) plus the last two minutes' rows.

    PYTHONPATH=src .venv/bin/python bench/stats_durations.py --jobs 200000 --rounds 300

Prints wall time p50/p95 per read and the client's CPU per read (what the server spends
turning rows into Python objects). Figures only: it asserts nothing but the agreement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from conveyor.store.counting import completed_last_minute, outcomes
from conveyor.store.postgres import counters
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.store import PostgresStore
from conveyor.store.summaries import duration_percentiles

PG = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NOW = 1_800_000_000.0
OLD = """SELECT finished_at - started_at FROM {schema}.conveyor_jobs
WHERE finished_at IS NOT NULL AND finished_at > %(now)s - 3600 AND state = 'completed'
  AND started_at IS NOT NULL AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
ORDER BY finished_at DESC LIMIT 5000"""
FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, tenant, state, payload, created_at,
                                    run_at, started_at, finished_at, priority)
SELECT lpad(n::text, 12, '0'), 't', 'q' || (n %% 7), 'org-' || (n %% 50),
       CASE WHEN n %% 10 = 0 THEN 'dead' ELSE 'completed' END, '\\x7b7d', n, n,
       %(now)s - %(jobs)s + n - random() * 3, %(now)s - %(jobs)s + n, 0
FROM generate_series(1, %(jobs)s) AS n"""

MINUTES = """
INSERT INTO {schema}.conveyor_finished (minute, queue, state, retried, n)
SELECT floor(%(now)s / 60) - m, 'q' || k, s, r, 1 + (m + k) %% 7
FROM generate_series(0, 60) AS m, generate_series(1, %(queues)s) AS k,
     unnest(ARRAY['completed', 'dead']) AS s, unnest(ARRAY[false, true]) AS r"""

Read = Callable[[psycopg.Connection[Any], dict[str, Any]], dict[str, Any]]


def reads(store: PostgresStore) -> dict[str, Read]:
    old_sql, new_sql = store.statement(OLD), store.statement(q.DURATION_PERCENTILES)

    def old(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
        return duration_percentiles([r[0] for r in conn.execute(old_sql, params)])

    def new(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
        [row] = conn.execute(new_sql, params).fetchall()
        return dict(zip(("p50", "p95", "p99"), row, strict=True))

    return {"old": old, "new": new}


def rate_reads(store: PostgresStore) -> dict[str, Read]:
    hour_sql, outcomes_sql = (
        store.statement(counters.FINISHED_ALL),
        store.statement(counters.OUTCOMES_ALL),
    )

    def old(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
        rows = conn.execute(hour_sql, {**params, "window": 3600}).fetchall()
        return {
            "outcomes": outcomes(rows),
            "last minute": sum(completed_last_minute(rows, params["now"]).values()),
        }

    def new(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
        [hour] = conn.execute(outcomes_sql, {**params, "window": 3600}).fetchall()
        rows = conn.execute(hour_sql, {**params, "window": 60}).fetchall()
        return {
            "outcomes": tuple(v or 0 for v in hour),
            "last minute": sum(completed_last_minute(rows, params["now"]).values()),
        }

    return {"old": old, "new": new}


def measure(conn: psycopg.Connection[Any], ways: dict[str, Read], rounds: int) -> None:
    wall: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    params = {"now": NOW, "tenant": None}
    for n in range(rounds):
        for name in sorted(ways, reverse=n % 2 == 1):  # alternate which goes first
            cpu_began, began = time.process_time(), time.perf_counter()
            ways[name](conn, params)
            wall[name].append((time.perf_counter() - began) * 1000)
            cpu[name].append((time.process_time() - cpu_began) * 1000)
    for name in ways:
        took = sorted(wall[name])
        print(
            f"{name}: wall p50 {statistics.median(took):.2f} ms, "
            f"p95 {took[max(0, round(0.95 * len(took)) - 1)]:.2f} ms; "
            f"client CPU p50 {statistics.median(cpu[name]):.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--queues", type=int, default=200)
    args = parser.parse_args()
    schema = f"bench_durations_{secrets.token_hex(4)}"
    store = PostgresStore(f"{PG}?schema={schema}")
    asyncio.run(store.migrate())
    asyncio.run(store.close())
    with psycopg.connect(PG, autocommit=True) as conn:
        try:
            conn.execute(store.statement(FILL), {"now": NOW, "jobs": args.jobs})
            conn.execute(store.statement("VACUUM ANALYZE {schema}.conveyor_jobs"))
            ways = reads(store)
            for tenant in (None, "org-3", "org-77"):
                for now in (NOW, NOW - 1800, NOW - args.jobs / 2, NOW + 3000):
                    params = {"now": now, "tenant": tenant}
                    old, new = ways["old"](conn, params), ways["new"](conn, params)
                    assert old == new, (params, old, new)
            print(f"{args.jobs:,} jobs: old and new agree on 12 windows and tenants")
            print("durations:")
            measure(conn, ways, args.rounds)
            conn.execute(store.statement(MINUTES), {"now": NOW, "queues": args.queues})
            conn.execute(store.statement("ANALYZE {schema}.conveyor_finished"))
            rates = rate_reads(store)
            for now in (NOW, NOW + 20, NOW - 1800):
                params = {"now": now, "tenant": None}
                old, new = rates["old"](conn, params), rates["new"](conn, params)
                assert old == new, (params, old, new)
            print(f"rates, {args.queues} queues x 61 minutes x 4 rows: old and new agree")
            measure(conn, rates, args.rounds)
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
