"""The store reads behind the overview (`/`) and `/metrics`, each timed alone (issue 16), on a
store of many jobs plus an attempt history: folded attempts and rollups over the last day,
and a tail of pending (not yet folded) attempt rows, as a drain leaves between folds.

1. Load N jobs as bench/reads.py does (mixed states, 20 queues, 10 tasks, 50 tenants).
2. Attempt history: one attempt per finished job, ended over the last 24 hours, inserted as
   pending rows and folded (the rollups the charts read); then --pending more pending rows
   in the last minutes, left unfolded.
3. Time each read alone, in interleaved rounds (every read once per round, rotated): stats,
   queues, the 5 newest dead letters, workers, the overview's two rollup reads (24 h in 30
   points; the last hour per minute), all tenants and one tenant. p50/p95 ms and client
   CPU ms per call.

    .venv/bin/python bench/view_reads.py --store postgres --jobs 1000000 --pending 20000
    .venv/bin/python bench/view_reads.py --store sqlite --jobs 1000000 --keep /tmp/v.db

`--analytics` times the analytics API's reads instead (errors, workers, slow attempts, a
group's dead jobs; issue 15). `--url` times an already loaded store (--jobs 0: nothing
loaded), so two trees can be compared on the same data: PYTHONPATH selects the tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reads import PG, load_postgres, load_sqlite  # noqa: E402

# one attempt per finished job (completed, dead, cancelled), ended over the last day; the
# outcome follows the job's state, 10 % of completed ones had a retried attempt before
_PENDING_COLUMNS = """job_id, attempt, task, queue, tenant, worker_id, host, pid, started_at,
    ended_at, duration, outcome, error_type, error_message, fingerprint, cpu, rss, bucket"""
_HISTORY_SELECT = """SELECT id, attempt, task, queue, tenant, 'w' || (n % 4), 'host', 100 + n % 4,
    {now} - {span} * r - {took}, {now} - {span} * r, {took},
    CASE state WHEN 'dead' THEN 'dead' WHEN 'cancelled' THEN 'cancelled'
         ELSE CASE WHEN n % 10 = 0 THEN 'retried' ELSE 'completed' END END,
    CASE WHEN state = 'dead' OR n % 10 = 0 THEN 'ValueError' END,
    CASE WHEN state = 'dead' OR n % 10 = 0 THEN 'bad input' END,
    CASE WHEN state = 'dead' OR n % 10 = 0 THEN 'f' || (n % 7) || '0123456789abcde' END,
    0.01, 1000000, 6"""


# --spread: durations over 50-64 ms (all in the histogram bucket the rows carry, 6), not
# all 50 ms, so that the slowest attempts are not every attempt tied
SPREAD = {False: "0.05", True: "(0.05 + (n % 13997) / 1e6)"}


def history_pg(url: str, schema: str, span: float, limit: int | None, pending_only: bool,
               spread: bool = False) -> int:
    import psycopg

    now = time.time()
    sql = (f'INSERT INTO "{schema}".conveyor_attempts_pending ({_PENDING_COLUMNS}) '
           + _HISTORY_SELECT.format(now=now, span=span, took=SPREAD[spread])
           + ' FROM (SELECT *, row_number() OVER () AS n, random() AS r FROM "'
           + schema + "\".conveyor_jobs WHERE state IN ('completed', 'dead', 'cancelled')"
           + (f" LIMIT {limit}" if limit else "") + ") AS j")
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        return conn.execute(sql).rowcount


def history_sqlite(path: Path, span: float, limit: int | None, spread: bool = False) -> int:
    import sqlite3

    now = time.time()
    conn = sqlite3.connect(path, isolation_level=None)
    sql = (f"INSERT INTO conveyor_attempts_pending ({_PENDING_COLUMNS}) "
           + _HISTORY_SELECT.format(now=now, span=span, took=SPREAD[spread])
           + " FROM (SELECT *, abs(random()) % 1000000 AS n, (abs(random()) % 1000000) / 1e6 AS r "
           "FROM conveyor_jobs WHERE state IN ('completed', 'dead', 'cancelled')"
           + (f" LIMIT {limit}" if limit else "") + ")")
    count = conn.execute(sql).rowcount
    conn.close()
    return count


# The loaded dead jobs carry the fingerprint of their newest dead attempt (as a settle that
# kills a job writes it, migration 0022; the loader inserts jobs, not settles them): without
# it every group has no dead jobs, and a group's dead jobs read nothing
_DEAD_GROUPS = """UPDATE {schema}conveyor_jobs SET dead_fingerprint = (
    SELECT fingerprint FROM {schema}conveyor_attempts WHERE job_id = conveyor_jobs.id
      AND outcome = 'dead' AND fingerprint IS NOT NULL ORDER BY ended_at DESC LIMIT 1)
