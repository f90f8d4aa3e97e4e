"""Producers in other processes: concurrent idempotent enqueues and cross-process wake-ups."""

from __future__ import annotations

import json
import random
import statistics
import sys
import time

import pytest
from syshelp import HERE, System, wait_until

pytestmark = pytest.mark.system

PRODUCERS = 8
KEYS = 200


def test_concurrent_producers_create_each_idempotent_job_once(system: System) -> None:
    names = [f"producer{n}" for n in range(PRODUCERS)]
    procs = [system.start(name, [sys.executable, str(HERE / "producer.py"), system.url,
                                 str(system.folder), name, str(KEYS), str(n)])
             for n, name in enumerate(names)]
    wait_until(lambda: all((system.folder / f"{n}.ready").exists() for n in names), 60,
               "every producer to be ready")
    (system.folder / "go").touch()
    for name, proc in zip(names, procs, strict=True):
        assert proc.wait(60) == 0, system.tail(name)

    rows = system.sql("SELECT idempotency_key, count(*), min(id) FROM conveyor_jobs "
                      "GROUP BY idempotency_key")
    assert len(rows) == KEYS
    assert [r for r in rows if r[1] != 1] == [], "a key was stored more than once"
    stored = {key: job_id for key, _, job_id in rows}
    seen = [json.loads((system.folder / f"{name}.json").read_text()) for name in names]
    for got in seen:
        assert {key: job_id for key, (job_id, _) in got.items()} == stored
    created = {key: sum(not got[key][1] for got in seen) for key in stored}
    assert set(created.values()) == {1}, "each key must be created by exactly one producer"


def test_enqueue_wakes_an_idle_worker_in_another_process(system: System) -> None:
    worker = system.worker("worker", "--concurrency", "2")
    system.wait_ready(worker)
    rng = random.Random(7)
    latencies = []
    for n in range(20):
        time.sleep(rng.uniform(0.02, 0.08))  # land anywhere in the worker's 1 s poll cycle
        job = system.app.enqueue("work", {"n": n})
        done = system.wait_terminal([job.id], 10)[job.id]
        assert done.state == "completed"
        latencies.append(done.started_at - done.created_at)
    p50 = statistics.median(latencies)
    assert p50 < 0.1, (f"enqueue-to-start p50 {p50 * 1000:.0f} ms (max "
                       f"{max(latencies) * 1000:.0f} ms): the worker waited for its poll")
    assert system.stop(worker)[0] == 0


def test_three_workers_share_one_queue_and_run_each_job_once(system: System) -> None:
    workers = [system.worker(f"worker{n}", "--concurrency", "5") for n in range(3)]
    for worker in workers:
        system.wait_ready(worker)
    ids = []
    for chunk in range(6):  # producers keep adding while the workers drain
        ids += [j.id for j in system.app.enqueue_many(
            [("work", {"n": n, "sleep": 0.01}) for n in range(chunk * 50, chunk * 50 + 50)])]
        time.sleep(0.05)
    final = system.wait_terminal(ids, 40)

    assert {str(j.state) for j in final.values()} == {"completed"}
    started = system.count("start")
    assert set(started) == set(ids) and set(started.values()) == {1}, "a job ran twice"
    ran_in = {e.pid for e in system.executions()}
    assert ran_in == {w.pid for w in workers}, "a worker got no job"
    for n, worker in enumerate(workers):
        assert system.stop(worker)[0] == 0
        warnings = [line for line in system.tail(f"worker{n}", 1000).splitlines()
                    if " WARNING " in line or " ERROR " in line]
        assert warnings == [], warnings


def test_a_delayed_job_starts_on_time_in_another_process(system: System) -> None:
    worker = system.worker("worker", "--concurrency", "2")
    system.wait_ready(worker)
    lateness = []
    for n in range(5):
        job = system.app.enqueue("work", {"n": n}, delay=0.5)
        assert job.state == "scheduled"
        done = system.wait_terminal([job.id], 10)[job.id]
        assert done.state == "completed"
        assert done.started_at >= done.run_at, "a delayed job started early"
        lateness.append(done.started_at - done.run_at)
    assert statistics.median(lateness) < 0.25, f"late by {lateness} s: it waited for a poll"
    assert system.stop(worker)[0] == 0
