"""The app's producer side and control verbs, on a real SQLite store."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor import (
    Conveyor,
    ConveyorError,
    FakeClock,
    InvalidTransition,
    JobContext,
    JobNotFound,
    JobState,
)
from conveyor.job import new_id
from conveyor.worker.worker import Worker

from .conftest import T0

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("field", ["idempotency_key", "correlation_id", "tenant"])
async def test_empty_strings_are_refused_for_keys_and_ids(app: Conveyor, field: str) -> None:
    with pytest.raises(ConveyorError, match=field):
        app.enqueue("t", {}, **{field: ""})
    assert app.list_jobs() == []


async def test_every_job_the_app_says_it_enqueued_exists(app: Conveyor) -> None:
    jobs = []
    for _ in range(2):
        with contextlib.suppress(ConveyorError):  # refusing the empty key is fine too
            jobs.append(app.enqueue("t", {"n": 1}, idempotency_key=""))
    for job in jobs:
        assert app.get(job.id).id == job.id


async def test_enqueue_options_reach_the_envelope(app: Conveyor) -> None:
    when = datetime.fromtimestamp(T0 + 120, tz=UTC)
    job = app.enqueue("report", {"n": 1}, queue="reports", priority=4, run_at=when, ttl=600,
                      correlation_id="req-1", tenant="org-1", max_attempts=7)
    got = app.get(job.id)
    assert (got.queue, got.priority, got.max_attempts) == ("reports", 4, 7)
    assert (got.state, got.run_at) == (JobState.SCHEDULED, pytest.approx(T0 + 120))
    assert got.expires_at == pytest.approx(T0 + 600)
    assert (got.tenant, got.correlation_id) == ("org-1", "req-1")
    assert job.state == got.state and job.run_at == got.run_at


@pytest.mark.parametrize(("options", "words"), [
    ({"priority": "high"}, "priority must be a whole number"),
    ({"max_attempts": 0}, "max_attempts must be at least 1"),
    ({"delay": -1}, "delay must be >= 0"),
    ({"ttl": 0}, "ttl must be a positive"),
    ({"queue": "a\nb"}, "ASCII letters, digits and"),
])
async def test_bad_enqueue_options_say_what_to_change(app: Conveyor, options: dict[str, Any],
                                                      words: str) -> None:
    with pytest.raises(ConveyorError, match=words):
        app.enqueue("t", {}, **options)
    assert app.list_jobs() == []


async def test_unknown_enqueue_option_is_a_type_error(app: Conveyor) -> None:
    with pytest.raises(TypeError, match="colour"):
        app.enqueue("t", {}, colour="blue")


async def test_cancel_and_retry_through_the_app(app: Conveyor, worker: Worker,
                                                clock: FakeClock) -> None:
    @app.task
    async def noop(ctx: JobContext, payload: dict[str, Any]) -> None: ...

    waiting = noop.enqueue(delay=60)
    assert app.cancel(waiting.id).state == JobState.CANCELLED
    assert app.retry(waiting.id).state == JobState.QUEUED
    await worker.run_once()
    assert app.get(waiting.id).state == JobState.COMPLETED

    with pytest.raises(InvalidTransition, match="completed"):
        app.cancel(waiting.id)
    with pytest.raises(InvalidTransition, match="completed"):
        app.retry(waiting.id)
    with pytest.raises(JobNotFound):
        app.cancel(new_id())
    with pytest.raises(JobNotFound):
        app.get(waiting.id, tenant="someone-else")
