"""Issue 14: what the PostgreSQL backends of a real drain wait on, per source tree.

Each drain is self_counted_ab.py's (limit_drain.py's: a fresh database, `--jobs` no-op jobs
enqueued in bulk, one real `conveyor worker --concurrency 10 --processes P`), run in a child
with PYTHONPATH=<tree>/src. Meanwhile this process samples pg_stat_activity every
`--interval` seconds (the drain's database, client backends): each backend's state and wait
event, the first words of its query, and for a backend waiting on a lock the lock it waits
for (pg_locks, not granted) and the pids blocking it. Only samples between the drain's first
and last job start count. Each backend's CPU (/proc) is read at every sighting, so backends
that connect after the drain began (the second process's pool) are counted too (from their
first sighting).

Prints per drain, and summed per tree and process count: the share of backend samples in
each state / wait event, the top queries behind lock waits and behind "idle in transaction",
the mean number of backends active (on CPU or waiting) per sample, and CPU per job of the
worker processes and of the backends. Trees alternate within a round, the order flipped each
round. The sampling costs CPU itself: compare trees under it, and take rates from
self_counted_ab.py (no sampler).

    /work/main/.venv/bin/python bench/pg_waits.py --trees /tmp/base,/work/main --rounds 2

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import limit_drain  # noqa: E402  (bench/: the drain itself)

DATABASE = "bench_pg_waits"
limit_drain.PG_DATABASE = DATABASE

SAMPLE = """
SELECT a.pid, a.state, coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU'),
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70),
       CASE WHEN a.wait_event_type = 'Lock' THEN (
           SELECT string_agg(l.locktype || ' ' || l.mode || ' '
                             || coalesce(l.relation::regclass::text, '')
                             || coalesce(' ' || l.objid::text, ''), ',')
           FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) END,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END
FROM pg_stat_activity a
WHERE a.datname = %s AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
"""
# Server-wide counters (other databases' work counts too: read them on a quiet server)
TOTALS = """
SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
       w.wal_records, w.wal_bytes, w.wal_write, w.wal_sync
