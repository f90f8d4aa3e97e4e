"""Issue 14: does a queue limited to 20 running jobs drain at >= 80 % of the unlimited rate?

The peer harness's drain, outside the harness: a fresh PostgreSQL database (or SQLite file),
`--jobs` no-op jobs enqueued in bulk, then one real `python -m conveyor worker --app ...
--concurrency 10 --processes 2` (the options bench/peers/conveyor_limit20_pg.py's worker runs
with) drains them, timed from the first job's start to the last job's start (each job appends
its start time and its process id to a marks file, as the harness's jobs append their start).
Each round drains once unlimited and once with the queue limited (`app.limits.set`, as the
adapter does), alternating which goes first, for each source tree given; the ratio is taken
within a round (other processes load the machine), and the median ratio is reported. Per
drain it also prints how many jobs each worker process ran.

    /work/main/.venv/bin/python bench/limit_drain.py --trees /work/main,. --rounds 5
    /work/main/.venv/bin/python bench/limit_drain.py --stores sqlite,postgres --rounds 3

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
import time
from collections import Counter
from pathlib import Path

PYTHON = sys.executable
HERE = Path(__file__).resolve()
# DRAIN_PG_ADMIN: another server (a private one, away from other benches' WAL and locks)
PG_ADMIN = os.environ.get("DRAIN_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("DRAIN_PG_DATABASE", "bench_limit_drain")  # another: parallel runs
MARK = 26  # bytes per job start in the marks file: b"%.6f %07d\n"

APP = '''
import os, time
from conveyor import Conveyor, Settings

_fd = None
url = os.environ["DRAIN_URL"]
extra = {"sqlite_synchronous": "NORMAL"} if url.startswith("sqlite") else {}
app = Conveyor(settings=Settings.load(url=url, log_level="WARNING", **extra))


@app.task()
async def job(ctx, payload):
    global _fd
    t0 = time.time()
    if _fd is None:
        _fd = os.open(os.environ["DRAIN_MARKS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%.6f %07d\\n" % (t0, os.getpid()))
'''


def fresh_store(store: str, workdir: Path) -> str:
    if store == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            (workdir / f"drain.db{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{workdir / 'drain.db'}"
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DATABASE


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that has gone
            found[pid] = cpu_seconds(pid)
    return found


def worker_pids(supervisor: int) -> list[int]:
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError:
        children = []
    return [supervisor, *map(int, children)]


def backend_pids(url: str) -> list[int]:
    if not url.startswith("postgres"):
        return []
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                            (PG_DATABASE,)).fetchall()
    return [r[0] for r in rows]


def db_counters(url: str) -> dict[str, int]:
    """The drain database's buffer hits and reads, and rows fetched (pg_stat_database: each
    backend flushes its counts at most once a second, so a drain's are within a second's)."""
    if not url.startswith("postgres"):
        return {}
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute("SELECT blks_hit + blks_read, tup_fetched FROM pg_stat_database"
                           " WHERE datname = %s", (PG_DATABASE,)).fetchone()
    return {"buffers": int(row[0]), "fetched": int(row[1])} if row else {}


def child(args: argparse.Namespace) -> None:
    """In a process with PYTHONPATH=<tree>/src: one drain, printed as JSON."""
    workdir = Path(args.workdir)
    sys.path.insert(0, str(workdir))
    url = fresh_store(args.store, workdir)
    os.environ["DRAIN_URL"] = url
    import limit_drain_app  # written to workdir

    app = limit_drain_app.app
    app.migrate()
    if args.limit:
        app.limits.set("queue", "default", concurrency=args.limit)
    for start in range(0, args.jobs, 1000):
        app.enqueue_many([{"task": "job", "payload": {"ms": 0}}] * min(1000, args.jobs - start))
    app.close()
    marks = workdir / "marks"
    marks.write_bytes(b"")
    env = {**os.environ, "DRAIN_MARKS": str(marks)}
    command = [PYTHON, "-m", "conveyor", "worker", "--app", "limit_drain_app:app",
               "--concurrency", str(args.concurrency), "--processes", str(args.processes)]
    worker = subprocess.Popen(command, env=env, cwd=workdir, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    workers0: dict[int, float] = {}
    server0: dict[int, float] = {}
    db0: dict[str, int] = {}
    db1: dict[str, int] = {}
    try:
        deadline = time.time() + args.timeout
        while (size := marks.stat().st_size) < args.jobs * MARK:
            if size and not workers0:  # the drain began: its CPU from here on
                workers0 = cpu_of(worker_pids(worker.pid))
                server0 = cpu_of(backend_pids(url))
                db0 = db_counters(url)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")
            if time.time() > deadline:
                break
            time.sleep(0.005)
        workers1, server1 = cpu_of(list(workers0)), cpu_of(list(server0))
        db1 = db_counters(url)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    rows = [line.split() for line in marks.read_bytes().splitlines() if line.strip()]
    times = sorted(float(t) for t, _ in rows)
    per_process = sorted(Counter(pid for _, pid in rows).values(), reverse=True)
    done = len(times)
    rate = (done - 1) / (times[-1] - times[0]) if done > 1 else 0.0
    worker_cpu = sum(workers1[p] - workers0[p] for p in workers1)
    server_cpu = sum(server1[p] - server0[p] for p in server1)
    print(json.dumps({"rate": rate, "done": done, "per_process": per_process,
                      "worker_us": worker_cpu / done * 1e6, "server_us": server_cpu / done * 1e6,
                      **{f"{k}_per_job": (db1[k] - db0[k]) / done for k in db1 if k in db0}}))


def unlimited_pg_child(workdir: str, jobs: int, processes: int, limit: int = 0) -> None:
    """`child` for the benches that drain PostgreSQL at the harness's 10 slots, unlimited
    unless `limit` (self_counted_ab.py, pg_waits.py)."""
    child(argparse.Namespace(workdir=workdir, store="postgres", limit=limit, jobs=jobs,
                             processes=processes, concurrency=10, timeout=300.0))


def one(tree: Path, store: str, limit: int, args: argparse.Namespace, workdir: Path
        ) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(
        [PYTHON, str(HERE), "--child", "--store", store, "--limit", str(limit),
         "--jobs", str(args.jobs), "--processes", str(args.processes),
         "--concurrency", str(args.concurrency),
         "--timeout", str(args.timeout), "--workdir", str(workdir)],
        env=env, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", default=".", help="comma-separated repo roots (with src/)")
    parser.add_argument("--stores", default="postgres")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10,
                        help="each worker process's slots (it prefetches as many)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", help="write every drain here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="limit-drain-"))
    (workdir / "limit_drain_app.py").write_text(APP)
    ratios: dict[tuple[str, str], list[float]] = {}
    results = []
    for round_no in range(args.rounds):
        for store in args.stores.split(","):
            for tree in trees:
                modes = [0, args.limit] if round_no % 2 == 0 else [args.limit, 0]
                got = {mode: one(tree, store, mode, args, workdir) for mode in modes}
                ratio = float(got[args.limit]["rate"]) / float(got[0]["rate"])  # type: ignore[arg-type]
                ratios.setdefault((str(tree), store), []).append(ratio)
                results.append({"round": round_no, "tree": str(tree), "store": store,
                                "unlimited": got[0], "limited": got[args.limit],
                                "ratio": ratio})
                print(f"round {round_no} {store:8} {tree.name:10} ratio {ratio:.2f}  " + "  ".join(
                    f"{name} {d['rate']:5.0f}/s {d['per_process']} cpu/job worker "
                    f"{d['worker_us']:.0f} + server {d['server_us']:.0f} us"
                    f" buf/job {d.get('buffers_per_job', 0):.0f}"
                    f" fetched/job {d.get('fetched_per_job', 0):.0f}"
                    for name, d in (("unlimited", got[0]), (f"limit {args.limit}",
                                                            got[args.limit]))), flush=True)
    for (tree, store), values in ratios.items():
        print(f"median ratio {store} {Path(tree).name}: {statistics.median(values):.2f} "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
