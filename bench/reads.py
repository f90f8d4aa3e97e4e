"""Reads at size: every dashboard page and API read against a real `conveyor serve`, over
HTTP, on a store of many jobs (issue 16: p95 <= 50 ms each, drain slowed <= 5 % by a dashboard
refreshing every second).

1. Load N jobs server-side (a recursive CTE on SQLite, generate_series on PostgreSQL), in mixed
   states (40 % queued, so that 2 workers still drain through the last window; 2.5 %
   scheduled, 2.5 % waiting to retry, 0.5 % running, 40 % completed, 10 % dead, 4.5 %
   cancelled), across 20 queues, 10 tasks and 50 tenants, states
   spread evenly over the ids. PostgreSQL loads in chunks and stops at --load-budget seconds.
2. Time each read --requests times, idle: p50 and p95 in ms.
3. Start 2 `conveyor worker` processes (bench/reads_app.py) draining the queued jobs; time
   each read again while they drain.
4. Drain rate (completed jobs/s over --window seconds, from the kept counts) without and with
   a dashboard refresh (GET /) every second, alternating, --rounds times each.

    .venv/bin/python bench/reads.py --store sqlite --jobs 1000000
    .venv/bin/python bench/reads.py --store postgres --jobs 10000000 --load-budget 300
    .venv/bin/python bench/reads.py --store postgres --jobs 200000 --json /tmp/reads.json
    .venv/bin/python bench/reads.py --store postgres --jobs 10000000 --load-budget 3600 \
        --schema bench_reads_10m --load-only   # load once and keep
    .venv/bin/python bench/reads.py --store postgres --schema bench_reads_10m   # reads

`--json PATH` also writes the figures as JSON: per read, p50/p95 ms idle and draining; the
drain rates; the store, the jobs loaded, the time and the load average.

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
CONVEYOR = Path(sys.executable).with_name("conveyor")
PG = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
QUEUES = [f"q{n}" for n in range(20)]

# One job per n: h spreads n over states, queues, tasks and tenants; ids grow with n.
_STATE = """CASE WHEN b < 400 THEN 'queued' WHEN b < 450 THEN 'scheduled'
    WHEN b < 455 THEN 'running' WHEN b < 855 THEN 'completed' WHEN b < 955 THEN 'dead'
    ELSE 'cancelled' END"""
_COLUMNS = """id, task, queue, state, priority, payload, tenant, correlation_id, batch_id,
    attempt, max_attempts, created_at, run_at, started_at, finished_at, worker_id,
    lease_token, lease_expires_at, dead_reason"""
_VALUES = """'bench.t' || ((h / 20000) % 10), 'q' || ((h / 1000) % 20), {state},
    CASE WHEN (h / 7) % 10 = 0 THEN 5 ELSE 0 END, {payload}, 'org-' || ((h / 200000) % 50),
    'corr-' || (n % 100000), CASE WHEN n % 10 = 0 THEN 'batch-' || (n / 5000) END,
    CASE WHEN b < 425 THEN 0 WHEN b < 855 THEN 1 WHEN b < 955 THEN 3 ELSE 0 END, 3,
    {base} + n * 0.001,
    CASE WHEN b >= 400 AND b < 450 THEN {now} + 86400 ELSE {base} + n * 0.001 END,
    CASE WHEN b >= 450 AND b < 955 THEN {base} + n * 0.001 + 0.2 END,
    CASE WHEN b >= 455 THEN {base} + n * 0.001 + 0.5 END,
    CASE WHEN b >= 450 AND b < 455 THEN 'ghost' END,
    CASE WHEN b >= 450 AND b < 455 THEN 1 END,
    CASE WHEN b >= 450 AND b < 455 THEN {now} + 86400 END,
    CASE WHEN b >= 855 AND b < 955 THEN 'failed' END"""

SQLITE_LOAD = """
WITH RECURSIVE seq(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM seq WHERE n < :last),
hashed AS (SELECT n, (n * 2654435761) % 4294967296 AS h FROM seq),
keyed AS (SELECT n, h, h % 1000 AS b,
                 CAST(({base} + n * 0.001) * 1000 AS INTEGER) AS ms FROM hashed)
