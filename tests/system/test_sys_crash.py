"""Crash behaviour of real `conveyor worker` processes: SIGKILL mid-batch, SIGSTOP/SIGCONT
(fencing), the --processes supervisor, a job that keeps killing its worker, and heartbeats
while a task blocks the event loop."""

from __future__ import annotations

import os
import signal
import time

import pytest
from syshelp import System, alive, parent_of, wait_until

pytestmark = pytest.mark.system


def test_sigkill_mid_batch_loses_nothing_and_reruns_only_in_flight_jobs(system: System) -> None:
    jobs = system.app.enqueue_many([("work", {"n": n, "sleep": 0.05}) for n in range(200)])
    ids = {j.id for j in jobs}
    first = system.worker("first", "--concurrency", "10")
    system.wait_ready(first)
    wait_until(lambda: len(system.count("done")) >= 40, 30, "40 jobs done by the first worker")

    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    prefix = f"{system.host}:{first.pid}:"
    held = {j.id for j in system.jobs() if j.state == "running"}
    assert held, "the first worker held no job when killed: the test proved nothing"
    assert all(j.worker_id.startswith(prefix) for j in system.jobs() if j.id in held)
    started, done = system.count("start"), system.count("done")
    unfinished_by_first = {job_id for job_id in started if job_id not in done}
    assert unfinished_by_first <= held, "a job the dead worker was running is not 'running'"

    second = system.worker("second", "--concurrency", "10")
    final = system.wait_terminal(ids, 40)

    assert {str(j.state) for j in final.values()} == {"completed"}
    done = system.count("done")
    assert set(done) == ids, "some job never ran to its end"
    started = system.count("start")
    twice = {job_id for job_id, n in started.items() if n > 1}
    assert twice <= held, f"jobs ran twice that were not in flight: {sorted(twice - held)}"
    assert all(n <= 2 for n in started.values())
    for job_id in held:  # a rescued job counts the attempt and says why
        job = final[job_id]
        assert job.attempt == 2, job
        assert [e.type for e in job.errors] == ["WorkerLost"], job.errors
        history = system.app.analytics.attempts(job_id)  # the killed attempt: lost
        assert [(a.attempt, a.outcome) for a in history] == [(1, "lost"), (2, "completed")]
        assert (history[0].worker_id or "").startswith(prefix)
    assert all(final[i].attempt == 1 and not final[i].errors for i in ids - held)
    assert 1 < system.most_at_once(first.pid) <= 10, "the first worker broke its slot limit"
    assert 1 < system.most_at_once(second.pid) <= 10, "the second worker broke its slot limit"
    assert system.stop(second)[0] == 0


def test_sigstop_worker_is_fenced_after_rescue(system: System) -> None:
    job = system.app.enqueue("work", {"sleep": 3})
    first = system.worker("first", "--concurrency", "2")
    wait_until(lambda: system.count("start")[job.id], 20, "the first worker to start the job")
    os.kill(first.pid, signal.SIGSTOP)

    second = system.worker("second", "--concurrency", "2", SYS_FAST="1")
    [rescued] = system.wait_terminal([job.id], 30).values()
    assert rescued.state == "completed"
    assert rescued.result["pid"] == second.pid
    assert rescued.attempt == 2 and [e.type for e in rescued.errors] == ["WorkerLost"]

    resumed_at = time.time()
    os.kill(first.pid, signal.SIGCONT)

    def first_caught_up() -> bool:
        beats = [w for w in system.app.workers() if w.pid == first.pid]
        dropped = f"lease lost for job {job.id}" in system.tail("first", 200)
        return dropped or bool(beats and beats[0].heartbeat_at > resumed_at + 1.0)

    wait_until(first_caught_up, 15, "the resumed worker to notice its lost lease")
    late = system.app.get(job.id)
    assert late.state == "completed"
    assert late.result == rescued.result, "a stale completion overwrote the rescuer's result"
    assert late.finished_at == rescued.finished_at and late.attempt == 2
    if any(e.pid == first.pid and e.event == "done" for e in system.executions()):
        # it did finish the job late: that completion must have been fenced off, and said so
        wait_until(lambda: f"lease lost for job {job.id}" in system.tail("first", 200), 5,
                   "the resumed worker to log its dropped completion")
    assert first.poll() is None, "the resumed worker died"
    assert system.stop(first)[0] == 0
    assert system.stop(second)[0] == 0


