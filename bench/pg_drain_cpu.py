"""Issues 14/15: PostgreSQL server CPU per job of the unlimited drain, source trees interleaved.

Each drain is limit_drain.py's (a fresh database, `--jobs` no-op jobs enqueued in bulk, one real
`conveyor worker --concurrency 10 --processes P` draining them), unlimited, in its own database
(BENCH_DATABASE, default bench_pgdrain). Per drain: the rate (first start to last), the worker
processes' CPU and the PostgreSQL backends' CPU (every backend of the drain's database, found
again through the drain so that pool connections opened late count too) per job. Trees
alternate within each round, the order flipped each round; prints the medians per tree and
each tree's per-round ratio to the first.

    /work/main/.venv/bin/python bench/pg_drain_cpu.py --trees /tmp/old,. --rounds 4

`--perf FILE` (one tree, one drain): `perf record -g` on the drain's backends while it runs
(then `perf report -i FILE --no-children`). `--log` (one drain): log_min_duration_statement = 0
on the drain's database, for the statements' texts and durations in the server's log.

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
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
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import limit_drain  # noqa: E402  (bench/: the drain's app and helpers)

limit_drain.PG_DATABASE = os.environ.get("BENCH_DATABASE", "bench_pgdrain")


def child(args: argparse.Namespace) -> None:
    """In a process with PYTHONPATH=<tree>/src: one drain, printed as JSON."""
    workdir = Path(args.workdir)
    sys.path.insert(0, str(workdir))
    url = limit_drain.fresh_store("postgres", workdir)
    if args.log:
        import psycopg

        with psycopg.connect(limit_drain.PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {limit_drain.PG_DATABASE} "
                         "SET log_min_duration_statement = 0")
    os.environ["DRAIN_URL"] = url
    import limit_drain_app  # written to workdir

    app = limit_drain_app.app
    app.migrate()
    for start in range(0, args.jobs, 1000):
        app.enqueue_many([{"task": "job", "payload": {"ms": 0}}] * min(1000, args.jobs - start))
    app.close()
    marks = workdir / "marks"
    marks.write_bytes(b"")
    env = {**os.environ, "DRAIN_MARKS": str(marks)}
    command = [limit_drain.PYTHON, "-m", "conveyor", "worker", "--app", "limit_drain_app:app",
               "--concurrency", "10", "--processes", str(args.processes)]
    worker = subprocess.Popen(command, env=env, cwd=workdir, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    workers0: dict[int, float] = {}
    server0: dict[int, float] = {}
    perf = None
    looked = 0.0
    try:
        deadline = time.time() + 300
        while (size := marks.stat().st_size) < args.jobs * limit_drain.MARK:
            if size and not workers0:  # the drain began: its CPU from here on
                workers0 = limit_drain.cpu_of(limit_drain.worker_pids(worker.pid))
                server0 = limit_drain.cpu_of(limit_drain.backend_pids(url))
                looked = time.time()
                if args.perf:
                    perf = subprocess.Popen(
                        ["perf", "record", "-g", "-o", args.perf, "-p",
                         ",".join(map(str, server0))],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elif workers0 and time.time() > looked + 0.5:
                # backends that connected after the start (the pool growing): from 0
                looked = time.time()
                for pid in limit_drain.backend_pids(url):
                    server0.setdefault(pid, 0.0)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")
            if time.time() > deadline:
                break
            time.sleep(0.005)
        workers1, server1 = limit_drain.cpu_of(list(workers0)), limit_drain.cpu_of(list(server0))
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
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
                      "worker_us": worker_cpu / done * 1e6,
                      "server_us": server_cpu / done * 1e6, "backends": len(server1),
                      "vacuums": vacuums(url)}))


def vacuums(url: str) -> int:
    """VACUUM statements run on the drain database's tables (pg_stat_user_tables'
    vacuum_count, written as each vacuum ends): the store's own, after its folds."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        [(count,)] = conn.execute(
            "SELECT coalesce(sum(vacuum_count), 0) FROM pg_stat_user_tables").fetchall()
    return int(count)


def one(tree: Path, processes: int, args: argparse.Namespace, workdir: Path
        ) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    extra = (["--perf", args.perf] if args.perf else []) + (["--log"] if args.log else [])
    out = subprocess.run(
        [sys.executable, str(HERE), "--child", "--jobs", str(args.jobs), "--processes",
         str(processes), "--workdir", str(workdir), *extra],
        env=env, check=True, stdout=subprocess.PIPE, text=True)
    got: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=".", help="base,branch[,...]: repo roots (with src/)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", default="2,1")
    parser.add_argument("--json", help="write every drain here")
    parser.add_argument("--perf", help="perf record the backends into this file")
    parser.add_argument("--log", action="store_true", help="log every statement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="pg-drain-cpu-"))
    (workdir / "limit_drain_app.py").write_text(limit_drain.APP)
    results: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for processes in map(int, args.processes.split(",")):
            order = trees if round_no % 2 == 0 else trees[::-1]
            for tree in order:
                before = load()
                got = one(tree, processes, args, workdir)
                results.append({"round": round_no, "tree": str(tree), "processes": processes,
                                "load": before, **got})
                print(f"round {round_no} P{processes} {tree.name:14} {got['rate']:6.0f}/s "
                      f"worker {got['worker_us']:5.1f} server {got['server_us']:5.1f} us/job "
                      f"({got['backends']} backends, {got.get('vacuums', '?')} vacuums, "
                      f"load {before:.1f})", flush=True)
    for processes in map(int, args.processes.split(",")):
        mine = [r for r in results if r["processes"] == processes]
        first = {r["round"]: r for r in mine if r["tree"] == str(trees[0])}
        for tree in trees:
            rs = [r for r in mine if r["tree"] == str(tree)]
            ratio_rate = [r["rate"] / first[r["round"]]["rate"] for r in rs]
            ratio_server = [r["server_us"] / first[r["round"]]["server_us"] for r in rs]
            rate = statistics.median(r["rate"] for r in rs)
            print(f"P{processes} {tree.name:14} rate {rate:6.0f}/s"
                  f" (x{statistics.median(ratio_rate):.3f}) worker "
                  f"{statistics.median(r['worker_us'] for r in rs):5.1f} server "
                  f"{statistics.median(r['server_us'] for r in rs):5.1f} us/job "
                  f"(x{statistics.median(ratio_server):.3f}; rounds "
                  f"{', '.join(f'{v:.2f}' for v in ratio_server)})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
