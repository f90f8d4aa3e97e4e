"""Where the counter reads' time goes while 2 workers drain (issue 16, stop 24): the overview,
/metrics, the queues page and the stats and queues APIs, over HTTP, beside the same store
calls timed in this process (stats, queues, workers), the rows they touch, and a CPU probe.

1. Load N jobs as bench/reads.py does; start `conveyor serve`; time everything idle.
2. Start 2 `conveyor worker` processes; time everything again while they drain.
Per round, in this order: each HTTP read once, each store call once, each probe once; p50/p95
over --rounds rounds. Rows touched: the durations read's rows (jobs completed in the last
hour, at most 5,000), the attempt history's pending rows and minute rollups of the last hour
(what the throughput charts sum), on PostgreSQL the unfolded delta rows (live and dead: what
a read sums or walks). The CPU probe is a fixed pure-Python loop (about 1 ms alone): its
wall time over its idle time is how long a runnable thread waits for a core on this machine.

    .venv/bin/python bench/counter_reads.py --store sqlite --jobs 1000000
    .venv/bin/python bench/counter_reads.py --store postgres --jobs 2000000 --load-budget 120

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from conveyor import JobFilter, JobState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reads import (  # beside this script
    PG,
    QUEUES,
    Processes,
    load_postgres,
    load_sqlite,
    uptime,
    wait_up,
)

PAGES = [("overview", "/"), ("metrics", "/metrics"), ("queues page", "/queues"),
         ("stats API", "/api/v1/stats"), ("queues API", "/api/v1/queues"),
         ("workers API", "/api/v1/workers")]
SQLITE_ROWS = {
    "durations rows": """SELECT count(*) FROM (SELECT 1 FROM conveyor_jobs
        INDEXED BY conveyor_jobs_finished WHERE finished_at > :since AND state = 'completed'
        AND started_at IS NOT NULL LIMIT 5000)""",
    "pending attempt rows": "SELECT count(*) FROM conveyor_attempts_pending",
    "minute rollup rows, last hour": """SELECT count(*) FROM conveyor_rollups
        WHERE width = 60 AND minute >= CAST(:since / 60 AS INTEGER)"""}
PG_ROWS = {
    "durations rows": """SELECT count(*) FROM (SELECT 1 FROM {schema}.conveyor_jobs
        WHERE finished_at > %(since)s AND state = 'completed' AND started_at IS NOT NULL
        LIMIT 5000) AS d""",
    "count delta rows": "SELECT count(*) FROM {schema}.conveyor_count_deltas",
    "count delta dead rows": """SELECT n_dead_tup FROM pg_stat_user_tables
        WHERE schemaname = '{raw}' AND relname = 'conveyor_count_deltas'""",
    "finished delta rows": "SELECT count(*) FROM {schema}.conveyor_finished_deltas",
    "pending attempt rows": "SELECT count(*) FROM {schema}.conveyor_attempts_pending",
    "minute rollup rows, last hour": """SELECT count(*) FROM {schema}.conveyor_rollups
        WHERE width = 60 AND minute >= floor(%(since)s / 60)"""}


def cpu_probe() -> float:
    began = time.perf_counter()
    total = 0
    for n in range(60_000):
        total += n * n
    return (time.perf_counter() - began) * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_share(processes: Processes, seconds: float = 10.0) -> str:
    """Each process's CPU (% of one core) over `seconds` with no request: the server's is
    what the event feed (metrics, chart history) and its sampler cost it while jobs move."""
    pids = {name: proc.pid for name, proc in processes.procs.items()}
    first = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return ", ".join(f"{name} {(cpu_seconds(pid) - first[name]) / seconds * 100:.0f} %"
                     for name, pid in pids.items())


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) * 1000


class Rows:
    """Counts of rows touched, read on a connection of its own."""

    def __init__(self, store: str, url: str, path: Path, schema: str) -> None:
        self.store, self.schema = store, schema
        if store == "sqlite":
            import sqlite3

            self.conn: Any = sqlite3.connect(path)
            self.queries = SQLITE_ROWS
        else:
            import psycopg

            self.conn = psycopg.connect(url.split("?")[0], autocommit=True)
            self.queries = {k: v.replace("{schema}", f'"{schema}"').replace("{raw}", schema)
                            for k, v in PG_ROWS.items()}

    def count(self) -> dict[str, float]:
        params = {"since": time.time() - 3600}
        return {label: float(self.conn.execute(sql, params).fetchone()[0] or 0)
                for label, sql in self.queries.items()}


def one_round(client: httpx.Client, app: Any, rows: Rows) -> dict[str, float]:
    found = {f"HTTP {label}": timed(lambda p=path: client.get(p).raise_for_status())
             for label, path in PAGES}
    found["store stats()"] = timed(lambda: app.call(lambda s: s.stats()))
    found["store queues()"] = timed(lambda: app.call(lambda s: s.queues()))
    found["store workers()"] = timed(lambda: app.call(lambda s: s.workers()))
    found["store job_counts()"] = timed(lambda: app.call(lambda s: s.job_counts()))
    hour, day = app.analytics.window(3600), app.analytics.window("24h")
    found["store task_analytics(1h, 61)"] = timed(lambda: app.analytics.tasks(hour, 61))
    found["store task_analytics(24h, 30)"] = timed(lambda: app.analytics.tasks(day, 30))
    found["store list_jobs(dead, 5)"] = timed(lambda: app.list_jobs(
        JobFilter(states=(JobState.DEAD,)), limit=5, redacted=True))
    found["cpu probe"] = cpu_probe()
    found.update(rows.count())
    return found


def measure(client: httpx.Client, app: Any, rows: Rows, rounds: int
            ) -> dict[str, tuple[float, float]]:
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for label, value in one_round(client, app, rows).items():
            samples.setdefault(label, []).append(value)
    return {label: (statistics.median(v), sorted(v)[max(0, round(0.95 * len(v)) - 1)])
            for label, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--load-budget", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--port", type=int, default=8792)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="conveyor-counter-reads-"))
    schema = f"bench_counter_reads_{os.getpid()}"
    url = (f"sqlite:///{folder / 'reads.db'}" if args.store == "sqlite"
           else f"{PG}?schema={schema}")
    os.environ["CONVEYOR_URL"] = url
    from reads_app import app

    app.migrate()
    print(f"# counter reads: {args.store}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"uptime: {uptime()}")
    loaded, took = (load_sqlite(folder / "reads.db", args.jobs) if args.store == "sqlite"
                    else load_postgres(url, schema, args.jobs, args.load_budget))
    print(f"loaded {loaded:,} jobs in {took:.0f} s")
    app.call(lambda store: store.fold_counts())
    rows = Rows(args.store, url, folder / "reads.db", schema)
    processes = Processes(url, folder)
    try:
        processes.start("serve", "serve", "--port", str(args.port))
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as client:
            wait_up(client)
            measure(client, app, rows, 2)  # warm
            idle = measure(client, app, rows, args.rounds)
            for n in range(2):
                processes.start(f"worker{n}", "worker", "--app", "reads_app:app", "--queues",
                                ",".join(QUEUES), "--concurrency", "20")
            time.sleep(5)
            busy = measure(client, app, rows, args.rounds)
            share = server_share(processes)
            print(f"uptime: {uptime()}\n\n{args.rounds} rounds each (ms, or rows)\n")
            print("| measure | idle p50 | idle p95 | draining p50 | draining p95 |")
            print("| --- | --: | --: | --: | --: |")
            for label, (p50, p95) in idle.items():
                b50, b95 = busy[label]
                print(f"| {label} | {p50:.1f} | {p95:.1f} | {b50:.1f} | {b95:.1f} |")
            print(f"\nCPU over 10 s of the drain with no request (% of a core): {share}")
    finally:
        processes.stop(*list(processes.procs))
        app.close()
        if args.store == "postgres":
            import psycopg

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
