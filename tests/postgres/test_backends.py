"""Server backends per worker process during a drain, with real `conveyor worker` processes.

Each connection is a PostgreSQL backend that warms its catalog caches and plans every
statement it runs for itself, so a worker's connections are server CPU per job (issue 15).
Maintenance once ran its concerns concurrently on the exchange's pool, which grew with them:
a 2-process drain ended with 13-16 backends (bench/results/2026-12-09-pgplan.md). Now its
calls go one at a time through an upkeep pool of at most 2 (store/lanes.py): a worker process
holds its exchange's connections (the claim loop, the settles it flushes), one or two for
upkeep, one for its heartbeat thread's loop and its listener.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.system]

ROOT = Path(__file__).resolve().parents[2]
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
JOBS = 4_000
PROCESSES = 2
MOST_PER_PROCESS = 5  # exchange 1-2, upkeep 1-2, heartbeat loop 1, listener 1, minus slack


def backends(schema: str) -> int:
    """The server's backends of this test's URL (its application_name is the schema)."""
    with admin_connect() as conn:
        [(count,)] = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE application_name = %s", (schema,)).fetchall()
        return int(count)


def completed(schema: str) -> int:
    with admin_connect() as conn:
        [(count,)] = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_jobs '
                                  "WHERE state = 'completed'").fetchall()
        return int(count)


async def test_a_drain_holds_a_few_backends_per_worker_process(
        store: PostgresStore, schema: str, url: str, tmp_path: Path) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="record", queue="default",
                                     payload=b'{"n": 0, "sleep_ms": 0}')
                              for _ in range(JOBS)])
    await store.close()
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_TEST_RUN_LOG": str(tmp_path / "runs"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    worker = subprocess.Popen(
        [CONVEYOR, "worker", "--app", "tests.postgres.system_app:app", "--concurrency", "10",
         "--processes", str(PROCESSES)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    most, began = 0, time.monotonic()
    try:
        while completed(schema) < JOBS and time.monotonic() - began < 120:
            most = max(most, backends(schema))
            time.sleep(0.05)
        time.sleep(2.5)  # a few more maintenance rounds (folds, promote) after the drain
        most = max(most, backends(schema))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    assert completed(schema) == JOBS
    assert 0 < most <= PROCESSES * MOST_PER_PROCESS, most