FROM pg_stat_database AS d, pg_stat_wal AS w WHERE d.datname = %s"""
TOTAL_NAMES = ("commits", "rollbacks", "inserted", "updated", "deleted", "wal_records",
               "wal_bytes", "wal_writes", "wal_syncs")


class Sampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.samples: list[tuple[float, list[tuple]]] = []
        self.cpu: dict[int, list[tuple[float, float]]] = {}  # pid -> [(t, cpu s)]
        self.totals: list[tuple[float, tuple]] = []

    def run(self) -> None:
        import psycopg

        with psycopg.connect(limit_drain.PG_ADMIN, autocommit=True) as conn:
            while not self.stop.is_set():
                t = time.time()
                with contextlib.suppress(psycopg.Error):
                    rows = conn.execute(SAMPLE, (DATABASE,)).fetchall()
                    if len(self.samples) % 10 == 0:
                        conn.execute("SELECT pg_stat_clear_snapshot()")
                        got = conn.execute(TOTALS, (DATABASE,)).fetchone()
                        if got:
                            self.totals.append((t, tuple(map(float, got))))
                    self.samples.append((t, rows))
                    for row in rows:
                        with contextlib.suppress(OSError):
                            self.cpu.setdefault(row[0], []).append(
                                (t, limit_drain.cpu_seconds(row[0])))
                self.stop.wait(max(0.0, self.interval - (time.time() - t)))


def summarise(sampler: Sampler, first: float, last: float, done: int) -> dict[str, object]:
    states: Counter[str] = Counter()
    lock_queries: Counter[str] = Counter()
    locks: Counter[str] = Counter()
    idle_tx: Counter[str] = Counter()
    n = 0
    busy = 0
    any_of: Counter[str] = Counter()  # samples with >= 1 backend in this wait
    for t, rows in sampler.samples:
        if not first <= t <= last:
            continue
        n += 1
        any_of.update({f"{state}/{r[2]}" if state == "active" else str(state)
                       for r in rows for state in (r[1],)})
        for _pid, state, wait, query, lock, _blockers in rows:
            key = f"{state}/{wait}" if state == "active" else str(state)
            states[key] += 1
            if state == "active":
                busy += 1
            if wait.startswith("Lock:"):
                lock_queries[query] += 1
                locks[f"{wait} {lock}"] += 1
            if state and state.startswith("idle in transaction"):
                idle_tx[query] += 1
    backend_cpu = 0.0
    for readings in sampler.cpu.values():
        inside = [c for t, c in readings if first <= t <= last]
        if len(inside) > 1:
            backend_cpu += inside[-1] - inside[0]
    inside_totals = [v for t, v in sampler.totals if first <= t <= last]
    per_job = {}
    if len(inside_totals) > 1 and done:
        per_job = {name: (b - a) / done for name, a, b in
                   zip(TOTAL_NAMES, inside_totals[0], inside_totals[-1], strict=True)}
    return {"per_job": per_job, "samples": n, "states": dict(states),
            "lock_queries": dict(lock_queries), "locks": dict(locks), "any_of": dict(any_of),
            "dt": (last - first) / n if n else 0.0, "idle_tx_queries": dict(idle_tx),
            "active_per_sample": busy / n if n else 0.0,
            "backends_us": backend_cpu / done * 1e6 if done else 0.0}


def one(tree: Path, processes: int, args: argparse.Namespace, workdir: Path
        ) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    sampler = Sampler(args.interval)
    sampler.start()
    try:
        out = subprocess.run(
            [sys.executable, str(HERE), "--child", "--jobs", str(args.jobs),
             "--processes", str(processes), "--limit", str(args.limit),
             "--workdir", str(workdir)],
            env=env, check=True, stdout=subprocess.PIPE, text=True)
    finally:
        sampler.stop.set()
        sampler.join()
    got = json.loads(out.stdout.strip().splitlines()[-1])
    times = sorted(float(line.split()[0]) for line in
                   (workdir / "marks").read_bytes().splitlines() if line.strip())
    return {**got, **summarise(sampler, times[0], times[-1], len(times))}


def show(title: str, drains: list[dict]) -> None:
    states: Counter[str] = Counter()
    lock_queries: Counter[str] = Counter()
    locks: Counter[str] = Counter()
    idle_tx: Counter[str] = Counter()
    for d in drains:
        states.update(d["states"])
        lock_queries.update(d["lock_queries"])
        locks.update(d["locks"])
        idle_tx.update(d["idle_tx_queries"])
    total = sum(states.values()) or 1
    jobs = sum(d["done"] for d in drains)
    samples = sum(d["samples"] for d in drains)
    active = sum(d["active_per_sample"] for d in drains) / len(drains)
    print(f"== {title}: {len(drains)} drains, {samples} samples, "
          f"rate {[round(d['rate']) for d in drains]}, "
          f"active backends/sample {active:.2f}, "
          f"worker µs/job {[round(d['worker_us']) for d in drains]}, "
          f"backends µs/job {[round(d['backends_us']) for d in drains]}, cores busy "
          f"{[round(d['rate'] * (d['worker_us'] + d['backends_us']) / 1e6, 2) for d in drains]}")
    print("   per job: " + ", ".join(
        f"{k} {[round(d['per_job'].get(k, 0.0), 2) for d in drains]}" for k in TOTAL_NAMES))
    any_of: Counter[str] = Counter()
    for d in drains:
        any_of.update(d.get("any_of", {}))
    dt = sum(d["dt"] * d["samples"] for d in drains) / (samples or 1)  # s per sample
    print(f"   (one sample per {dt * 1e3:.1f} ms) share of backend samples | backend-ms per "
          "1k jobs | share of samples with >= 1 backend in it")
    for key, count in states.most_common():
        print(f"   {count / total:6.1%}  {count * dt / jobs * 1e6:7.1f}  "
              f"{any_of[key] / (samples or 1):6.1%}  {key}")
    for label, counter in (("lock waits by query", lock_queries), ("locks waited", locks),
                           ("idle in transaction, last query", idle_tx)):
        if counter:
            print(f"   {label}:")
            for key, count in counter.most_common(8):
                print(f"     {count:6d}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", help="comma-separated repo roots (with src/)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--limit", type=int, default=0, help="the queue's cap (0: none)")
    parser.add_argument("--json", help="write every drain here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        limit_drain.unlimited_pg_child(args.workdir, args.jobs, int(args.processes),
                                       args.limit)
        return
    if not args.trees:
        parser.error("--trees a,b[,...]")
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="pg-waits-"))
    (workdir / "limit_drain_app.py").write_text(limit_drain.APP)
    results: list[dict] = []
    for round_no in range(args.rounds):
        for processes in map(int, args.processes.split(",")):
            order = trees if round_no % 2 == 0 else trees[::-1]
            for tree in order:
                got = one(tree, processes, args, workdir)
                results.append({"round": round_no, "tree": str(tree), "processes": processes,
                                **got})
                show(f"round {round_no} P={processes} {tree}", [got])
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
    print("\n#### summed over rounds")
    for processes in map(int, args.processes.split(",")):
        for tree in trees:
            show(f"P={processes} {tree}", [r for r in results if r["tree"] == str(tree)
                                           and r["processes"] == processes])


if __name__ == "__main__":
    main()
