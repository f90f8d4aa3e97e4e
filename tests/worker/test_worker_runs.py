"""Running jobs: results, retries with backoff, snoozes, discards, timeouts, progress, children."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from conveyor import Cancel, Conveyor, Discard, FakeClock, JobContext, JobState, Retry, Snooze
from conveyor.worker.worker import Worker

from .conftest import T0

pytestmark = pytest.mark.anyio


async def test_async_and_sync_tasks_complete_with_their_results(app: Conveyor,
                                                                worker: Worker) -> None:
    threads: list[str] = []

    @app.task
    async def add(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"sum": payload["a"] + payload["b"], "attempt": ctx.attempt}

    @app.task(queue="cpu")
    def shout(ctx: JobContext, payload: dict[str, Any]) -> str:
        threads.append(threading.current_thread().name)
        return payload["word"].upper()

    @app.task
    async def nothing(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    a = add.enqueue({"a": 2, "b": 3})
    s = shout.enqueue({"word": "hi"})
    n = nothing.enqueue()
    assert await worker.run_once() == 3

    done_a, done_s, done_n = (app.get(j.id) for j in (a, s, n))
    assert (done_a.state, done_a.result) == (JobState.COMPLETED, {"sum": 5, "attempt": 1})
    assert (done_s.state, done_s.result, done_s.queue) == (JobState.COMPLETED, "HI", "cpu")
    assert (done_n.state, done_n.result) == (JobState.COMPLETED, None)
    assert done_a.worker_id == "worker-test"
    assert done_a.started_at == T0 and done_a.finished_at == T0
    assert threads and threads[0].startswith("conveyor-task")  # sync code runs off the loop
    assert await worker.run_once() == 0


async def test_run_until_idle_runs_everything_due(app: Conveyor, worker: Worker) -> None:
    @app.task
    async def noop(ctx: JobContext, payload: dict[str, Any]) -> int:
        return int(payload["i"])

    jobs = [noop.enqueue({"i": i}) for i in range(10)]
    later = noop.enqueue({"i": 99}, delay=60)
    assert await worker.run_until_idle() == 10
    assert [app.get(j.id).result for j in jobs] == list(range(10))
    assert app.get(later.id).state == JobState.SCHEDULED


async def test_failing_task_retries_with_backoff_then_dies_with_every_error(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    calls: list[int] = []

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=10))
    async def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        raise ValueError(f"smtp down on attempt {ctx.attempt}")

    job = flaky.enqueue({"to": "a@example.com"})
    assert await worker.run_until_idle() == 1
    got = app.get(job.id)
    assert got.state == JobState.SCHEDULED
    assert got.run_at == pytest.approx(T0 + 10)
    assert got.attempt == 1

    clock.advance(9)
    assert await worker.run_until_idle() == 0   # not due yet
    clock.advance(1)
    assert await worker.run_until_idle() == 1   # maintenance promoted it, then it ran
    clock.advance(10)
    assert await worker.run_until_idle() == 1
    assert calls == [1, 2, 3]

    got = app.get(job.id)
    assert got.state == JobState.DEAD
    assert got.dead_reason == "failed"
    assert got.finished_at == pytest.approx(T0 + 20)
    assert [e.attempt for e in got.errors] == [1, 2, 3]
    for number, err in enumerate(got.errors, start=1):
        assert err.type == "ValueError"
        assert err.message == f"smtp down on attempt {number}"
        assert err.traceback is not None and "ValueError: smtp down" in err.traceback
        assert "flaky" in err.traceback
        assert err.worker == "worker-test"
        assert err.host == worker.host
    assert [e.at for e in got.errors] == [T0, T0 + 10, T0 + 20]
    clock.advance(1000)
    assert await worker.run_until_idle() == 0


async def test_exponential_backoff_delay_is_jittered_around_its_base(
        app: Conveyor, worker: Worker) -> None:
    @app.task(retry=Retry(attempts=3, backoff="exponential", base=8, jitter=0.25))
    async def boom(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    jobs = [boom.enqueue() for _ in range(4)]
    await worker.run_once()
    for job in jobs:
        got = app.get(job.id)
        assert got.state == JobState.SCHEDULED
        assert T0 + 6 <= got.run_at <= T0 + 10


async def test_max_attempts_option_overrides_the_task_default(app: Conveyor,
                                                              worker: Worker) -> None:
    @app.task(retry=Retry(attempts=5))
    async def boom(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    job = boom.enqueue(max_attempts=1)
    await worker.run_once()
    got = app.get(job.id)
    assert (got.state, got.max_attempts, len(got.errors)) == (JobState.DEAD, 1, 1)


@pytest.mark.parametrize("outcome", ["retry-later", "snooze"])
async def test_retry_later_reschedules_without_counting_an_attempt(
        app: Conveyor, worker: Worker, clock: FakeClock, outcome: str) -> None:
    calls: list[int] = []

    @app.task(retry=Retry(attempts=1))
    async def poll(ctx: JobContext, payload: dict[str, Any]) -> str:
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise Retry.later(30) if outcome == "retry-later" else Snooze(30)
        return "ready"

    job = poll.enqueue()
    await worker.run_until_idle()
    got = app.get(job.id)
    assert (got.state, got.attempt, got.errors) == (JobState.SCHEDULED, 0, ())
    assert got.run_at == pytest.approx(T0 + 30)

    clock.advance(30)
    await worker.run_until_idle()
    clock.advance(30)
    await worker.run_until_idle()
    got = app.get(job.id)
    assert (got.state, got.result, got.attempt) == (JobState.COMPLETED, "ready", 1)
    assert calls == [1, 1, 1]  # with attempts=1 a counted retry would have killed it


async def test_discard_sends_the_job_straight_to_dead(app: Conveyor, worker: Worker) -> None:
    @app.task(retry=Retry(attempts=5))
    async def check(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise Discard("account closed")

    job = check.enqueue()
    await worker.run_until_idle()
    got = app.get(job.id)
    assert (got.state, got.dead_reason, got.attempt) == (JobState.DEAD, "discarded", 1)
    [err] = got.errors
    assert (err.type, err.message) == ("Discard", "account closed")


async def test_cancel_outcome_ends_the_job_cancelled(app: Conveyor, worker: Worker) -> None:
    @app.task
    async def maybe(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise Cancel("no longer wanted")

    job = maybe.enqueue()
    await worker.run_until_idle()
    got = app.get(job.id)
    assert (got.state, got.errors) == (JobState.CANCELLED, ())


async def test_async_timeout_fails_the_attempt_with_job_timeout(app: Conveyor,
                                                                worker: Worker) -> None:
    @app.task(timeout=0.05, retry=Retry(attempts=2, backoff="fixed", base=5))
    async def stuck(ctx: JobContext, payload: dict[str, Any]) -> None:
        await asyncio.sleep(60)

    job = stuck.enqueue()
    assert await worker.run_once() == 1
    got = app.get(job.id)
    assert got.state == JobState.SCHEDULED
    [err] = got.errors
    assert err.type == "JobTimeout"
    assert "timeout" in err.message and "stuck" in err.message


async def test_sync_timeout_fails_the_attempt_and_tells_the_thread(app: Conveyor,
                                                                   worker: Worker) -> None:
    told = threading.Event()

    @app.task(timeout=0.05, retry=Retry(attempts=1))
    def grind(ctx: JobContext, payload: dict[str, Any]) -> None:
        for _ in range(500):
            if ctx.cancelled:
                told.set()
                return
            threading.Event().wait(0.01)

    job = grind.enqueue()
    await worker.run_once()
    got = app.get(job.id)
    assert (got.state, got.errors[0].type) == (JobState.DEAD, "JobTimeout")
    assert told.wait(5), "the task never saw ctx.cancelled"


async def test_progress_reported_by_a_task_is_stored(app: Conveyor, worker: Worker) -> None:
    @app.task
    async def resize(ctx: JobContext, payload: dict[str, Any]) -> None:
        ctx.progress(10, step="download")
        ctx.progress(40, step="thumbnails")
        raise Retry.later(60)

    @app.task
    def encode(ctx: JobContext, payload: dict[str, Any]) -> str:
        ctx.progress(75, step="encode")
        return "ok"

    waiting = resize.enqueue()
    finished = encode.enqueue()
    await worker.run_once()
    got = app.get(waiting.id)
    assert (got.progress, got.progress_step) == (40.0, "thumbnails")
    got = app.get(finished.id)
    assert got.state == JobState.COMPLETED
    assert (got.progress, got.progress_step) == (100.0, "encode")


async def test_child_jobs_inherit_tenant_correlation_and_parent(app: Conveyor,
                                                                worker: Worker) -> None:
    seen: list[tuple[str | None, str | None]] = []

    @app.task
    async def parent(ctx: JobContext, payload: dict[str, Any]) -> str:
        child_job = ctx.enqueue("child", {"n": 1})
        await ctx.enqueue_async("child", {"n": 2}, correlation_id="own-id")
        return child_job.id

    @app.task
    def child(ctx: JobContext, payload: dict[str, Any]) -> int:
        seen.append((ctx.tenant, ctx.correlation_id))
        return int(payload["n"])

    job = parent.enqueue({}, tenant="org-1", correlation_id="req-42")
    assert await worker.run_until_idle() == 3
    child_id = app.get(job.id).result
    first = app.get(child_id)
    assert (first.tenant, first.correlation_id, first.parent_id) == ("org-1", "req-42", job.id)
    assert first.state == JobState.COMPLETED and first.result == 1
    [second] = [j for j in app.list_jobs() if j.task == "child" and j.id != child_id]
    assert (second.tenant, second.correlation_id, second.parent_id) == (
        "org-1", "own-id", job.id)
    assert sorted(seen, key=str) == sorted([("org-1", "req-42"), ("org-1", "own-id")], key=str)


async def test_effect_key_is_stable_across_attempts(app: Conveyor, worker: Worker,
                                                    clock: FakeClock) -> None:
    keys: list[str] = []

    @app.task(retry=Retry(attempts=2, backoff="fixed", base=1))
    async def pay(ctx: JobContext, payload: dict[str, Any]) -> None:
        keys.append(ctx.effect_key("charge"))
        if ctx.attempt == 1:
            raise RuntimeError("gateway timeout")

    pay.enqueue()
    other = pay.enqueue()
    await worker.run_once()
    clock.advance(1)
    await worker.run_until_idle()
    assert len(keys) == 4
    assert len(set(keys)) == 2
    assert keys.count(keys[0]) == 2
    assert other.id not in keys[0]


async def test_a_timeout_error_raised_by_the_task_itself_is_not_a_job_timeout(
        app: Conveyor, worker: Worker) -> None:
    @app.task(timeout=60, retry=Retry(attempts=1))
    async def call_upstream(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise TimeoutError("upstream API timed out")

    job = call_upstream.enqueue()
    await worker.run_once()
    [err] = app.get(job.id).errors
    assert (err.type, err.message) == ("TimeoutError", "upstream API timed out"), (
        "the task failed at once with its own TimeoutError, yet it is reported as having "
        f"run past its 60s timeout: {err.type}: {err.message}")


async def test_a_sync_task_raising_timeout_error_is_not_a_job_timeout(
        app: Conveyor, worker: Worker) -> None:
    @app.task(timeout=60, retry=Retry(attempts=1))
    def read_socket(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise TimeoutError("read timed out")

    job = read_socket.enqueue()
    await worker.run_once()
    [err] = app.get(job.id).errors
    assert (err.type, err.message) == ("TimeoutError", "read timed out")


async def test_progress_is_clamped_to_0_to_100(app: Conveyor, worker: Worker) -> None:
    @app.task
    async def eager(ctx: JobContext, payload: dict[str, Any]) -> None:
        ctx.progress(250, step="over")
        raise Retry.later(5)

    job = eager.enqueue()
    await worker.run_once()
    assert app.get(job.id).progress == 100.0


async def test_duplicate_enqueue_through_the_app_returns_the_existing_job(
        app: Conveyor) -> None:
    @app.task
    async def welcome(ctx: JobContext, payload: dict[str, Any]) -> None: ...

    first = welcome.enqueue({"user_id": "u1"}, idempotency_key="welcome:u1", tenant="org-1")
    again = welcome.enqueue({"user_id": "other"}, idempotency_key="welcome:u1", tenant="org-1")
    assert first.duplicate is False
    assert again.duplicate is True
    assert again.id == first.id
    assert again.payload == {"user_id": "u1"}
    assert len(app.list_jobs()) == 1


async def test_a_job_past_its_ttl_is_never_run(app: Conveyor, worker: Worker,
                                               clock: FakeClock) -> None:
    ran: list[int] = []

    @app.task(ttl=60)
    async def fresh_only(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(1)

    job = fresh_only.enqueue()
    clock.advance(61)
    assert await worker.run_until_idle() == 0
    got = app.get(job.id)
    assert (got.state, got.dead_reason, ran) == (JobState.DEAD, "expired", [])


async def test_a_result_that_is_not_json_is_a_final_failure(app: Conveyor,
                                                            worker: Worker) -> None:
    @app.task(retry=Retry(attempts=3))
    async def odd(ctx: JobContext, payload: dict[str, Any]) -> object:
        return object()

    job = odd.enqueue()
    await worker.run_until_idle()
    got = app.get(job.id)
    assert (got.state, got.attempt) == (JobState.DEAD, 1)
    assert "not JSON-serialisable" in got.errors[0].message
