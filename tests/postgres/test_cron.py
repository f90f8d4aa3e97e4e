"""Cron on PostgreSQL with several real worker processes: each runs the scheduler, and each
slot's job is stored and run once."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState
from conveyor.scheduler import slot_id

from .conftest import admin_connect
from .test_system import CONVEYOR, ROOT, worker_process

pytestmark = pytest.mark.postgres


def stored(schema: str) -> int:
    with admin_connect() as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_jobs').fetchone()
    return int(row[0]) if row else 0


@pytest.mark.timeout(120)
def test_three_workers_store_and_run_each_slot_once(schema: str, url: str,
                                                    tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_TEST_RUN_LOG": str(runs),
           "PYTHONPATH": str(ROOT)}
    subprocess.run([CONVEYOR, "migrate"], cwd=ROOT, env=env, check=True, timeout=60,
                   capture_output=True)
    command = [CONVEYOR, "worker", "--app", "tests.postgres.cron_app:app", "--concurrency", "2"]
    with contextlib.ExitStack() as stack:
        workers = [stack.enter_context(worker_process(command, env)) for _ in range(3)]
        # a loaded machine starts workers slowly: wait for 5 slots, however long they take
        deadline = time.monotonic() + 60
        while stored(schema) < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.5)  # every node meets the latest slot
    with admin_connect() as conn:
        rows = conn.execute(f'SELECT id, state, queue FROM "{schema}".conveyor_jobs '
                            "ORDER BY id").fetchall()
    slots = [int(str(job_id).replace("-", "")[:12], 16) / 1000 for job_id, _, _ in rows]
    assert len(rows) >= 4, rows
    # one job a second, none twice, none missing: every node tried every slot
    assert slots == [slots[0] + i for i in range(len(slots))]
    assert [job_id for job_id, _, _ in rows] == [slot_id("every-second", s) for s in slots]
    assert {queue for _, _, queue in rows} == {"cron"}
    done = [str(job_id) for job_id, state, _ in rows if state == JobState.COMPLETED.value]
    assert len(done) >= len(rows) - 1  # the last slot may have come as the workers stopped
    ran = [line.split()[0] for line in runs.read_text().splitlines()]
    assert sorted(ran) == sorted(set(ran)) and set(done) <= set(ran)  # each ran once
    pids = {line.split()[1] for line in runs.read_text().splitlines()}
    assert pids <= {str(worker.pid) for worker in workers}
    app = Conveyor(url)
    try:
        assert app.get(done[0]).payload == {"from": "cron"}
    finally:
        app.close()


def test_two_nodes_on_postgres_store_a_slot_once_and_the_second_hears_duplicate(
        url: str) -> None:
    """The duplicate comes back by the ON CONFLICT path of a keyed job, not as an error."""
    import asyncio

    from conveyor import FakeClock
    from conveyor.scheduler import Scheduler

    t0 = 1_800_000_000.0
    clock = FakeClock(t0 + 0.5)
    nodes = []
    for _ in range(2):
        app = Conveyor(url, clock=clock, auto_migrate=True)

        @app.task(name="report")
        async def report(ctx: object, payload: object) -> None:
            return None

        app.cron("* * * * * */10", "report", {"n": 1}, name="sales", correlation_id="cron")
        nodes.append((app, Scheduler(app, clock)))
    try:
        results = [asyncio.run(scheduler.enqueue(app.schedules["sales"], t0))
                   for app, scheduler in nodes]
        assert [(r.id, r.duplicate) for r in results] == [
            (slot_id("sales", t0), False), (slot_id("sales", t0), True)]
        clock.advance(10)
        assert [asyncio.run(scheduler.run_once()) for _, scheduler in nodes] == [1, 0]
        app = nodes[0][0]
        jobs = app.list_jobs()
        assert sorted(job.id for job in jobs) == sorted(
            [slot_id("sales", t0), slot_id("sales", t0 + 10)])
        assert {(job.run_at, job.correlation_id) for job in jobs} == {
            (t0, "cron"), (t0 + 10, "cron")}
    finally:
        for app, _ in nodes:
            app.close()


def slot_count_between(schema: str, since: float, until: float) -> int:
    ids = [slot_id("every-second", float(s)) for s in range(int(since) + 1, int(until) + 1)]
    with admin_connect() as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_jobs WHERE id = ANY(%s)',
                           (ids,)).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.timeout(120)
def test_a_pause_from_the_cli_holds_on_every_worker(schema: str, url: str,
                                                    tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_TEST_RUN_LOG": str(tmp_path / "r.log"),
           "PYTHONPATH": str(ROOT)}
    subprocess.run([CONVEYOR, "migrate"], cwd=ROOT, env=env, check=True, timeout=60,
                   capture_output=True)
    app_spec = ["--app", "tests.postgres.cron_app:app"]
    command = [CONVEYOR, "worker", *app_spec, "--concurrency", "2"]
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(worker_process(command, env))
        deadline = time.monotonic() + 60
        while stored(schema) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert stored(schema) >= 2
        subprocess.run([CONVEYOR, "cron", "pause", "every-second", *app_spec], cwd=ROOT,
                       env=env, check=True, timeout=60, capture_output=True)
        quiet_from = time.time() + 1.5
        time.sleep(4.5)
        assert slot_count_between(schema, quiet_from, time.time()) == 0
        subprocess.run([CONVEYOR, "cron", "resume", "every-second", *app_spec], cwd=ROOT,
                       env=env, check=True, timeout=60, capture_output=True)
        back = time.time()
        deadline = time.monotonic() + 30
        while not slot_count_between(schema, back, time.time()):
            assert time.monotonic() < deadline, "no slot after the resume"
            time.sleep(0.5)
        assert slot_count_between(schema, quiet_from, back - 1) == 0
