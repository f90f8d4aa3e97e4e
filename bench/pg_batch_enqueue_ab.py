"""What version 37's batch table costs an enqueue on PostgreSQL: interleaved A/B, no asserts.

    PYTHONPATH=$PWD/src .venv/bin/python bench/pg_batch_enqueue_ab.py [--rounds 12]

Two schemas of one scratch database, both migrated by this tree, then one of them put back as
version 36 left it (the BRIN on batch_id, the count triggers' bodies of versions 35 and 22,
no conveyor_job_batches). The same app code enqueues into each in turn, the order rotating
every round, both tables truncated before each turn:

- `app.enqueue_many` of --batch jobs: one batch (every job carries its batch id), the COPY
  path: each job then writes a row and a key entry in conveyor_job_batches (version 37) in
  place of the BRIN's summary (version 36);
- `app.enqueue` one at a time (--singles per turn, no batch): what a job without a batch pays
  (an empty scan of the statement's rows).

Figures: the median per call of each side, and the new side's ratio to the old one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from conveyor import Conveyor, Settings
from conveyor.store.migrate import load_migrations

SCRATCH = "pgbatch_enqueue_ab"
MIGRATIONS = Path(__file__).resolve().parents[1] / "src/conveyor/store/postgres/migrations"
# version 36's state of what version 37 changes: the newest bodies of these functions
OLD_BODIES = {35: ("conveyor_count_inserted",),
              22: ("conveyor_count_deleted", "conveyor_count_truncated")}


def as_version_36(conn: psycopg.Connection[Any], schema: str) -> None:
    migrations = {m.version: m for m in load_migrations(MIGRATIONS)}
    conn.execute(f"DROP TABLE {schema}.conveyor_job_batches")
    conn.execute(f"CREATE INDEX conveyor_jobs_batch ON {schema}.conveyor_jobs USING brin "
                 "(batch_id) WITH (pages_per_range = 16, autosummarize = on) "
                 "WHERE batch_id IS NOT NULL")
    for version, names in OLD_BODIES.items():
        for statement in migrations[version].statements:
            if any(f"FUNCTION {{schema}}.{name}()" in statement for name in names):
                conn.execute(statement.replace("{schema}", schema))
    conn.execute(f"DELETE FROM {schema}.conveyor_schema WHERE version = 37")


def app_for(base: str, schema: str) -> Conveyor:
    app = Conveyor(settings=Settings.load(url=f"{base}{SCRATCH}?schema={schema}",
                                          log_level="WARNING"))

    @app.task()
    async def job(ctx: Any, payload: Any) -> None:
        return None

    app.migrate()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="postgresql://postgres@127.0.0.1:5432/")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=10, help="batches per turn")
    parser.add_argument("--singles", type=int, default=200, help="single enqueues per turn")
    args = parser.parse_args()
    with psycopg.connect(args.base + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {SCRATCH}")
    try:
        run(args)
    finally:
        with psycopg.connect(args.base + "postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def run(args: argparse.Namespace) -> None:
    apps = {"v36 (BRIN)": app_for(args.base, "old"), "v37 (batch table)": app_for(args.base, "new")}
    conn = psycopg.connect(args.base + SCRATCH, autocommit=True)
    as_version_36(conn, "old")
    items = [{"task": "job", "payload": {"ms": 0}}] * args.batch
    times: dict[tuple[str, str], list[float]] = {}
    names = list(apps)
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for name in names[round_ % 2:] + names[:round_ % 2]:
            app, schema = apps[name], "old" if name.startswith("v36") else "new"
            conn.execute(f"TRUNCATE {schema}.conveyor_jobs")
            for kind, count, call in (("batch", args.batches, partial(app.enqueue_many, items)),
                                      ("single", args.singles,
                                       partial(app.enqueue, "job", {"ms": 0}))):
                spent = times.setdefault((name, kind), [])
                for _ in range(count):
                    started = time.perf_counter()
                    call()
                    if round_:
                        spent.append(time.perf_counter() - started)
    for app in apps.values():
        app.close()
    conn.close()
    print(f"{args.rounds} rounds, order rotating; per turn {args.batches} batches of "
          f"{args.batch} (enqueue_many, COPY) and {args.singles} single enqueues; medians:")
    for kind in ("batch", "single"):
        old, new = (statistics.median(times[(n, kind)]) for n in names)
        for name, value in zip(names, (old, new), strict=True):
            print(f"  {kind:6s} {name:18s} {value * 1000:8.3f} ms")
        print(f"  {kind:6s} new / old          {new / old:8.3f}")


if __name__ == "__main__":
    main()
