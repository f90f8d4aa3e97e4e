"""Real `conveyor worker` processes on PostgreSQL while things go wrong: workers SIGKILLed and
restarted every couple of seconds, and the database dropping every connection once mid-run.
Every job must end completed; none lost. Repeats (at-least-once) are counted and reported.

The database outage is a real server restart when CONVEYOR_TEST_RESTART_POSTGRES=1 (it drops
everyone's connections on the server, so run it sparingly); otherwise every connection of
this test's app is terminated at once, which is what a restart looks like to the app.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.postgres, pytest.mark.system]

ROOT = Path(__file__).resolve().parents[2]
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
JOBS = 3000
WORKERS = 4


def start_worker(env: dict[str, str], concurrency: int = 4) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CONVEYOR, "worker", "--app", "tests.postgres.system_app:app",
         "--concurrency", str(concurrency)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def states(schema: str) -> dict[str, int]:
    try:
        with admin_connect() as conn:
            rows = conn.execute(f'SELECT state, count(*) FROM "{schema}".conveyor_jobs '
                                "GROUP BY state").fetchall()
    except (psycopg.OperationalError, pytest.skip.Exception):
        return {}
    return {str(state): int(count) for state, count in rows}


async def enqueue_all(url: str, count: int = JOBS, sleep_ms: int = 100) -> None:
    store = PostgresStore(url)
    try:
        for start in range(0, count, 500):
            await store.enqueue_many([
                NewJob(id=new_id(), task="record", queue="default", max_attempts=10,
                       payload=b'{"n":%d,"sleep_ms":%d}' % (n, sleep_ms))
                for n in range(start, min(count, start + 500))])
    finally:
        await store.close()


def drop_database_connections(schema: str) -> None:
    if os.environ.get("CONVEYOR_TEST_RESTART_POSTGRES") == "1":
        version = os.listdir("/etc/postgresql")[0]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                        "restart"], check=True, timeout=60)
        return
    with admin_connect() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s", (schema,))


@pytest.mark.timeout(120)
def test_jobs_survive_killed_workers_and_a_database_outage(schema: str, url: str,
                                                           tmp_path: Path) -> None:
    run_log = tmp_path / "runs.log"
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_LEASE": "3", "CONVEYOR_HEARTBEAT": "1",
           "CONVEYOR_POLL_INTERVAL": "0.5", "CONVEYOR_GRACE": "1",
           "CONVEYOR_TEST_RUN_LOG": str(run_log), "PYTHONPATH": str(ROOT)}
    subprocess.run([CONVEYOR, "migrate"], cwd=ROOT, env=env, check=True, timeout=60)
    workers = [start_worker(env) for _ in range(WORKERS)]
    kills = 0
    try:
        asyncio.run(enqueue_all(url))
        began = time.monotonic()
        outage_done = False
        while time.monotonic() - began < 90:
            counts = states(schema)
            if counts.get("completed", 0) == JOBS:
                break
            elapsed = time.monotonic() - began
            if not outage_done and elapsed > 3:
                drop_database_connections(schema)
                outage_done = True
            if elapsed < 20 and random.random() < 0.25:  # about one kill every 2 s
                victim = random.randrange(WORKERS)
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start_worker(env)
                kills += 1
            time.sleep(0.5)
        final = states(schema)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    runs = Counter(line.split()[0] for line in run_log.read_text().splitlines() if line)
    repeated = sum(count - 1 for count in runs.values())
    print(f"\n{JOBS} jobs, {kills} workers killed, {sum(runs.values())} executions, "
          f"{repeated} repeated, final states {final}")
    assert final == {"completed": JOBS}, f"not every job completed: {final}"
    assert len(runs) == JOBS, "every job ran at least once"


def wait_for(condition: object, timeout: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def lost_jobs(schema: str) -> list[tuple[str, str, str, int | None]]:
    """For rescued jobs: (job id, the worker that lost it, the worker that ran it last, the
    pid that wrote its result). Worker ids are host:pid:random."""
    with admin_connect() as conn:
        rows = conn.execute(
            f"SELECT id, error ->> 'worker', worker_id, "
            f"convert_from(result, 'UTF8')::jsonb ->> 'pid' "
            f'FROM "{schema}".conveyor_jobs, jsonb_array_elements(errors) AS error '
            "WHERE error ->> 'type' = 'WorkerLost'")
        return [(str(a), str(b), str(c), None if d is None else int(d)) for a, b, c, d in rows]


@pytest.mark.timeout(90)
def test_a_paused_worker_cannot_overwrite_jobs_rescued_from_it(schema: str, url: str,
                                                              tmp_path: Path) -> None:
    """SIGSTOP a worker past its lease: its jobs are rescued and finished by another worker.
    SIGCONT it: its late outcomes are fenced off and dropped, nothing is overwritten."""
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_LEASE": "2", "CONVEYOR_HEARTBEAT": "0.5",
           "CONVEYOR_POLL_INTERVAL": "0.5", "CONVEYOR_GRACE": "1",
           "CONVEYOR_TEST_RUN_LOG": str(tmp_path / "runs.log"), "PYTHONPATH": str(ROOT)}
    subprocess.run([CONVEYOR, "migrate"], cwd=ROOT, env=env, check=True, timeout=60)
    asyncio.run(enqueue_all(url, count=40, sleep_ms=1500))
    paused = start_worker(env, concurrency=10)
    other: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: states(schema).get("running", 0) >= 5, 20)
        paused.send_signal(signal.SIGSTOP)
        other = start_worker(env, concurrency=10)
        wait_for(lambda: len(lost_jobs(schema)) >= 5, 30)  # rescued from the paused worker
        paused.send_signal(signal.SIGCONT)
        wait_for(lambda: states(schema) == {"completed": 40}, 40)
        time.sleep(1.0)  # the resumed worker has written (or tried to write) its outcomes
        final = states(schema)
    finally:
        paused.send_signal(signal.SIGCONT)
        for process in (paused, other):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(10)
    lost = lost_jobs(schema)
    assert final == {"completed": 40}
    assert lost and all(loser.split(":")[1] == str(paused.pid) for _, loser, _, _ in lost)
    # The outcome is the current lease holder's. (The resumed worker may claim a rescued job
    # again, legitimately, under a new lease; then it is the holder.)
    assert all(str(pid) == holder.split(":")[1] for _, _, holder, pid in lost), (
        f"a rescued job's outcome was written by a worker that no longer held it: {lost}")
    runs = (tmp_path / "runs.log").read_text().split()
    late = {job for job, pid in zip(runs[::2], runs[1::2], strict=True) if pid == str(paused.pid)}
    print(f"\n{len(lost)} jobs rescued from the paused worker; it finished "
          f"{len(late & {job for job, *_ in lost})} of them after resuming (stale writes fenced)")
