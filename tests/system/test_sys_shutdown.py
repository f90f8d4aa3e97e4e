"""Graceful shutdown of a real `conveyor worker` on SIGTERM: running jobs get the grace period,
then go back to the queue, and the process exits 0 at once.

The sync case runs last in the suite on purpose (this file sorts after the others): it shows
a core bug, and `-x` should not hide the rest behind it.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from syshelp import System, wait_until

pytestmark = pytest.mark.system


def sigterm_case(system: System, task: str) -> None:
    """Two quick and two long jobs of `task` in flight at SIGTERM, with a 1.5 s grace, and
    four more claimed ahead (prefetched) but not started."""
    quick = [system.app.enqueue(task, {"n": n, "sleep": 0.4}).id for n in range(2)]
    long = [system.app.enqueue(task, {"n": n, "sleep": 60}).id for n in range(2)]
    extra = [system.app.enqueue(task, {"n": n, "sleep": 0.4}).id for n in range(4)]
    first = system.worker("first", "--concurrency", "4", "--grace", "1.5")
    system.wait_ready(first)
    wait_until(lambda: len(system.count("start")) == 4, 20, "all four jobs to start")

    code, took = system.stop(first, timeout=10)  # a task sleeps 60 s: do not wait for it
    assert code == 0
    assert took < 1.5 + 3.0, f"the worker took {took:.1f}s to exit after SIGTERM (grace 1.5s)"
    after = {j.id: j for j in system.jobs()}
    assert not [j for j in after.values() if j.state == "running"], "left 'running' behind"
    for job_id in quick:  # finished inside the grace period, by the first worker
        assert after[job_id].state == "completed"
        assert after[job_id].result["pid"] == first.pid
    for job_id in long:  # released untouched: queued, the attempt given back, no error
        assert after[job_id].state == "queued", after[job_id]
        assert after[job_id].attempt == 0 and not after[job_id].errors
    for job_id in extra:  # prefetched: given back (or, if a slot freed early, finished)
        job = after[job_id]
        assert (job.state == "queued" and job.attempt == 0 and not job.errors) or (
            job.state == "completed" and job.result["pid"] == first.pid), job

    second = system.worker("second", "--concurrency", "4", SYS_FAST="1")
    final = system.wait_terminal(quick + long + extra, 20)
    assert {str(j.state) for j in final.values()} == {"completed"}
    for job_id in long:
        assert final[job_id].state == "completed"
        assert final[job_id].result["pid"] == second.pid
    assert system.stop(second)[0] == 0


def test_sigterm_finishes_or_releases_async_jobs(system: System) -> None:
    sigterm_case(system, "work")


def test_one_sigint_is_as_gentle_as_sigterm(system: System) -> None:
    job = system.app.enqueue("work", {"sleep": 0.8})
    worker = system.worker("worker", "--concurrency", "2", "--grace", "10")
    wait_until(lambda: system.count("start")[job.id], 20, "the job to start")
    worker.send_signal(signal.SIGINT)
    assert worker.wait(10) == 0
    done = system.app.get(job.id)
    assert done.state == "completed" and done.result["pid"] == worker.pid


def test_a_second_sigint_stops_waiting_for_running_jobs(system: System) -> None:
    job = system.app.enqueue("work", {"sleep": 60})
    worker = system.worker("worker", "--concurrency", "2", "--grace", "20")
    wait_until(lambda: system.count("start")[job.id], 20, "the job to start")
    worker.send_signal(signal.SIGINT)
    wait_until(lambda: "waiting up to" in system.tail("worker"), 10, "the grace period to begin")
    began = time.monotonic()
    worker.send_signal(signal.SIGINT)  # "second interrupt: not waiting for running jobs"
    try:
        code = worker.wait(8)
    except subprocess.TimeoutExpired:
        raise AssertionError("a second SIGINT did not cut the 20 s grace period short:\n"
                             + system.tail("worker")) from None
    assert code == 0 and time.monotonic() - began < 5
    released = system.app.get(job.id)
    assert released.state == "queued" and released.attempt == 0 and not released.errors


def test_sigterm_finishes_or_releases_sync_jobs(system: System) -> None:
    sigterm_case(system, "sync_work")
