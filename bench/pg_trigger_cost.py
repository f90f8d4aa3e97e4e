"""What the PostgreSQL count trigger of job updates costs on a drain's statements, with the
function of migration 0011 (`old`) and of migration 0018 (`new`, its fast paths), timed by
the server: EXPLAIN (ANALYZE, FORMAT JSON) of each statement reports the trigger's own time
and the statement's execution time, so the figures are the server's work, not the network's
or this client's (still CPU time on a shared machine: run a few rounds, read the medians).

N jobs are driven through the drain's updates in batches of B, each batch one statement, as
the store's own statements do (their shapes, not their text: by id, no lease fencing):
  claim      queued -> running (attempt + 1, a lease)
  heartbeat  running -> running (a later lease: no count moves)
  settle     running -> completed (finished_at: a finished event)
Both variants run on one schema, in rotating order, the jobs reset (and the table vacuumed)
between runs. Prints µs per job: the trigger's, and the whole statement's.

    .venv/bin/python bench/pg_trigger_cost.py --jobs 5000 --batch 10 --rounds 5

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
from pathlib import Path
from typing import Any

import psycopg

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MIGRATIONS = Path(__file__).resolve().parents[1] / "src/conveyor/store/postgres/migrations"
STEPS = {
    "claim": "UPDATE {s}.conveyor_jobs SET state = 'running', attempt = attempt + 1,"
             " lease_token = attempt + 1, lease_expires_at = date_part('epoch', now()) + 30"
             " WHERE id = ANY(%s)",
    "heartbeat": "UPDATE {s}.conveyor_jobs SET lease_expires_at = lease_expires_at + 30"
                 " WHERE id = ANY(%s)",
    "settle": "UPDATE {s}.conveyor_jobs SET state = 'completed', lease_expires_at = NULL,"
              " finished_at = date_part('epoch', now()) WHERE id = ANY(%s)",
}
RESET = ("UPDATE {s}.conveyor_jobs SET state = 'queued', attempt = 0, lease_token = NULL,"
         " lease_expires_at = NULL, finished_at = NULL")


def trigger_function(migration: str, schema: str) -> str:
    """conveyor_count_updated as a migration (a number, or a file's path) creates it, as
    CREATE OR REPLACE."""
    from conveyor.store.migrate import split_statements

    found = Path(migration) if migration.endswith(".sql") else next(
        MIGRATIONS.glob(f"{migration}_*.sql"))
    text = found.read_text()
    [body] = [s for s in split_statements(text)
              if s.startswith(("CREATE FUNCTION {schema}.conveyor_count_updated(",
                               "CREATE OR REPLACE FUNCTION {schema}.conveyor_count_updated("))]
    body = body.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    return body.replace("{schema}", f'"{schema}"')


async def build(url: str, jobs: int) -> None:
    from conveyor.job import NewJob, new_id
    from conveyor.store.postgres.store import PostgresStore

    store = PostgresStore(url)
    await store.open()
    try:
        await store.migrate()
        for start in range(0, jobs, 1000):
            await store.enqueue_many([NewJob(new_id(), "noop", f"q{n % 3}", b"{}")
                                      for n in range(start, min(jobs, start + 1000))])
    finally:
        await store.close()


def timed(conn: psycopg.Connection[Any], statement: str, ids: list[str]) -> tuple[float, float]:
    """(the trigger's ms, the statement's ms), as the server measured them."""
    [[plan]] = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", (ids,)).fetchall()
    report = (plan if isinstance(plan, list) else json.loads(plan))[0]
    trigger = sum(t["Time"] for t in report.get("Triggers", [])
                  if t["Trigger Name"] == "conveyor_count_updated")
    return float(trigger), float(report["Execution Time"])


def run(conn: psycopg.Connection[Any], schema: str, ids: list[str], batch: int
        ) -> dict[str, tuple[float, float]]:
    """µs per job (trigger, statement) of each step over every job."""
    s = f'"{schema}"'
    conn.execute(RESET.format(s=s))
    conn.execute(f"TRUNCATE {s}.conveyor_count_deltas, {s}.conveyor_finished_deltas")
    conn.execute(f"VACUUM (ANALYZE) {s}.conveyor_jobs")
    figures = {}
    for step, template in STEPS.items():
        statement = template.format(s=s)
        trigger = total = 0.0
        for start in range(0, len(ids), batch):
            spent = timed(conn, statement, ids[start:start + batch])
            trigger, total = trigger + spent[0], total + spent[1]
        figures[step] = (trigger * 1000 / len(ids), total * 1000 / len(ids))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old", default="0011", help="a migration's number, or a .sql file")
    parser.add_argument("--new", default="0018", help="a migration's number, or a .sql file")
    args = parser.parse_args()
    schema = f"bench_{secrets.token_hex(4)}"
    asyncio.run(build(f"{PG}?schema={schema}", args.jobs))
    variants = {"old": trigger_function(args.old, schema),
                "new": trigger_function(args.new, schema)}
    results: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {step: [] for step in STEPS} for name in variants}
    with psycopg.connect(PG, autocommit=True) as conn:
        try:
            ids = [row[0] for row in conn.execute(
                f'SELECT id FROM "{schema}".conveyor_jobs ORDER BY id').fetchall()]
            for round_ in range(args.rounds):
                order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
                for name in order:
                    conn.execute(variants[name])
                    for step, figure in run(conn, schema, ids, args.batch).items():
                        results[name][step].append(figure)
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"{args.jobs} jobs, batches of {args.batch}, {args.rounds} rounds: median µs/job "
          "(trigger / whole statement), server-side")
    for step in STEPS:
        line = [f"{step:>9}"]
        for name in variants:
            trigger = statistics.median(f[0] for f in results[name][step])
            total = statistics.median(f[1] for f in results[name][step])
            line.append(f"{name} {trigger:6.2f} / {total:6.2f}")
        old = statistics.median(f[0] for f in results["old"][step])
        new = statistics.median(f[0] for f in results["new"][step])
        line.append(f"trigger new/old {new / old:5.2f}" if old else "")
        print("   ".join(line))
    # the three steps of each job summed within each run, then the median of the runs
    drain = {name: statistics.median(
        sum(results[name][step][run][0] for step in STEPS) for run in range(args.rounds))
        for name in variants}
    print(f"{'drain':>9}   trigger old {drain['old']:6.2f}   new {drain['new']:6.2f}"
          f"   new/old {drain['new'] / drain['old']:5.2f}")


if __name__ == "__main__":
    main()
