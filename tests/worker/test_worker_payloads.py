"""What reaches a task: unknown tasks, schemas validated at enqueue, batch limits,
encrypted payloads and keys that went missing."""

from __future__ import annotations

import base64
import os
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from conveyor import (
    BatchTooLarge,
    Conveyor,
    FakeClock,
    JobContext,
    JobState,
    PayloadInvalid,
    Retry,
    Sensitive,
    Settings,
    UnknownTask,
)
from conveyor.worker.worker import Worker

pytestmark = pytest.mark.anyio


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_unknown_task_in_the_store_ends_dead_after_its_attempts(
        app: Conveyor, worker: Worker, db_url: str, clock: FakeClock) -> None:
    @app.task
    async def known(ctx: JobContext, payload: dict[str, Any]) -> None: ...

    producer = Conveyor(db_url, settings=Settings(), clock=clock)  # knows no tasks
    try:
        job = producer.enqueue("ghost.task", {"x": 1}, max_attempts=2)
    finally:
        producer.close()

    assert await worker.run_until_idle() == 1
    got = app.get(job.id)
    assert got.state == JobState.SCHEDULED
    clock.advance(3600)
    assert await worker.run_until_idle() == 1
    got = app.get(job.id)
    assert (got.state, got.dead_reason) == (JobState.DEAD, "unknown_task")
    assert [e.type for e in got.errors] == ["UnknownTask", "UnknownTask"]
    assert "ghost.task" in got.errors[0].message and "known" in got.errors[0].message


class Evaluate(BaseModel):
    assessment_id: str
    score: int


async def test_schema_is_validated_at_enqueue_and_nothing_is_stored(app: Conveyor) -> None:
    @app.task(schema=Evaluate)
    def evaluate(ctx: JobContext, payload: Evaluate) -> None: ...

    with pytest.raises(PayloadInvalid) as caught:
        evaluate.enqueue({"assessment_id": "a1", "score": "not a number"})
    assert caught.value.task == "evaluate"
    assert caught.value.errors[0]["field"] == "score"
    assert "'evaluate'" in str(caught.value) and "'score'" in str(caught.value)

    with pytest.raises(PayloadInvalid) as caught:
        app.enqueue("evaluate", {"score": 3})
    assert caught.value.errors[0]["field"] == "assessment_id"
    assert app.list_jobs() == []


async def test_schema_model_is_what_the_task_receives(app: Conveyor, worker: Worker) -> None:
    received: list[Any] = []

    @app.task(schema=Evaluate)
    def evaluate(ctx: JobContext, payload: Evaluate) -> int:
        received.append(payload)
        return payload.score * 2

    job = evaluate.enqueue({"assessment_id": "a1", "score": "21"})
    assert app.get(job.id).payload == {"assessment_id": "a1", "score": 21}  # stored validated
    await worker.run_once()
    assert [type(p) for p in received] == [Evaluate]
    assert received[0] == Evaluate(assessment_id="a1", score=21)
    assert app.get(job.id).result == 42

    model_job = evaluate.enqueue(Evaluate(assessment_id="a2", score=1))
    assert app.get(model_job.id).payload == {"assessment_id": "a2", "score": 1}


class Webhook(BaseModel):
    target_url: str = Field(alias="targetUrl")


async def test_a_schema_with_field_aliases_runs(app: Conveyor, worker: Worker) -> None:
    received: list[Any] = []

    @app.task(schema=Webhook)
    def deliver(ctx: JobContext, payload: Webhook) -> str:
        received.append(payload)
        return payload.target_url

    job = deliver.enqueue({"targetUrl": "https://example.com/hook"})
    await worker.run_once()
    got = app.get(job.id)
    assert (got.state, got.result, got.dead_reason) == (
        JobState.COMPLETED, "https://example.com/hook", None), (
        f"a valid payload was stored in a shape its own schema refuses: {got.payload}, "
        f"errors: {[e.message[:120] for e in got.errors]}")
    assert received == [Webhook(targetUrl="https://example.com/hook")]


class Transcript(BaseModel):
    assessment_id: str
    transcript: Annotated[str, Sensitive]


async def test_a_stored_payload_that_misses_its_schema_is_dead_without_leaking_it(
        app: Conveyor, worker: Worker, db_url: str, clock: FakeClock) -> None:
    @app.task(schema=Transcript, retry=Retry(attempts=3))
    def evaluate(ctx: JobContext, payload: Transcript) -> None: ...

    producer = Conveyor(db_url, settings=Settings(), clock=clock)  # no schema: by name
    try:
        job = producer.enqueue("evaluate", {"transcript": "my private words"})
    finally:
        producer.close()

    await worker.run_until_idle()
    got = app.get(job.id)
    assert (got.state, got.dead_reason, got.attempt) == (JobState.DEAD, "undecodable", 1)
    [err] = got.errors
    assert "assessment_id" in err.message
    for text in (err.message, err.traceback or ""):
        assert "my private words" not in text, (
            "a Sensitive field's value was copied into the job's error history: " + text[:300])


