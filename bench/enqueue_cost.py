"""Single enqueue's cost, source trees A/B: `app.enqueue("job", {"ms": 0})` one call at a time
on a fresh store, as the peer harness's enqueue phase does it (bench/peers/conveyor_sqlite.py:
SQLite WAL, synchronous=NORMAL; or PostgreSQL with `--url`), in a child process per tree and
round, trees rotated round by round (A B, B A, ...); medians per tree. Each child reports wall
µs per enqueue and its own CPU µs per enqueue (from /proc, via os.times): CPU is steadier on
a shared machine. `--bulk`: also enqueue_many of 1,000 (µs per job).

A tree is a directory holding src/conveyor (`/tmp/enq-base` from
`git archive 0303058 src | tar -x -C /tmp/enq-base`) or `.` for this checkout; `@SQL` after a
tree runs that SQL on the fresh store after its migrations (a knock-out: `@DROP INDEX
conveyor_jobs_id_tail`; write a comma inside the SQL as `%2C`).

    PYTHONPATH= /work/main/.venv/bin/python bench/enqueue_cost.py --trees /tmp/enq-base,. \
        --rounds 5 --singles 5000
    ... --url postgresql://postgres@127.0.0.1:5432/postgres  (a fresh database per child)
    ... --trees . --profile /tmp/enq.prof   (cProfile of the single enqueues, one child)
    ... --lookup 1000000 --rounds 1   (suffix lookups' p50/p95 at a million jobs)
    ... --statements   (the same transactions from a bare sqlite3 loop: BEGIN IMMEDIATE,
        INSERT, the count upsert, COMMIT timed apart; app.enqueue's CPU less this = Python)

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PYTHON = sys.executable
PG_DATABASE = "bench_enqueue_cost"

CHILD = r'''
import json, os, sys, time
from conveyor import Conveyor, Settings

url, singles, bulk, sql, profile = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                    sys.argv[4], sys.argv[5])
extra = {"sqlite_synchronous": "NORMAL"} if url.startswith("sqlite") else {}
app = Conveyor(settings=Settings.load(url=url, log_level="WARNING", **extra))


@app.task()
async def job(ctx, payload):
    return None


app.migrate()
if sql:
    if url.startswith("sqlite"):
        import sqlite3
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        conn.executescript(sql)
        conn.close()
for _ in range(200):  # warm-up: connections, prepared statements, caches
    app.enqueue("job", {"ms": 0})


def timed(fn, n):
    c0, t0 = os.times(), time.perf_counter()
    fn()
    t1, c1 = time.perf_counter(), os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return round((t1 - t0) / n * 1e6, 2), round(cpu / n * 1e6, 2)


def singles_loop():
    enqueue = app.enqueue
    for _ in range(singles):
        enqueue("job", {"ms": 0})


out = {}
if profile:
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
    out["single"] = timed(singles_loop, singles)
    prof.disable()
    prof.dump_stats(profile)
else:
    out["single"] = timed(singles_loop, singles)
if bulk:
    items = [{"task": "job", "payload": {"ms": 0}}] * 1000
    out["bulk"] = timed(lambda: [app.enqueue_many(items) for _ in range(bulk // 1000)], bulk)
app.close()
print(json.dumps(out))
'''


STATEMENTS = r'''
import json, os, sqlite3, sys, time
from conveyor import Conveyor, Settings
from conveyor.store.sqlite import queries as q

url, n, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
app = Conveyor(settings=Settings.load(url=url, log_level="WARNING"))
app.migrate()
app.close()
conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None, cached_statements=256)
for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -16000"):
    conn.execute("PRAGMA " + pragma)
conn.executescript(sql)
counted = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'conveyor_counts'").fetchone()
COUNT = """INSERT INTO conveyor_counts (queue, task, state, n) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, task, state) DO UPDATE SET n = n + excluded.n"""
width = q.INSERT_JOB.count("?")
ids = [os.urandom(16).hex() for _ in range(n + 200)]
rows = [(f"{i[:8]}-{i[8:12]}-7{i[13:16]}-8{i[17:20]}-{i[20:]}", "job", "default", "queued", 0,
         b'{"ms":0}', "", None, None, None, None, 3, 1e9 + k, 1e9 + k, None, None, None, None,
         None)[:width] for k, i in enumerate(sorted(ids))]
spent = {"begin": 0, "insert": 0, "count": 0, "commit": 0}
clock = time.perf_counter_ns
c0 = None
for k, row in enumerate(rows):
    if k == 200:
        c0, spent = os.times(), dict.fromkeys(spent, 0)
    a = clock()
    conn.execute("BEGIN IMMEDIATE")
    b = clock()
    conn.execute(q.INSERT_JOB, row)
    c = clock()
    if counted:
        conn.execute(COUNT, ("default", "job", "queued", 1))
    d = clock()
    conn.execute("COMMIT")
    e = clock()
    spent["begin"] += b - a
    spent["insert"] += c - b
    spent["count"] += d - c
    spent["commit"] += e - d
c1 = os.times()
out = {k: round(v / n / 1000, 2) for k, v in spent.items()}
out["wall"] = round(sum(spent.values()) / n / 1000, 2)
out["cpu"] = round((c1.user - c0.user + c1.system - c0.system) / n * 1e6, 2)
print(json.dumps({"statements": out}))
'''


LOOKUP = r'''
import asyncio, json, os, random, sqlite3, statistics, sys, time
from conveyor import Conveyor, Settings
from conveyor.job import new_id

url, n = sys.argv[1], int(sys.argv[2])
app = Conveyor(settings=Settings.load(url=url, log_level="WARNING"))
app.migrate()
app.close()
conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = OFF")
ids = []
for start in range(0, n, 10_000):
    batch = new_id.many(min(10_000, n - start))
    ids += batch
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO conveyor_jobs (id, task, queue, state, priority, payload, "
                     "tenant, max_attempts, created_at, run_at) VALUES "
                     "(?, 'job', 'default', 'queued', 0, '{}', '', 3, 1e9, 1e9)",
                     [(i,) for i in batch])
    conn.execute("COMMIT")
conn.close()
store = Conveyor(settings=Settings.load(url=url, log_level="WARNING")).store
out = {}
for width in (4, 6, 12):
    took = []
    for job_id in random.sample(ids, 300):
        t = time.perf_counter()
        asyncio.run(store.find_ids(job_id[-width:]))
        took.append(time.perf_counter() - t)
    took.sort()
    out[f"suffix {width}"] = {"p50_ms": round(took[150] * 1e3, 2),
                              "p95_ms": round(took[284] * 1e3, 2)}
print(json.dumps({"lookup": out}))
'''


def fresh_url(base: str | None, workdir: str, index: int) -> str:
    if base is None:
        return f"sqlite:///{workdir}/enqueue-{index}.db"
    import psycopg
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    return base.rsplit("/", 1)[0] + "/" + PG_DATABASE


def run_child(tree: str, url: str, args: argparse.Namespace, profile: str = "") -> dict:
    path, _, sql = tree.partition("@")
    sql = sql.replace("%2C", ",")  # a comma inside a variant's SQL
    env = {**os.environ, "PYTHONPATH": str(Path(path).resolve() / "src")}
    if args.lookup:
        argv = [PYTHON, "-c", LOOKUP, url, str(args.lookup)]
    elif args.statements:
        argv = [PYTHON, "-c", STATEMENTS, url, str(args.singles), sql]
    else:
        argv = [PYTHON, "-c", CHILD, url, str(args.singles), str(args.bulk), sql, profile]
    done = subprocess.run(argv,
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", default="/tmp/enq-base,.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=5000)
    parser.add_argument("--bulk", type=int, default=0, help="jobs enqueued 1,000 a call")
    parser.add_argument("--url", default=None, help="a PostgreSQL admin URL (default: SQLite)")
    parser.add_argument("--profile", default="", help="cProfile the first tree's singles")
    parser.add_argument("--json", default="")
    parser.add_argument("--lookup", type=int, default=0,
                        help="SQLite: fill a store with this many jobs, then time find_ids "
                             "by suffixes of 4, 6 and 12 characters (p50, p95 ms)")
    parser.add_argument("--statements", action="store_true",
                        help="SQLite: the enqueue's statements alone (BEGIN IMMEDIATE, INSERT, "
                             "the count upsert when the tree counts, COMMIT), timed apart")
    args = parser.parse_args()
    trees = args.trees.split(",")
    with tempfile.TemporaryDirectory() as workdir:
        if args.profile:
            print(run_child(trees[0], fresh_url(args.url, workdir, 0), args, args.profile))
            return
        runs: dict[str, list[dict]] = {t: [] for t in trees}
        index = 0
        for r in range(args.rounds):
            for tree in trees[r % len(trees):] + trees[:r % len(trees)]:
                index += 1
                result = run_child(tree, fresh_url(args.url, workdir, index), args)
                runs[tree].append(result)
                print(f"round {r + 1} {tree}: {result}", flush=True)
    print("\nmedians (wall µs, CPU µs) per enqueue:")
    summary: dict[str, dict] = {}
    for tree, results in runs.items():
        if args.lookup:
            summary[tree] = results[-1]["lookup"]
            print(f"  {tree}: {summary[tree]}")
            continue
        if args.statements:
            summary[tree] = {k: statistics.median(x["statements"][k] for x in results)
                             for k in results[0]["statements"]}
            print(f"  {tree}: {summary[tree]}")
            continue
        row = {kind: (statistics.median(x[kind][0] for x in results),
                      statistics.median(x[kind][1] for x in results))
               for kind in results[0]}
        summary[tree] = row
        shown = "  ".join(f"{k}: {w:.1f} wall ({1e6 / w:,.0f}/s), {c:.1f} CPU"
                          for k, (w, c) in row.items())
        print(f"  {tree}: {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "medians": summary}, indent=1))


if __name__ == "__main__":
    main()