INSERT INTO conveyor_jobs (""" + _COLUMNS + """)
SELECT printf('%08x-%04x-7%03x-8%03x-%012x', ms >> 16, ms & 65535, n & 4095,
              (n >> 12) & 4095, n), """ + _VALUES + " FROM keyed"

PG_LOAD = """
INSERT INTO {schema}.conveyor_jobs (""" + _COLUMNS + """)
SELECT lpad(to_hex(ms >> 16), 8, '0') || '-' || lpad(to_hex(ms & 65535), 4, '0') || '-7'
       || lpad(to_hex(n & 4095), 3, '0') || '-8' || lpad(to_hex((n >> 12) & 4095), 3, '0')
       || '-' || lpad(to_hex(n), 12, '0'), """ + _VALUES + """
FROM (SELECT n, h, h % 1000 AS b, (({base} + n * 0.001) * 1000)::bigint AS ms
      FROM (SELECT n, (n * 2654435761) % 4294967296 AS h
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n) AS hashed) AS keyed"""


# SQLite counts the jobs its enqueue inserts (sqlite/counters.py), not rows written behind the
# store's back: after loading by SQL, count them as migration 0011 counts the jobs it finds.
SQLITE_RECOUNT = [
    "DELETE FROM conveyor_counts", "DELETE FROM conveyor_tenant_counts",
    """INSERT INTO conveyor_counts (queue, task, state, n)
       SELECT queue, task, CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying'
                                ELSE state END, count(*)
       FROM conveyor_jobs GROUP BY 1, 2, 3""",
    """INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n)
       SELECT tenant, queue, task, CASE WHEN state = 'scheduled' AND attempt > 0
                                        THEN 'retrying' ELSE state END, count(*)
       FROM conveyor_jobs WHERE tenant <> '' GROUP BY 1, 2, 3, 4"""]


def load_sqlite(path: Path, jobs: int) -> tuple[int, float]:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    now = time.time()
    sql = SQLITE_LOAD.format(state=_STATE, payload="X'7b7d'", base=now - 6 * 3600 - jobs / 1000,
                             now=now)
    began = time.perf_counter()
    for first in range(1, jobs + 1, 200_000):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql, {"first": first, "last": min(jobs, first + 199_999)})
        conn.execute("COMMIT")
    for statement in SQLITE_RECOUNT:
        conn.execute(statement)
    conn.execute("ANALYZE")
    conn.close()
    return jobs, time.perf_counter() - began


def load_postgres(url: str, schema: str, jobs: int, budget: float) -> tuple[int, float]:
    import psycopg

    now = time.time()
    sql = PG_LOAD.replace("{schema}", f'"{schema}"').format(
        state=_STATE, payload="'\\x7b7d'::bytea", base=now - 6 * 3600 - jobs / 1000, now=now
    ).replace(" % ", " %% ")  # the modulo operator, beside psycopg's placeholders
    loaded, began = 0, time.perf_counter()
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        for first in range(1, jobs + 1, 500_000):
            if time.perf_counter() - began > budget:
                break
            conn.execute(sql, {"first": first, "last": min(jobs, first + 499_999)})
            loaded = min(jobs, first + 499_999)
            print(f"  loaded {loaded:,} in {time.perf_counter() - began:.0f} s", flush=True)
        conn.execute(f'VACUUM ANALYZE "{schema}".conveyor_jobs')
        # the side tables the insert triggers filled: unanalysed, a retention statement's
        # delete trigger scans conveyor_job_tails (2.5 s per 1,000 jobs at 10M, pgbatch)
        conn.execute(f'ANALYZE "{schema}".conveyor_job_tails, "{schema}".conveyor_job_batches')
    return loaded, time.perf_counter() - began


def stored_jobs(schema: str) -> int:
    """The jobs a kept schema holds (its planner estimate: exact enough to tell a load)."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        row = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = "
                           "to_regclass(%s)", (f'"{schema}".conveyor_jobs',)).fetchone()
    return max(0, row[0]) if row and row[0] is not None else 0


class Processes:
    """`conveyor serve` and the workers, in their own sessions; stopped with SIGTERM."""

    def __init__(self, url: str, folder: Path) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        self.env.update({"CONVEYOR_URL": url, "CONVEYOR_LOG_LEVEL": "WARNING",
                         "CONVEYOR_CONFIG": str(folder / "none.toml"),
                         "PYTHONPATH": os.pathsep.join(filter(None, [
                             str(HERE), self.env.get("PYTHONPATH")]))})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        self.procs[name] = subprocess.Popen([str(CONVEYOR), *args], cwd=self.folder,
                                            env=self.env, stdout=log, stderr=log,
                                            start_new_session=True)

    def stop(self, *names: str) -> None:
        for name in names:
            with contextlib.suppress(ProcessLookupError):
                self.procs[name].send_signal(signal.SIGTERM)
        for name in names:
            try:
                self.procs.pop(name).wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.procs[name].pid, signal.SIGKILL)


