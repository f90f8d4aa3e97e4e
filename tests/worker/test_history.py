"""Attempt history as a worker writes it: a row per attempt with the worker's figures, error
groups by fingerprint, Sensitive values kept out, and the group actions of the app."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from conveyor import Conveyor, FakeClock, JobContext, JobState, Retry, Sensitive
from conveyor.job import JobFilter
from conveyor.worker.worker import Worker

pytestmark = pytest.mark.anyio


async def test_two_failures_then_success_make_three_rows_two_in_one_group(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    calls: list[int] = []

    @app.task(retry=Retry(attempts=5, backoff="fixed", base=10))
    def flaky(ctx: JobContext, payload: dict[str, Any]) -> str:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError(f"order {payload['order']} at https://pay.test/o/"
                                  f"{ctx.attempt}: timeout after {ctx.attempt * 7} ms")
        return "ok"

    job = flaky.enqueue({"order": 1234})
    for _ in range(3):
        await worker.run_until_idle()
        clock.advance(11)
    assert app.get(job.id).state == JobState.COMPLETED

    rows = app.analytics.attempts(job.id)
    assert [(r.attempt, r.outcome) for r in rows] == [(1, "retried"), (2, "retried"),
                                                      (3, "completed")]
    assert {r.worker_id for r in rows} == {"worker-test"}
    assert all(r.cpu is not None and r.cpu >= 0 for r in rows)  # a sync task's thread time
    assert all(r.rss is not None and r.rss > 1_000_000 for r in rows)
    first, second, _ = rows
    assert first.fingerprint is not None and first.fingerprint == second.fingerprint
    assert first.error_type == "ConnectionError" and "order 1234" in (first.error_message or "")

    [group] = app.analytics.errors(app.analytics.window("1h"))
    assert (group.fingerprint, group.count, group.tasks) == (first.fingerprint, 2,
                                                             (flaky.name,))
    [summary] = app.analytics.tasks(app.analytics.window("1h"))
    assert summary.counts["retried"] == 2 and summary.counts["completed"] == 1


async def test_a_different_top_frame_is_a_different_group(app: Conveyor,
                                                         worker: Worker) -> None:
    def lookup(key: str) -> None:
        raise KeyError(key)

    def other(key: str) -> None:
        raise KeyError(key)

    @app.task(retry=Retry(attempts=1))
    def first(ctx: JobContext, payload: dict[str, Any]) -> None:
        lookup(payload["key"])

    @app.task(retry=Retry(attempts=1))
    def second(ctx: JobContext, payload: dict[str, Any]) -> None:
        other(payload["key"])

    for n in range(3):
        first.enqueue({"key": f"user-{n}"})
    second.enqueue({"key": "user-9"})
    await worker.run_until_idle()
    groups = app.analytics.errors(app.analytics.window("1h"))
    assert sorted(g.count for g in groups) == [1, 3]


class Card(BaseModel):
    holder: str
    number: Annotated[str, Sensitive]


async def test_sensitive_values_never_reach_the_history(app: Conveyor, worker: Worker,
                                                        db_url: str) -> None:
    @app.task(schema=Card, retry=Retry(attempts=1))
    def charge(ctx: JobContext, card: Card) -> None:
        raise ValueError(f"card {card.number} declined for {card.holder}")

    job = charge.enqueue({"holder": "Ada", "number": "4111111111111111"})
    await worker.run_until_idle()
    [row] = app.analytics.attempts(job.id)
    assert row.error_message == "card [redacted] declined for Ada"
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        stored = conn.execute("SELECT * FROM conveyor_attempts").fetchall()
    assert "4111111111111111" not in repr(stored)


@pytest.mark.parametrize("page", [1_000, 2])
async def test_retry_and_discard_every_dead_job_of_a_group(
        app: Conveyor, worker: Worker, page: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dead job of the group, however many pages it takes (a page of 2: 3 jobs)."""
    monkeypatch.setattr("conveyor.analytics.GROUP_PAGE", page)
    @app.task(retry=Retry(attempts=1))
    def broken(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError(f"upstream {payload['n']} refused")

    @app.task(retry=Retry(attempts=1))
    def unrelated(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise TypeError("nope")

    jobs = [broken.enqueue({"n": n}) for n in range(3)]
    other = unrelated.enqueue()
    await worker.run_until_idle()
    groups = {g.type: g for g in app.analytics.errors(app.analytics.window("1h"))}
    group = groups["RuntimeError"]
    assert group.dead_jobs == 3
    assert app.analytics.retry_group(group.fingerprint) == 3
    assert {app.get(j.id).state for j in jobs} == {JobState.QUEUED}
    assert app.get(other.id).state == JobState.DEAD
    await worker.run_until_idle()
    assert app.analytics.discard_group(group.fingerprint) == 3
    assert app.list_jobs(JobFilter(states=(JobState.DEAD,))) == [app.get(other.id)]
    assert len(app.analytics.attempts(jobs[0].id)) == 2  # the audit trail stays


async def test_history_can_be_switched_off(db_url: str, clock: FakeClock) -> None:
    from conveyor import Settings

    app = Conveyor(db_url, settings=Settings(history=False), clock=clock)
    try:
        @app.task
        def quiet(ctx: JobContext, payload: Any) -> None:
            return None

        job = quiet.enqueue()
        runner = app.worker(concurrency=1, worker_id="w")
        await runner.run_until_idle()
        runner.threads.shutdown(wait=True)
        runner.close()
        assert app.get(job.id).state == JobState.COMPLETED
        assert app.analytics.attempts(job.id) == []
    finally:
        app.close()


async def test_maintenance_folds_what_the_settles_left_pending(app: Conveyor, worker: Worker,
                                                               db_url: str) -> None:
    @app.task(retry=Retry(attempts=1))
    def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    for _ in range(3):
        noop.enqueue()
    assert await worker.run_once() == 3  # no maintenance: the attempts stay pending

    def stored(table: str) -> int:
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    assert (stored("conveyor_attempts_pending"), stored("conveyor_attempts")) == (3, 0)
    assert worker.maintenance is not None
    assert await worker.maintenance.fold_history() == 3
    assert await worker.maintenance.fold_history() == 0
    assert (stored("conveyor_attempts_pending"), stored("conveyor_attempts")) == (0, 3)
