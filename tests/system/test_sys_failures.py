"""Jobs that fail, overrun their timeout or outlive their TTL, run by a real worker process."""

from __future__ import annotations

import time

import pytest
from syshelp import System, wait_until

pytestmark = pytest.mark.system


def test_poison_job_goes_dead_with_every_error_while_others_complete(system: System) -> None:
    poison = system.app.enqueue("poison", {})
    others = [j.id for j in system.app.enqueue_many(
        [("work", {"n": n, "sleep": 0.05}) for n in range(20)])]
    worker = system.worker("worker", "--concurrency", "4")

    final = system.wait_terminal([poison.id, *others], 30)
    dead = final[poison.id]
    assert dead.state == "dead" and dead.dead_reason == "failed"
    assert dead.attempt == 3 == dead.max_attempts
    assert [e.attempt for e in dead.errors] == [1, 2, 3]
    for n, error in enumerate(dead.errors, start=1):
        assert error.type == "ValueError"
        assert error.message == f"poison pill, attempt {n}"
        assert error.traceback and "Traceback (most recent call last)" in error.traceback
        assert 'raise ValueError(f"poison pill' in error.traceback
        assert error.worker and error.worker.split(":")[1] == str(worker.pid)
    assert system.count("start")[poison.id] == 3
    assert all(final[i].state == "completed" for i in others)

    later = system.app.enqueue("work", {"n": "after"})  # the worker is still taking jobs
    assert system.wait_terminal([later.id], 10)[later.id].state == "completed"
    assert worker.poll() is None
    assert system.stop(worker)[0] == 0


def test_job_past_its_timeout_is_stopped_and_retried_then_dead(system: System) -> None:
    slow = system.app.enqueue("too_slow", {})
    worker = system.worker("worker", "--concurrency", "4")
    wait_until(lambda: system.count("start")[slow.id], 20, "the slow job to start")
    beside = system.app.enqueue("work", {"n": "beside"})  # runs while the slow one hangs
    assert system.wait_terminal([beside.id], 10)[beside.id].state == "completed"

    dead = system.wait_terminal([slow.id], 20)[slow.id]
    assert dead.state == "dead" and dead.dead_reason == "failed"
    assert [e.type for e in dead.errors] == ["JobTimeout", "JobTimeout"]
    assert all("timeout of 0.5s" in e.message for e in dead.errors)
    assert dead.finished_at - dead.created_at < 10, "the timeout did not stop the job"
    assert system.count("start")[slow.id] == 2
    assert not system.count("done")[slow.id]

    later = system.app.enqueue("work", {"n": "after"})
    assert system.wait_terminal([later.id], 10)[later.id].state == "completed"
    assert worker.poll() is None
    assert system.stop(worker)[0] == 0


def test_job_past_its_ttl_goes_dead_expired_and_never_runs(system: System) -> None:
    expiring = system.app.enqueue("work", {"n": "ttl"}, ttl=1)
    control = system.app.enqueue("work", {"n": "control"})
    assert expiring.expires_at is not None
    # no worker yet: let the TTL run out (the store decides by its clock, as the worker will)
    wait_until(lambda: time.time() > expiring.expires_at + 0.2, 5, "the TTL to run out")
    worker = system.worker("worker", "--concurrency", "2")

    final = system.wait_terminal([expiring.id, control.id], 20)
    job = final[expiring.id]
    assert job.state == "dead" and job.dead_reason == "expired"
    assert job.attempt == 0 and job.started_at is None and not job.errors
    assert system.count("start")[expiring.id] == 0
    assert final[control.id].state == "completed"
    assert system.stop(worker)[0] == 0


def test_cancel_from_the_cli_stops_a_running_job(system: System) -> None:
    job = system.app.enqueue("work", {"sleep": 30})
    worker = system.worker("worker", "--concurrency", "2")
    wait_until(lambda: system.count("start")[job.id], 20, "the job to start")

    began = time.monotonic()
    cancel = system.cli("cancel", job.id)
    assert cancel.returncode == 0, cancel.stderr
    assert "cancel requested" in cancel.stdout
    stopped = system.wait_terminal([job.id], 10)[job.id]
    assert stopped.state == "cancelled"
    assert time.monotonic() - began < 5
    assert not system.count("done")[job.id]
    assert worker.poll() is None
    assert system.stop(worker)[0] == 0