def reads(client: httpx.Client) -> list[tuple[str, str]]:
    """(label, path) of every read; the job page of a real job."""
    some = client.get("/api/v1/jobs", params={"limit": 1, "state": "dead"}).json()
    job_id = some["jobs"][0]["id"] if some.get("jobs") else "none"
    pages = [("overview", "/"), ("metrics", "/metrics"), ("dead page", "/dead"),
             ("queues page", "/queues"), ("stats API", "/api/v1/stats"),
             ("queues API", "/api/v1/queues"), ("workers API", "/api/v1/workers"),
             ("jobs page", "/jobs"), ("jobs page, dead", "/jobs?state=dead"),
             ("job page", f"/jobs/{job_id}"), ("job API", f"/api/v1/jobs/{job_id}")]
    filters = ["", "state=queued", "state=scheduled", "state=retrying", "state=running",
               "state=completed", "state=dead", "state=cancelled", "state=queued,running",
               "queue=q7", "task=bench.t3", "tenant=org-17", "correlation_id=corr-4242",
               "batch_id=batch-77", "task=bench.t3&state=dead", "queue=q7&state=running",
               "queue=q7&task=bench.t3&tenant=org-17&state=completed"]
    lists = [(f"jobs API {f or '(no filter)'}", f"/api/v1/jobs?limit=50&{f}") for f in filters]
    return pages + lists


def time_reads(client: httpx.Client, requests: int,
               only: set[str] | None = None) -> dict[str, tuple[float, float]]:
    timed = {}
    for label, path in reads(client):
        if only and label not in only:
            continue
        took = []
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(path)
            took.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        took.sort()
        timed[label] = (statistics.median(took), took[max(0, round(0.95 * len(took)) - 1)])
    return timed


def completed(client: httpx.Client) -> int:
    return int(client.get("/api/v1/stats").json()["by_state"]["completed"])


def drain_rate(client: httpx.Client, window: float, refresh: bool,
               paths: tuple[str, ...] = ("/",)) -> float:
    """Completed jobs/s over `window`; with a GET of each of `paths` every second alongside
    when `refresh`."""
    stop = threading.Event()

    def dashboard() -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as own:
            while not stop.is_set():
                began = time.perf_counter()
                for path in paths:
                    own.get(path)
                stop.wait(max(0.0, 1.0 - (time.perf_counter() - began)))

    refresher = threading.Thread(target=dashboard, daemon=True)
    if refresh:
        refresher.start()
    first, began = completed(client), time.perf_counter()
    time.sleep(window)
    rate = (completed(client) - first) / (time.perf_counter() - began)
    stop.set()
    if refresh:
        refresher.join()
    return rate


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wait_up(client: httpx.Client) -> None:
    for _ in range(300):
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/healthz").status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("conveyor serve did not come up")


def table(idle: dict[str, tuple[float, float]], busy: dict[str, tuple[float, float]]) -> None:
    print("| read | idle p50 ms | idle p95 ms | draining p50 ms | draining p95 ms |")
    print("| --- | --: | --: | --: | --: |")
    for label, (p50, p95) in idle.items():
        b50, b95 = busy.get(label, (float("nan"), float("nan")))
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {b50:.1f} | {b95:.1f} |")
    over = [label for label, (_, p95) in {**idle, **busy}.items() if p95 > 50]
    print(f"\nreads over p95 50 ms: {', '.join(sorted(set(over))) or 'none'}")