WHERE state = 'dead'"""


def dead_groups(url: str, schema: str | None) -> int:
    """Mark the dead jobs' groups (a store of version 22 on; 0 before it)."""
    if schema is None:
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(conveyor_jobs)")}
            if "dead_fingerprint" not in columns:
                return 0
            return conn.execute(_DEAD_GROUPS.format(schema="")).rowcount
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = 'conveyor_jobs' AND column_name = "
                        "'dead_fingerprint'", (schema,)).fetchone() is None:
            return 0
        return conn.execute(_DEAD_GROUPS.format(schema=f'"{schema}".')).rowcount


def fold_all(app: Any) -> int:
    total = 0
    while True:
        moved = app.call(lambda s: s.fold_history(10_000))
        total += moved
        if moved < 10_000:
            return total


def vacuum_pg(schema: str) -> None:
    """VACUUM ANALYZE the loaded schema, as a running store leaves it: its maintenance
    vacuums the pending attempts after each fold (postgres/vacuums.py) and autovacuum the
    rest (off on this machine's server). Without it the pending table keeps the ~25,000
    pages the load's 1M pending rows took, and every read that sums the pending tail
    scans them (60 ms and more of each analytics read)."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
        for table in tables:
            conn.execute(f'VACUUM ANALYZE "{schema}"."{table}"')


def reads(app: Any, tenant: str | None) -> dict[str, Any]:
    """label: a no-argument call of one store read, as the overview and /metrics make it."""
    from conveyor.job import JobFilter, JobState

    analytics = app.analytics
    hour = analytics.window(3600.0, tenant=tenant)
    first = int(hour.start // 60)
    minutes = max(1, -(-int(hour.end) // 60) - first)
    day = analytics.window("24h", tenant=tenant)
    suffix = "" if tenant is None else f" ({tenant})"
    found = {
        f"stats{suffix}": lambda: app.stats(tenant=tenant),
        f"queues{suffix}": lambda: app.queues(tenant=tenant),
        f"dead 5{suffix}": lambda: app.list_jobs(
            JobFilter(states=(JobState.DEAD,), tenant=tenant), limit=5, redacted=True),
        f"rollups 24h/30{suffix}": lambda: analytics.queues(day, 30),
        f"rollups 1h/min{suffix}": lambda: analytics.queues(hour, minutes),
    }
    if tenant is None:
        found["workers"] = app.workers
    return found


def analytics_reads(app: Any, tenant: str | None, filters: bool = False) -> dict[str, Any]:
    """label: a no-argument call of one analytics API read (issue 15: tasks, errors,
    workers, slow attempts, a group's dead jobs), over the last hour, day and month.
    `filters`: the slow, tasks and errors reads of a task and of a queue too (FILTERS), over
    the last day and month."""
    analytics = app.analytics
    suffix = "" if tenant is None else f" ({tenant})"
    found: dict[str, Any] = {}
    for span in ("1h", "24h", "30d"):  # 30d: 4,320 10-minute parts
        window = analytics.window(span, tenant=tenant)
        found[f"tasks {span}{suffix}"] = lambda w=window: analytics.tasks(w, 30)
        found[f"errors {span}{suffix}"] = lambda w=window: analytics.errors(w)
        found[f"workers {span}{suffix}"] = lambda w=window: analytics.workers(w)
        found[f"slow {span}{suffix}"] = lambda w=window: analytics.slow(w)
    for span in ("24h", "30d") if filters else ():
        for name, scope in FILTERS.items():
            window = analytics.window(span, tenant=tenant, **scope)
            found[f"slow {span} {name}{suffix}"] = lambda w=window: analytics.slow(w)
            found[f"tasks {span} {name}{suffix}"] = lambda w=window: analytics.tasks(w, 30)
            found[f"errors {span} {name}{suffix}"] = lambda w=window: analytics.errors(w)
    group = "f00123456789abcde"  # the bench history's fingerprints: f{n % 7}0123456789abcde
    found[f"group dead jobs{suffix}"] = lambda: app.call(
        lambda s: s.group_dead_jobs(group, tenant))
    return found


# --filters: the slow reads of one task and one queue (the bench's 10 tasks and 20 queues)
FILTERS = {"task": {"task": "bench.t3"}, "queue": {"queue": "q7"}}


def time_reads(app: Any, rounds: int, tenant: str | None, which: Any = None,
               only: str | None = None) -> dict[str, dict[str, float]]:
    which = which or reads
    calls = {**which(app, None), **(which(app, tenant) if tenant else {})}
    calls = {label: call for label, call in calls.items()
             if only is None or label.startswith(only)}
    labels = list(calls)
    wall: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    for label in labels:  # warm: prepared statements, caches
        calls[label]()
    for n in range(rounds):
        for label in labels[n % len(labels):] + labels[:n % len(labels)]:
            began, began_cpu = time.perf_counter(), time.process_time()
            calls[label]()
            wall[label].append((time.perf_counter() - began) * 1000)
            cpu[label].append((time.process_time() - began_cpu) * 1000)
    out = {}
    for label in labels:
        took = sorted(wall[label])
        out[label] = {"p50_ms": round(statistics.median(took), 2),
                      "p95_ms": round(took[max(0, round(0.95 * len(took)) - 1)], 2),
                      "cpu_ms": round(statistics.median(cpu[label]), 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--load-budget", type=float, default=300.0)
    parser.add_argument("--pending", type=int, default=20_000,
                        help="pending attempt rows left unfolded")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--tenant", default="org-17")
    parser.add_argument("--url", default=None, help="time this loaded store (no load)")
    parser.add_argument("--keep", default=None, help="SQLite: the file to load (kept)")
    parser.add_argument("--json", default=None, metavar="PATH")
    parser.add_argument("--analytics", action="store_true",
                        help="time the analytics API's reads (errors, workers, slow, a group's "
                        "dead jobs) instead of the overview's")
    parser.add_argument("--schema", default=None, help="PostgreSQL: the schema to load")
    parser.add_argument("--spread", action="store_true",
                        help="attempt durations spread over 50-64 ms, not all 50 ms")
    parser.add_argument("--only", default=None, metavar="PREFIX",
                        help="time only the reads whose label starts so ('slow')")
    parser.add_argument("--days", type=float, default=1.0,
                        help="the days the folded attempts span (1: the last day)")
    parser.add_argument("--no-dead-groups", action="store_true",
                        help="skip marking the dead jobs' groups (PostgreSQL: over 10 "
                        "minutes at 1M jobs; only 'group dead jobs' reads them)")
    parser.add_argument("--filters", action="store_true",
                        help="--analytics: the slow reads of a task and of a queue too")
    parser.add_argument("--passes", type=int, default=1,
                        help="attempt rows per finished job (2: ~1.09M attempts at 1M jobs)")
    args = parser.parse_args()
    if args.url:
        url = args.url
    elif args.store == "sqlite":
        path = Path(args.keep or Path(tempfile.mkdtemp(prefix="conveyor-views-")) / "v.db")
        url = f"sqlite:///{path}"
    else:
        url = f"{PG}?schema={args.schema or f'bench_views_{os.getpid()}'}"
    os.environ["CONVEYOR_URL"] = url
    from conveyor import Conveyor

    app = Conveyor()
    if not args.url:
        app.migrate()
        schema = url.split("schema=")[-1]
        if args.store == "sqlite":
            loaded, took = load_sqlite(Path(url[len("sqlite:///"):]), args.jobs)
        else:
            loaded, took = load_postgres(url, schema, args.jobs, args.load_budget)
        print(f"loaded {loaded:,} jobs in {took:.0f} s", flush=True)
        app.call(lambda s: s.fold_counts())
        began = time.perf_counter()
        span = 86400.0 * args.days
        added = sum(history_sqlite(Path(url[len("sqlite:///"):]), span, None, args.spread)
                    if args.store == "sqlite"
                    else history_pg(url, schema, span, None, False, args.spread)
                    for _ in range(args.passes))
        folded = fold_all(app)
        print(f"history: {added:,} attempts over {args.days:g} days, {folded:,} folded in "
              f"{time.perf_counter() - began:.0f} s", flush=True)
        if args.store == "postgres":
            vacuum_pg(schema)
        marked = 0 if args.no_dead_groups else dead_groups(
            url, None if args.store == "sqlite" else schema)
        print(f"dead jobs in an error group: {marked:,}", flush=True)
        if args.pending:
            tail = (history_sqlite(Path(url[len("sqlite:///"):]), 300.0, args.pending,
                                   args.spread)
                    if args.store == "sqlite"
                    else history_pg(url, schema, 300.0, args.pending, True, args.spread))
            print(f"pending (unfolded): {tail:,} attempts in the last 5 minutes", flush=True)
        print(f"store: {url}")
    timed = time_reads(app, args.rounds, args.tenant,
                       partial(analytics_reads, filters=args.filters) if args.analytics
                       else reads, args.only)
    print(f"\n{args.rounds} interleaved rounds; wall ms p50 / p95, client CPU ms p50\n")
    print("| read | p50 ms | p95 ms | CPU ms |\n| --- | --: | --: | --: |")
    for label, f in timed.items():
        print(f"| {label} | {f['p50_ms']} | {f['p95_ms']} | {f['cpu_ms']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"store": args.store, "url": url,
                                               "reads": timed}, indent=2) + "\n")
    app.close()


if __name__ == "__main__":
    main()
