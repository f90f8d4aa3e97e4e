"""What a worker's start-up does to the claims of the workers already running (PostgreSQL).
Figures and evidence only: it asserts nothing.

    PYTHONPATH=src .venv/bin/python bench/startup_locks.py [--app limitapp:app --queue rated
        --rate 50/s --workers 4 --apart 0.3 --seconds 8]

Jobs wait in a rated queue; real `conveyor worker` processes start one after another
(`--apart` seconds, not waiting for each other), as in the test run that stalled. A sampler
reads pg_stat_activity every 20 ms: each backend of this schema waiting on a lock, what it
runs and who blocks it (pg_blocking_pids). Each worker connects with its own
application_name (w0, w1, ...) and `log_lock_waits=on` (a lock wait longer than
deadlock_timeout reaches the server log). At the end: the lock waits seen, the longest pauses
between the store's start times with which workers claimed around them, and the workers'
warnings (a claim failed by a deadlock is logged as "store unavailable, retrying").
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from conveyor import Conveyor, JobFilter

HERE = Path(__file__).resolve().parent
BASE = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
WAITS = """
SELECT application_name, pid, pg_blocking_pids(pid), left(regexp_replace(query, '\\s+', ' ',
    'g'), 90), now() - query_start
FROM pg_stat_activity WHERE application_name LIKE %s AND wait_event_type = 'Lock'"""


def sample(prefix: str, stop: threading.Event, seen: list[tuple[float, tuple[object, ...]]]
           ) -> None:
    with psycopg.connect(BASE, autocommit=True) as conn:
        names = {}
        while not stop.is_set():
            for row in conn.execute(WAITS, (f"{prefix}%",)).fetchall():
                for blocker in row[2]:
                    found = conn.execute("SELECT application_name, left(regexp_replace(query,"
                                         " '\\s+', ' ', 'g'), 90), state FROM pg_stat_activity"
                                         " WHERE pid = %s", (blocker,)).fetchone()
                    names[blocker] = found
                seen.append((time.time(), (*row, [names.get(b) for b in row[2]])))
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", default="limitapp:app")
    parser.add_argument("--queue", default="rated")
    parser.add_argument("--rate", default="50/s")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--apart", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    schema = f"flow_probe_{secrets.token_hex(4)}"
    url = f"{BASE}?schema={schema}"
    app = Conveyor(url)
    app.migrate()
    app.limits.set("queue", args.queue, rate=args.rate)
    for _ in range(3):
        app.enqueue_many([{"task": args.queue, "queue": args.queue, "payload": {"ms": 5}}] * 1000)
    folder = Path(tempfile.mkdtemp(prefix="flow-probe-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update({"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "tests/system"),
                                                           env.get("PYTHONPATH")])),
                "CONVEYOR_LEASE": "2", "CONVEYOR_HEARTBEAT": "0.5",
                "CONVEYOR_POLL_INTERVAL": "0.2", "CONVEYOR_CONFIG": str(folder / "none.toml"),
                "LIMITS_LEDGER": str(folder / "ledger.log"),
                "PGOPTIONS": "-c log_lock_waits=on"})
    stop, seen = threading.Event(), list[tuple[float, tuple[object, ...]]]()
    sampler = threading.Thread(target=sample, args=(f"{schema}-w", stop, seen))
    sampler.start()
    procs, ups = [], []
    began = time.time()
    try:
        for index in range(args.workers):
            log = open(folder / f"w{index}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("conveyor")), "worker", "--app", args.app,
                 "--queues", args.queue, "--concurrency", "4"], cwd=folder,
                env={**env, "CONVEYOR_URL": f"{url}&application_name={schema}-w{index}"},
                stdout=log, stderr=log, start_new_session=True))
            ups.append(time.time())
            time.sleep(args.apart)
        time.sleep(args.seconds)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        stop.set()
        sampler.join()
    jobs = [j for j in app.list_jobs(JobFilter(), limit=5000, bodies=False) if j.started_at]
    starts = sorted((j.started_at or 0.0, (j.worker_id or "?:?:?").rsplit(":", 2)[1])
                    for j in jobs)
    pids = {str(p.pid): f"w{i}" for i, p in enumerate(procs)}
    print(f"schema {schema}; workers started at "
          + ", ".join(f"{at - began:+.2f}" for at in ups) + f" (folder {folder})")
    print(f"{len(seen)} lock waits sampled")
    for at, row in seen[:40]:
        print(f"  {at - began:+.3f} {row[0]} pid {row[1]} waits {row[4]} on {row[2]}: "
              f"{row[3]!r} blocked by {row[5]}")
    gaps = sorted(((b[0] - a[0], a, b) for a, b in itertools.pairwise(starts)),
                  reverse=True)[:5]
    for gap, a, b in gaps:
        print(f"pause {gap:.3f} s after {a[0] - began:+.3f} (claimed by {pids.get(a[1], a[1])}"
              f", next by {pids.get(b[1], b[1])})")
    for index in range(args.workers):
        for line in (folder / f"w{index}.log").read_text(errors="replace").splitlines():
            if "WARNING" in line or "ERROR" in line or "rror" in line:
                print(f"w{index}: {line[:200]}")
    app.close()
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
