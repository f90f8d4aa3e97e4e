"""Where a 2-process drain's time goes: each worker process's first job, and the rate over time.

The peer harness times a drain from the first job's start to the last job's end, so a worker
process that starts late, or a stall mid-drain, lowers the rate without costing CPU per job.
This runs one drain the harness's way (20,000 no-op jobs queued first, then
`conveyor worker --processes 2 --concurrency 10`) and prints per process: first and last
start, jobs run, and the rate in 250 ms buckets.

    .venv/bin/python bench/drain_timeline.py --store postgres      # or sqlite
    /tmp/bench-peers/.venv-conveyor-base/bin/python bench/drain_timeline.py --store postgres

Run it with another tree's python (the harness's base venv above) to compare trees.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conveyor import Conveyor, Settings

MARKS = os.environ.get("DRAIN_TIMELINE_MARKS", "")
PG = "postgresql://postgres@127.0.0.1:5432"
URL = os.environ.get("DRAIN_TIMELINE_URL", "sqlite:///:memory:")
app = Conveyor(settings=Settings.load(url=URL, log_level="WARNING"))
_fd: int | None = None


@app.task()
async def job(ctx: object, payload: dict[str, int]) -> None:
    global _fd
    t0 = time.time()
    if _fd is None:
        _fd = os.open(MARKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%.6f %d\n" % (t0, os.getpid()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drain-timeline-"))
    database = f"bench_timeline_{os.getpid()}"
    if args.store == "postgres":
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database}")
            conn.execute(f"CREATE DATABASE {database}")
        url = f"{PG}/{database}"
        atexit.register(_drop_database, database)  # also when a step fails
    else:
        url = f"sqlite:///{work}/jobs.db"
    marks = work / "marks"
    env = dict(os.environ, DRAIN_TIMELINE_URL=url, DRAIN_TIMELINE_MARKS=str(marks),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    enqueue = ("import drain_timeline as d; d.app.migrate(); "
               f"[d.app.enqueue_many([{{'task': 'job', 'payload': {{'ms': 0}}}}] * 1000) "
               f"for _ in range({args.jobs // 1000})]; "
               "d.app.close()")
    subprocess.run([sys.executable, "-c", enqueue], env=env, check=True)
    conveyor = shutil.which("conveyor", path=str(Path(sys.executable).parent))
    spawned = time.time()
    worker = subprocess.Popen([conveyor or "conveyor", "worker", "--app", "drain_timeline:app",
                               "--concurrency", str(args.concurrency),
                               "--processes", str(args.processes)], env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if marks.exists() and marks.stat().st_size and len(
                    marks.read_bytes().splitlines()) >= args.jobs:
                break
            time.sleep(0.05)
        ended = time.time()
    finally:
        worker.terminate()
        worker.wait(30)
    rows = [line.split() for line in marks.read_text().splitlines()]
    starts = sorted((float(t), int(pid)) for t, pid in rows)
    first = starts[0][0]
    print(f"{len(starts):,} jobs; first start {first - spawned:.3f} s after spawn; "
          f"rate {len(starts) / (ended - first):,.0f} jobs/s (harness's way)")
    by_pid: dict[int, list[float]] = collections.defaultdict(list)
    for t, pid in starts:
        by_pid[pid].append(t)
    for pid, times in sorted(by_pid.items(), key=lambda item: item[1][0]):
        print(f"  pid {pid}: {len(times):,} jobs, first {times[0] - first:+.3f} s, "
              f"last {times[-1] - first:+.3f} s")
    buckets = collections.Counter(int((t - first) / 0.25) for t, _ in starts)
    line = " ".join(f"{buckets.get(i, 0)}" for i in range(max(buckets) + 1))
    print(f"  jobs per 250 ms: {line}")
    shutil.rmtree(work, ignore_errors=True)


def _drop_database(database: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
