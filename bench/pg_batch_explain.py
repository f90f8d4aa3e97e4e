"""EXPLAIN (ANALYZE, BUFFERS) of the jobs list filtered by batch, as the API runs it (50 jobs,
no bodies), on a kept bench schema: figures, no asserts.

    PYTHONPATH=$PWD/src .venv/bin/python bench/pg_batch_explain.py --schema pgbatch_reads_10m \
        [--batch batch-77] [--after ID] [--state queued] [--brin] [--runs 3]

--brin: the statement version 36 ran (`batch_id = ...` on conveyor_jobs, its BRIN index),
for a schema not migrated to 37 yet. Each run is printed; the first reads a cold cache.
"""

from __future__ import annotations

import argparse
import os

import psycopg

from conveyor.job import JobFilter, JobState
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.reads import _where
from conveyor.store.postgres.store import PostgresStore

PG = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--batch", default="batch-77")
    parser.add_argument("--after", default=None)
    parser.add_argument("--state", default=None)
    parser.add_argument("--brin", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    store = PostgresStore(f"{PG}?schema={args.schema}")
    clauses = dict(q.LIST_CLAUSES)
    if args.brin:
        clauses["batch_id"] = "batch_id = %(batch_id)s"
    where = JobFilter(batch_id=args.batch,
                      states=(JobState(args.state),) if args.state else ())
    from conveyor.store.filters import where_clause

    where_sql, params = (where_clause(where, args.after, 50, clauses, list) if args.brin
                         else _where(where, args.after, 50))
    statement = store.statement(f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}")
    with psycopg.connect(PG, autocommit=True) as conn:
        for run in range(args.runs):
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
            print(f"-- run {run + 1}")
            print("\n".join(r[0] for r in rows))


if __name__ == "__main__":
    main()