async def test_one_invalid_payload_in_a_batch_stores_nothing(app: Conveyor) -> None:
    @app.task(schema=Evaluate)
    def evaluate(ctx: JobContext, payload: Evaluate) -> None: ...

    items = [{"task": "evaluate", "payload": {"assessment_id": "a", "score": 1}},
             {"task": "evaluate", "payload": {"assessment_id": "b", "score": "x"}}]
    with pytest.raises(PayloadInvalid) as caught:
        app.enqueue_many(items)
    assert caught.value.errors[0]["field"] == "jobs[1].score"
    assert app.list_jobs() == []


async def test_enqueue_many_over_the_batch_limit_stores_nothing(db_url: str,
                                                                clock: FakeClock) -> None:
    app = Conveyor(db_url, settings=Settings(max_batch=3), clock=clock)
    try:
        with pytest.raises(BatchTooLarge) as caught:
            app.enqueue_many([("t", {"i": i}) for i in range(4)])
        assert (caught.value.size, caught.value.limit) == (4, 3)
        assert "CONVEYOR_MAX_BATCH" in str(caught.value)
        assert app.list_jobs() == []
        jobs = app.enqueue_many([("t", {"i": i}) for i in range(3)])
        assert len({j.batch_id for j in jobs}) == 1 and jobs[0].batch_id
        assert len(app.list_jobs()) == 3
        app.settings = app.settings.with_(max_batch=2)  # settings are replaced, not changed
        with pytest.raises(BatchTooLarge):
            app.enqueue_many([("t", {"i": i}) for i in range(3)])
        assert len(app.list_jobs()) == 3
    finally:
        app.close()


async def test_unknown_task_names_are_refused_at_enqueue(app: Conveyor) -> None:
    @app.task
    async def send_welcome(ctx: JobContext, payload: dict[str, Any]) -> None: ...

    with pytest.raises(UnknownTask) as caught:
        app.enqueue("send_welcom", {"user_id": "u1"})
    assert "send_welcom" in str(caught.value) and "send_welcome" in str(caught.value)
    with pytest.raises(UnknownTask):
        app.enqueue_many([("send_welcome", {}), ("nope", {})])
    assert app.list_jobs() == []


async def test_encrypted_payloads_round_trip(db_url: str, clock: FakeClock) -> None:
    app = Conveyor(db_url, settings=Settings(encryption_keys=f"v1:{_key()}"), clock=clock)
    seen: list[Any] = []

    @app.task
    def handle(ctx: JobContext, payload: dict[str, Any]) -> str:
        seen.append(payload)
        return "done"

    try:
        job = handle.enqueue({"card": "4111-1111"}, tenant="org-1")
        raw = app.call(lambda s: s.get(job.id))
        assert raw is not None
        assert b"4111-1111" not in bytes(raw.payload)
        assert bytes(raw.payload).startswith(b'{"$enc"')
        assert app.get(job.id).payload == {"card": "4111-1111"}

        worker = app.worker(worker_id="worker-enc")
        try:
            await worker.run_once()
        finally:
            worker.close()
        assert seen == [{"card": "4111-1111"}]
        assert app.get(job.id).state == JobState.COMPLETED
    finally:
        app.close()


async def test_rotated_keys_still_decrypt_old_payloads(db_url: str, clock: FakeClock) -> None:
    old, new = _key(), _key()
    producer = Conveyor(db_url, settings=Settings(encryption_keys=f"v1:{old}"), clock=clock)
    job = producer.enqueue("t", {"secret": "s3"})
    producer.close()
    app = Conveyor(db_url, settings=Settings(encryption_keys=f"v2:{new},v1:{old}"), clock=clock)
    try:
        assert app.get(job.id).payload == {"secret": "s3"}
        fresh = app.enqueue("t", {"secret": "s4"})
        raw = app.call(lambda s: s.get(fresh.id))
        assert raw is not None and b'"key":"v2"' in bytes(raw.payload)
    finally:
        app.close()


async def test_a_job_whose_key_was_removed_goes_dead_undecodable(db_url: str,
                                                                 clock: FakeClock) -> None:
    old = _key()
    producer = Conveyor(db_url, settings=Settings(encryption_keys=f"v1:{old}"), clock=clock)
    job = producer.enqueue("handle", {"secret": "plain-text-secret"}, max_attempts=5)
    producer.close()

    app = Conveyor(db_url, settings=Settings(encryption_keys=f"v2:{_key()}"), clock=clock)
    ran: list[Any] = []

    @app.task(retry=Retry(attempts=5))
    def handle(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(payload)

    worker = app.worker(worker_id="worker-undecodable")
    try:
        assert await worker.run_until_idle() == 1
        got = app.get(job.id)
        assert (got.state, got.dead_reason, got.attempt) == (JobState.DEAD, "undecodable", 1)
        [err] = got.errors
        assert "'v1'" in err.message
        for text in (err.message, err.traceback or ""):
            assert "plain-text-secret" not in text and old not in text
        assert ran == []
        assert got.payload == {"$undecodable": got.payload["$undecodable"]}
    finally:
        worker.close()
        app.close()
