"""Lifecycle hooks and task middleware, in one process: a real SQLite file, a FakeClock and
Worker.run_once. Each transition fires its hooks once, after the store accepted it."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any

import pytest

from conveyor import (
    Cancel,
    ConfigError,
    Conveyor,
    Discard,
    FakeClock,
    JobContext,
    JobState,
    Retry,
)
from conveyor.hooks import EVENTS, HookEvent
from conveyor.worker.worker import Worker

pytestmark = pytest.mark.anyio


def record_all(app: Conveyor) -> list[tuple[str, str, int | None]]:
    """Every hook event as (event, task, attempt), half of them through async hooks."""
    seen: list[tuple[str, str, int | None]] = []
    for i, name in enumerate(EVENTS):
        if i % 2:
            async def hook(event: HookEvent) -> None:
                await asyncio.sleep(0)
                seen.append((event.event, event.task, event.attempt))
        else:
            def hook(event: HookEvent) -> None:  # type: ignore[misc]
                seen.append((event.event, event.task, event.attempt))
        app.on(name)(hook)
    return seen


async def test_a_job_that_fails_twice_then_succeeds(app: Conveyor, worker: Worker,
                                                    clock: FakeClock) -> None:
    seen = record_all(app)
    calls = []

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=10, jitter=0))
    async def flaky(ctx: JobContext, payload: Any) -> str:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return "ok"

    job = flaky.enqueue()
    for _ in range(3):
        assert await worker.run_until_idle() == 1
        clock.advance(10)
    assert app.get(job.id).state == JobState.COMPLETED
    assert seen == [("enqueued", "flaky", 0),
                    ("started", "flaky", 1), ("failed", "flaky", 1), ("retrying", "flaky", 1),
                    ("started", "flaky", 2), ("failed", "flaky", 2), ("retrying", "flaky", 2),
                    ("started", "flaky", 3), ("completed", "flaky", 3)]


async def test_dead_discarded_and_cancelled_jobs(app: Conveyor, worker: Worker) -> None:
    events: list[HookEvent] = []
    for name in ("dead", "cancelled", "failed"):
        app.on(name)(events.append)

    @app.task(retry=Retry(attempts=1))
    async def broken(ctx: JobContext, payload: Any) -> None:
        raise ValueError("bad input 42")

    @app.task
    async def thrown_away(ctx: JobContext, payload: Any) -> None:
        raise Discard("not wanted")

    @app.task
    async def called_off(ctx: JobContext, payload: Any) -> None:
        raise Cancel("never mind")

    ids = [broken.enqueue().id, thrown_away.enqueue().id, called_off.enqueue().id]
    assert await worker.run_until_idle() == 3
    got = {(e.event, e.job_id, e.reason) for e in events}
    assert got == {("failed", ids[0], "failed"), ("dead", ids[0], "failed"),
                   ("failed", ids[1], "discarded"), ("dead", ids[1], "discarded"),
                   ("cancelled", ids[2], "never mind")}
    [dead] = [e for e in events if e.event == "dead" and e.job_id == ids[0]]
    assert dead.error is not None
    assert (dead.error.type, dead.error.message) == ("ValueError", "bad input 42")
    assert dead.worker_id == "worker-test" and dead.queue == "default"


async def test_a_hook_that_raises_is_logged_and_changes_nothing(
        app: Conveyor, worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []
    runs: list[int] = []

    @app.on("completed")
    def broken_sync(event: HookEvent) -> None:
        raise RuntimeError("sync hook bug")

    @app.on("completed")
    async def broken_async(event: HookEvent) -> None:
        raise RuntimeError("async hook bug")

    @app.on("started")
    def broken_start(event: HookEvent) -> None:
        raise RuntimeError("start hook bug")

    app.on("completed")(lambda event: done.append(event.job_id))

    @app.task
    async def work(ctx: JobContext, payload: Any) -> int:
        runs.append(ctx.attempt)
        return 1

    with caplog.at_level(logging.ERROR, logger="conveyor.hooks"):
        job = work.enqueue()
        assert await worker.run_until_idle() == 1
    assert runs == [1] and done == [job.id]
    got = app.get(job.id)
    assert (got.state, got.attempt, got.result) == (JobState.COMPLETED, 1, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed on job" in m for m in messages) == 3
    assert any(r.exc_info and "async hook bug" in str(r.exc_info[1]) for r in caplog.records)


async def test_an_outcome_refused_for_a_lost_lease_fires_nothing(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    events: list[str] = []
    for name in ("completed", "failed", "dead"):
        app.on(name)(lambda event: events.append(event.event))
    started, release = threading.Event(), threading.Event()

    @app.task
    def slow(ctx: JobContext, payload: Any) -> str:
        started.set()
        release.wait(10)
        return "stale"

    slow.enqueue()
    run = asyncio.create_task(worker.run_once())
    await asyncio.to_thread(started.wait, 10)
    clock.advance(worker.lease + 1)
    assert app.call(lambda s: s.rescue_expired(clock.now())) == 1
    release.set()
    await asyncio.wait_for(run, 10)
    assert worker.lost == 1 and events == []


async def test_maintenance_fires_dead_for_expired_and_lost_jobs(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    dead: list[tuple[str, str | None]] = []
    app.on("dead")(lambda event: dead.append((event.job_id, event.reason)))

    @app.task(retry=Retry(attempts=1))
    def stuck(ctx: JobContext, payload: Any) -> None: ...

    stale = stuck.enqueue(ttl=5, delay=60)
    lost = stuck.enqueue()
    app.call(lambda s: s.claim(None, "worker-gone", 1, 30.0, clock.now()))
    clock.advance(61)
    assert worker.maintenance is not None
    counts = await worker.maintenance.run_once()
    assert (counts["rescued"], counts["expired"]) == (1, 1)
    assert sorted(dead) == sorted([(stale.id, "expired"), (lost.id, "worker_lost")])
    await worker.maintenance.run_once()
    assert len(dead) == 2  # once


def test_unknown_events_and_bad_middleware_are_refused(app: Conveyor) -> None:
    with pytest.raises(ConfigError, match=r"unknown hook event 'finished'.*enqueued"):
        app.on("finished")
    with pytest.raises(ConfigError, match="async function"):
        app.use(lambda ctx, call_next: call_next())  # type: ignore[arg-type,return-value]


TENANT: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)


async def test_middleware_wraps_every_run_in_order(app: Conveyor, worker: Worker) -> None:
    order: list[str] = []

    @app.middleware
    async def outer(ctx: JobContext, call_next: Any) -> Any:
        order.append("outer in")
        token = TENANT.set(ctx.tenant)
        try:
            return await call_next()
        finally:
            TENANT.reset(token)
            order.append("outer out")

    @app.use
    async def inner(ctx: JobContext, call_next: Any) -> Any:
        order.append("inner in")
        result = await call_next()
        order.append("inner out")
        return {"wrapped": result}

    @app.task
    def sync_task(ctx: JobContext, payload: Any) -> str | None:
        order.append("task")
        return TENANT.get()

    @app.task
    async def async_task(ctx: JobContext, payload: Any) -> str | None:
        return TENANT.get()

    first = sync_task.enqueue(tenant="acme")
    assert await worker.run_until_idle() == 1
    assert order == ["outer in", "inner in", "task", "inner out", "outer out"]
    second = async_task.enqueue(tenant="globex")
    assert await worker.run_until_idle() == 1
    assert app.get(first.id).result == {"wrapped": "acme"}
    assert app.get(second.id).result == {"wrapped": "globex"}


async def test_a_middleware_refusal_ends_the_job_before_it_runs(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    ran: list[str] = []

    @app.middleware
    async def verify_tenant(ctx: JobContext, call_next: Any) -> Any:
        if ctx.tenant == "blocked":
            raise Discard(f"tenant {ctx.tenant} is not verified")
        if ctx.tenant == "flaky":
            raise ConnectionError("tenant service unreachable")
        return await call_next()

    @app.task(retry=Retry(attempts=2, backoff="fixed", base=1, jitter=0))
    async def work(ctx: JobContext, payload: Any) -> None:
        ran.append(ctx.tenant or "")

    refused = work.enqueue(tenant="blocked")
    later = work.enqueue(tenant="flaky")
    fine = work.enqueue(tenant="ok")
    assert await worker.run_until_idle() == 3
    got = app.get(refused.id)
    assert (got.state, got.dead_reason, got.attempt) == (JobState.DEAD, "discarded", 1)
    assert got.errors[-1].message == "tenant blocked is not verified"
    assert app.get(later.id).state == JobState.SCHEDULED  # an ordinary failure: retried
    assert app.get(fine.id).state == JobState.COMPLETED
    assert ran == ["ok"]


def test_enqueued_fires_in_the_producer_once_per_stored_job(app: Conveyor) -> None:
    seen: list[str] = []
    app.on("enqueued")(lambda event: seen.append(event.job_id))

    async def also_async(event: HookEvent) -> None:
        seen.append("async:" + event.job_id)

    app.on("enqueued")(also_async)

    @app.task
    def work(ctx: JobContext, payload: Any) -> None: ...

    first = work.enqueue(idempotency_key="k")
    again = work.enqueue(idempotency_key="k")
    assert again.duplicate
    batch = app.enqueue_many([("work", {"i": 1}), ("work", {"i": 2})])
    ids = [first.id] + [j.id for j in batch]
    assert seen == [x for i in ids for x in (i, "async:" + i)]


async def test_job_logs_are_sampled_per_task_but_never_failures(
        db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    from conveyor import Settings

    app = Conveyor(db_url, settings=Settings(log_sample="4/min,5"), clock=clock)

    @app.task(retry=Retry(attempts=1))
    async def often(ctx: JobContext, payload: Any) -> None:
        if payload["i"] % 10 == 9:
            raise ValueError("every tenth fails")

    worker = app.worker(concurrency=1, worker_id="worker-sampled")
    try:
        for i in range(30):
            often.enqueue({"i": i})
        with caplog.at_level(logging.INFO, logger="conveyor.jobs"):
            assert await worker.run_until_idle() == 30
    finally:
        worker.close()
        app.close()
    started = [r for r in caplog.records if getattr(r, "event", "") == "attempt_started"]
    ended = [r for r in caplog.records if getattr(r, "event", "") == "attempt_ended"]
    assert len(started) == 4 + 26 // 5  # the first 4, then every 5th
    dead = [r for r in ended if r.outcome == "dead"]  # type: ignore[attr-defined]
    assert len(dead) == 3  # all three failures, sampled or not
    assert len(ended) == len(started) + sum(
        1 for r in dead if r.job_id not in {s.job_id for s in started})  # type: ignore[attr-defined]


def test_a_waiting_job_cancelled_or_expired_by_the_app_fires_in_that_process(
        app: Conveyor, clock: FakeClock) -> None:
    events: list[tuple[str, str, str | None]] = []
    for name in ("cancelled", "dead"):
        app.on(name)(lambda e: events.append((e.event, e.job_id, e.reason)))

    @app.task
    def work(ctx: JobContext, payload: Any) -> None: ...

    waiting = work.enqueue()
    stale = work.enqueue(ttl=5)
    app.cancel(waiting.id)
    app.cancel(waiting.id)  # already cancelled: no second event
    clock.advance(6)
    assert app.clean_expired() == 1
    assert events == [("cancelled", waiting.id, "cancelled"), ("dead", stale.id, "expired")]


async def test_ctx_logger_hashes_sensitive_values_everywhere(
        db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    from typing import Annotated

    from pydantic import BaseModel

    from conveyor import Sensitive, Settings
    from conveyor.observability.joblogs import Hasher

    class Card(BaseModel):
        holder: str
        number: Annotated[int, Sensitive]
        email: Annotated[str, Sensitive]

    app = Conveyor(db_url, settings=Settings(log_hash_key="k"), clock=clock)

    @app.task(schema=Card, retry=Retry(attempts=1))
    def charge(ctx: JobContext, card: Card) -> None:
        ctx.logger.info("charging %s for %s", card.email, card.holder,
                        extra={"card": card.number, "mail": card.email, "n": 3})
        try:
            raise ValueError(f"declined: {card.number} / {card.email!r}")
        except ValueError:
            ctx.logger.exception("the bank said no")
        raise RuntimeError(f"give up on {card.email}")

    worker = app.worker(worker_id="worker-pii")
    try:
        charge.enqueue({"holder": "Ann", "number": 4111111111111111,
                        "email": "ann@example.com"})
        with caplog.at_level(logging.INFO):
            assert await worker.run_until_idle() == 1
    finally:
        worker.close()
        app.close()
    hasher = Hasher("k")
    text = "\n".join(r.getMessage() + " " + repr(r.__dict__) for r in caplog.records)
    assert "ann@example.com" not in text and "4111111111111111" not in text
    [charging] = [r for r in caplog.records if r.getMessage().startswith("charging")]
    assert charging.getMessage() == f"charging {hasher.digest('ann@example.com')} for Ann"
    assert charging.card == hasher.digest(4111111111111111)  # type: ignore[attr-defined]
    assert charging.n == 3  # type: ignore[attr-defined]
    [no] = [r for r in caplog.records if r.getMessage().startswith("the bank said no")]
    assert "ValueError: declined: sha256:" in no.getMessage()
    [dead] = [r for r in caplog.records if getattr(r, "outcome", None) == "dead"]
    assert dead.error == f"give up on {hasher.digest('ann@example.com')}"  # type: ignore[attr-defined]