def write_json(path: str, run: dict[str, object], idle: dict[str, tuple[float, float]],
               busy: dict[str, tuple[float, float]], rates: dict[bool, list[float]]) -> None:
    """The figures as JSON, for comparing runs by script (`--json`)."""
    def figures(timed: dict[str, tuple[float, float]], label: str) -> dict[str, float] | None:
        return ({"p50_ms": round(timed[label][0], 3), "p95_ms": round(timed[label][1], 3)}
                if label in timed else None)

    report = {**run,
              "reads": {label: {"idle": figures(idle, label), "draining": figures(busy, label)}
                        for label in {**idle, **busy}},
              "drain_jobs_per_s": {"without_dashboard": rates[False],
                                   "with_dashboard": rates[True]}}
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--load-budget", type=float, default=300.0)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--snapshot", default=None, help="CONVEYOR_DASHBOARD_SNAPSHOT for the "
                        "server (seconds; 0: the overview and /metrics read on every request)")
    parser.add_argument("--only", default="", help="comma-separated labels of the reads to "
                        "time, e.g. 'overview,metrics' (default: all)")
    parser.add_argument("--schema", default=None, help="PostgreSQL: load into this schema and "
                        "keep it; a later run with the same --schema reuses its jobs (the load "
                        "of 10,000,000 jobs takes longer than the reads)")
    parser.add_argument("--load-only", action="store_true",
                        help="load (with --schema: keep) and stop, timing nothing")
    parser.add_argument("--refresh", default="/", help="comma-separated paths the dashboard "
                        "of the drain-rate rounds GETs every second (default: '/')")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the figures to PATH as JSON")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="conveyor-reads-"))
    schema = args.schema or f"bench_reads_{os.getpid()}"
    url = (f"sqlite:///{folder / 'reads.db'}" if args.store == "sqlite"
           else f"{PG}?schema={schema}")
    sys.path.insert(0, str(HERE))
    os.environ["CONVEYOR_URL"] = url
    from reads_app import app

    app.migrate()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"# reads at size: {args.store}, {started}")
    print(f"uptime: {uptime()}")
    kept = args.store == "postgres" and args.schema is not None and stored_jobs(schema) > 0
    if kept:
        loaded, took = stored_jobs(schema), 0.0
        print(f"reusing the {loaded:,} jobs of schema {schema}")
    else:
        loaded, took = (load_sqlite(folder / "reads.db", args.jobs) if args.store == "sqlite"
                        else load_postgres(url, schema, args.jobs, args.load_budget))
        print(f"loaded {loaded:,} jobs in {took:.0f} s (with ANALYZE; VACUUM too on PostgreSQL)")
    began = time.perf_counter()  # as the workers' maintenance and `conveyor serve` do
    folded = app.call(lambda store: store.fold_counts())
    print(f"folded the load's {folded:,} counter keys in {time.perf_counter() - began:.1f} s")
    app.close()
    if args.load_only:
        return
    processes = Processes(url, folder)
    if args.snapshot is not None:
        processes.env["CONVEYOR_DASHBOARD_SNAPSHOT"] = args.snapshot
        print(f"CONVEYOR_DASHBOARD_SNAPSHOT={args.snapshot}")
    try:
        processes.start("serve", "serve", "--port", str(args.port))
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as client:
            wait_up(client)
            only = set(filter(None, args.only.split(",")))
            time_reads(client, 2, only)  # warm: templates, caches, prepared statements
            idle = time_reads(client, args.requests, only)
            for n in range(2):
                processes.start(f"worker{n}", "worker", "--app", "reads_app:app", "--queues",
                                ",".join(QUEUES), "--concurrency", "20")
            time.sleep(5)
            busy = time_reads(client, max(5, args.requests // 2), only)
            rates: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for refresh in (False, True):
                    rates[refresh].append(drain_rate(client, args.window, refresh,
                                                     tuple(args.refresh.split(","))))
            print(f"uptime: {uptime()}")
            print(f"\n{args.requests} requests per read idle, {max(5, args.requests // 2)} while "
                  "2 workers (concurrency 20 each) drain\n")
            table(idle, busy)
            plain, refreshed = (statistics.median(rates[r]) for r in (False, True))
            print(f"\ndrain, jobs/s over {args.window:.0f} s windows, alternating, median of "
                  f"{args.rounds}: without a dashboard {plain:,.0f} "
                  f"({', '.join(f'{r:,.0f}' for r in rates[False])}); with GET "
                  f"{args.refresh} every second "
                  f"{refreshed:,.0f} ({', '.join(f'{r:,.0f}' for r in rates[True])}): "
                  f"{(refreshed / plain - 1) * 100 if plain else float('nan'):+.1f} %")
            if args.json:
                write_json(args.json, {
                    "store": args.store, "jobs": args.jobs, "loaded": loaded,
                    "started": started, "uptime": uptime(), "requests_idle": args.requests,
                    "requests_draining": max(5, args.requests // 2),
                    "snapshot": args.snapshot, "refresh": args.refresh}, idle, busy, rates)
    finally:
        processes.stop(*list(processes.procs))
        if args.store == "postgres" and args.schema is None:
            import psycopg

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