def test_supervisor_restarts_a_killed_child_and_stops_on_sigterm(system: System) -> None:
    supervisor = system.worker("supervisor", "--processes", "2", "--concurrency", "4",
                               "--grace", "2")

    def children() -> set[int]:
        return {w.pid for w in system.app.workers()
                if parent_of(w.pid) == supervisor.pid and alive(w.pid)}

    first_two = wait_until(lambda: len(children()) == 2 and children(), 30, "two children")
    ids = [j.id for j in system.app.enqueue_many(
        [("work", {"n": n, "sleep": 0.1}) for n in range(120)])]
    ran_in = lambda: {e.pid for e in system.executions()}  # noqa: E731
    wait_until(lambda: first_two <= ran_in(), 20, "both children to run jobs")

    victim = min(first_two)
    os.kill(victim, signal.SIGKILL)
    new = wait_until(lambda: children() - first_two, 30, "the supervisor to restart a child")
    assert victim not in children()
    more = [j.id for j in system.app.enqueue_many(
        [("work", {"n": n, "sleep": 0.1}) for n in range(40)])]
    final = system.wait_terminal(ids + more, 40)
    assert {str(j.state) for j in final.values()} == {"completed"}
    assert set(system.count("done")) == set(ids + more)
    assert new & ran_in(), "the restarted child ran no job"

    long = [j.id for j in system.app.enqueue_many(
        [("work", {"n": n, "sleep": 60}) for n in range(4)])]
    wait_until(lambda: all(system.count("start")[i] for i in long), 20, "the long jobs to start")
    every_child = children() | first_two | new
    code, took = system.stop(supervisor, timeout=20)  # children get --grace 2, then release
    assert code == 0
    assert took < 2 + 5
    assert not [pid for pid in every_child if alive(pid)], "a child outlived the supervisor"
    assert not [j for j in system.jobs() if j.state == "running"], "left 'running' behind"
    assert {str(system.app.get(i).state) for i in long} == {"queued"}


def test_a_job_that_keeps_killing_its_worker_goes_dead_as_worker_lost(system: System) -> None:
    job = system.app.enqueue("suicide", {})

    def lease_ran_out() -> bool:
        [(expires,)] = system.sql("SELECT lease_expires_at FROM conveyor_jobs WHERE id = ?",
                                  job.id)
        return expires is None or expires < time.time()

    for attempt in (1, 2, 3):
        doomed = system.worker(f"doomed{attempt}", "--concurrency", "2")
        assert doomed.wait(20) == -signal.SIGKILL, system.tail_of(doomed)
        assert system.count("start")[job.id] == attempt
        wait_until(lease_ran_out, 10, "the dead worker's lease to run out")

    survivor = system.worker("survivor", "--concurrency", "2")  # its upkeep rescues the job
    other = system.app.enqueue("work", {"n": "other"})
    final = system.wait_terminal([job.id, other.id], 20)
    dead = final[job.id]
    assert dead.state == "dead" and dead.dead_reason == "worker_lost"
    assert [(e.attempt, e.type) for e in dead.errors] == [(n, "WorkerLost") for n in (1, 2, 3)]
    assert system.count("start")[job.id] == 3, "the poison job ran again after its attempts"
    assert final[other.id].state == "completed"
    assert system.stop(survivor)[0] == 0


def test_heartbeat_holds_the_lease_while_a_task_blocks_the_event_loop(system: System) -> None:
    job = system.app.enqueue("block_loop", {"sleep": 5})  # 2.5 leases, loop blocked
    worker = system.worker("worker", "--concurrency", "2")
    wait_until(lambda: system.count("start")[job.id], 20, "the blocking job to start")
    rescued, deadline = 0, time.monotonic() + 20
    while not system.count("done")[job.id]:  # another node's upkeep, as often as it likes
        assert time.monotonic() < deadline, "the blocking job never finished"
        rescued += system.app.call(lambda s: s.rescue_expired())
        time.sleep(0.1)
    assert rescued == 0, "the lease ran out while the task held the event loop"
    done = system.wait_terminal([job.id], 10)[job.id]
    assert done.state == "completed" and done.attempt == 1 and not done.errors
    assert system.stop(worker)[0] == 0
