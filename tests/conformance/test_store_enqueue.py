"""Producing: enqueue_many, the envelope round trip, idempotency keys, atomic batches."""

from __future__ import annotations

import pytest

from conveyor.job import JobFilter, JobState, new_id
from conveyor.store.base import Cancelled, Complete, Fail, Store

from .support import T0, claim_ids, claim_one, enqueue, error, new_job

pytestmark = pytest.mark.anyio


async def test_enqueue_then_get_round_trips_every_field(store: Store) -> None:
    job = new_job(task="emails.send", queue="emails", payload=b'{"user_id":"u1","n":[1,2]}',
                  priority=7, max_attempts=5, delay=10.0, ttl=3600.0, tenant="org-1",
                  correlation_id="req-42", idempotency_key="welcome:u1", batch_id=new_id(),
                  parent_id=new_id())
    [result] = await store.enqueue_many([job], now=T0)

    assert result.id == job.id
    assert result.duplicate is False
    assert result.state == JobState.SCHEDULED
    assert result.created_at == pytest.approx(T0)
    assert result.run_at == pytest.approx(T0 + 10)

    got = await store.get(job.id)
    assert got is not None
    assert (got.id, got.task, got.queue) == (job.id, "emails.send", "emails")
    assert bytes(got.payload) == b'{"user_id":"u1","n":[1,2]}'
    assert got.state == JobState.SCHEDULED
    assert (got.priority, got.attempt, got.max_attempts) == (7, 0, 5)
    assert (got.tenant, got.correlation_id, got.idempotency_key) == (
        "org-1", "req-42", "welcome:u1")
    assert got.created_at == pytest.approx(T0)
    assert got.run_at == pytest.approx(T0 + 10)
    assert got.expires_at == pytest.approx(T0 + 3600)
    assert (got.started_at, got.finished_at) == (None, None)
    assert (got.progress, got.progress_step, got.result) == (None, None, None)
    assert got.errors == ()
    assert (got.worker_id, got.worker_host, got.dead_reason) == (None, None, None)
    assert (got.batch_id, got.parent_id) == (job.batch_id, job.parent_id)
    assert got.cancel_requested is False


async def test_defaults_round_trip_as_none(store: Store) -> None:
    job_id = await enqueue(store)
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.QUEUED
    assert (got.tenant, got.correlation_id, got.idempotency_key) == (None, None, None)
    assert (got.expires_at, got.batch_id, got.parent_id) == (None, None, None)
    assert (got.priority, got.max_attempts, got.run_at) == (0, 3, pytest.approx(T0))


async def test_get_of_unknown_id_is_none(store: Store) -> None:
    assert await store.get(new_id()) is None


async def test_absolute_run_at_wins_over_delay(store: Store) -> None:
    [result] = await store.enqueue_many([new_job(run_at=T0 + 500, delay=5)], now=T0)
    assert result.state == JobState.SCHEDULED
    assert result.run_at == pytest.approx(T0 + 500)


async def test_run_at_in_the_past_is_queued_at_once(store: Store) -> None:
    [result] = await store.enqueue_many([new_job(run_at=T0 - 60)], now=T0)
    assert result.state == JobState.QUEUED
    assert await claim_ids(store, now=T0) == [result.id]


async def test_batch_results_keep_input_order(store: Store) -> None:
    jobs = [new_job(priority=i % 3) for i in range(20)]
    results = await store.enqueue_many(jobs, now=T0)
    assert [r.id for r in results] == [j.id for j in jobs]
    assert all(r.duplicate is False and r.state == JobState.QUEUED for r in results)


async def test_empty_batch_stores_nothing(store: Store) -> None:
    assert await store.enqueue_many([], now=T0) == []
    assert (await store.stats(now=T0)).by_state.get("queued", 0) == 0


async def test_enqueue_many_is_atomic(store: Store) -> None:
    good = [new_job(), new_job()]
    broken = new_job(payload=None)  # violates the store's NOT NULL payload
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own error type
        await store.enqueue_many([*good, broken], now=T0)
    for job in good:
        assert await store.get(job.id) is None
    assert await claim_ids(store, now=T0) == []


async def test_enqueue_many_with_keys_is_atomic(store: Store) -> None:
    good = new_job(idempotency_key="k-atomic")
    broken = new_job(payload=None, idempotency_key="k-broken")
    with pytest.raises(Exception):  # noqa: B017
        await store.enqueue_many([good, broken], now=T0)
    assert await store.get(good.id) is None
    [again] = await store.enqueue_many([new_job(idempotency_key="k-atomic")], now=T0)
    assert again.duplicate is False


# --- idempotency keys -------------------------------------------------------------------------


async def test_same_key_returns_the_existing_job_marked_duplicate(store: Store) -> None:
    first = await enqueue(store, idempotency_key="welcome:u1", delay=30)
    second = new_job(idempotency_key="welcome:u1")
    [result] = await store.enqueue_many([second], now=T0 + 1)

    assert result.id == first
    assert result.duplicate is True
    assert result.state == JobState.SCHEDULED          # the existing job's state
    assert result.created_at == pytest.approx(T0)      # ... and its times
    assert result.run_at == pytest.approx(T0 + 30)
    assert await store.get(second.id) is None


async def test_key_is_held_while_running_and_while_waiting_to_retry(store: Store) -> None:
    first = await enqueue(store, idempotency_key="k")
    claimed = await claim_one(store)
    [dup] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 1)
    assert (dup.id, dup.duplicate, dup.state) == (first, True, JobState.RUNNING)

    assert await store.settle([Fail(claimed.lease, error(1), retry_in=60)], now=T0 + 2) == [True]
    [dup] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 3)
    assert (dup.id, dup.duplicate, dup.state) == (first, True, JobState.SCHEDULED)


async def test_same_key_in_another_tenant_is_another_job(store: Store) -> None:
    a = await enqueue(store, idempotency_key="k", tenant="org-a")
    [b] = await store.enqueue_many([new_job(idempotency_key="k", tenant="org-b")], now=T0)
    [c] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0)
    assert b.duplicate is False and b.id != a
    assert c.duplicate is False and c.id not in (a, b.id)
    [again] = await store.enqueue_many([new_job(idempotency_key="k", tenant="org-b")], now=T0)
    assert (again.id, again.duplicate) == (b.id, True)


@pytest.mark.parametrize("finish", ["completed", "dead", "cancelled", "cancel-waiting"])
async def test_key_is_free_again_once_the_job_is_terminal(store: Store, finish: str) -> None:
    first = await enqueue(store, idempotency_key="k")
    if finish == "cancel-waiting":
        assert await store.cancel([first], now=T0) == {first: "cancelled"}
    else:
        claimed = await claim_one(store)
        record = {"completed": Complete(claimed.lease, b"1"),
                  "dead": Fail(claimed.lease, error(1), retry_in=None),
                  "cancelled": Cancelled(claimed.lease)}[finish]
        assert await store.settle([record], now=T0 + 1) == [True]

    [again] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 2)
    assert again.duplicate is False
    assert again.id != first
    assert again.state == JobState.QUEUED


async def test_unique_for_keeps_the_key_reserved_for_its_window(store: Store) -> None:
    first = await enqueue(store, idempotency_key="daily-report", unique_for=100.0)
    claimed = await claim_one(store)
    assert await store.settle([Complete(claimed.lease, None)], now=T0 + 10) == [True]

    [inside] = await store.enqueue_many([new_job(idempotency_key="daily-report")], now=T0 + 109)
    assert (inside.id, inside.duplicate, inside.state) == (first, True, JobState.COMPLETED)

    [after] = await store.enqueue_many([new_job(idempotency_key="daily-report")], now=T0 + 111)
    assert after.duplicate is False
    assert after.id != first


async def test_unique_for_also_holds_after_a_dead_end(store: Store) -> None:
    first = await enqueue(store, idempotency_key="k", unique_for=50.0)
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1), retry_in=None)], now=T0)
    [inside] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 49)
    assert (inside.id, inside.duplicate) == (first, True)
    [after] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 51)
    assert after.duplicate is False


async def test_duplicate_key_within_one_batch(store: Store) -> None:
    one, two, other = (new_job(idempotency_key="same"), new_job(idempotency_key="same"),
                       new_job(idempotency_key="other"))
    results = await store.enqueue_many([one, two, other], now=T0)
    assert [(r.id, r.duplicate) for r in results] == [
        (one.id, False), (one.id, True), (other.id, False)]
    assert await store.get(two.id) is None
    assert sorted(await claim_ids(store)) == sorted([one.id, other.id])


async def test_batch_mixing_new_and_existing_keys(store: Store) -> None:
    existing = await enqueue(store, idempotency_key="k1")
    fresh = new_job(idempotency_key="k2")
    plain = new_job()
    results = await store.enqueue_many([new_job(idempotency_key="k1"), fresh, plain], now=T0)
    assert [(r.id, r.duplicate) for r in results] == [
        (existing, True), (fresh.id, False), (plain.id, False)]


async def test_payload_bytes_are_stored_verbatim(store: Store) -> None:
    raw = '{"text":"h\u00e9llo \u2603","z":null}'.encode()
    job_id = await enqueue(store, payload=raw)
    got = await store.get(job_id)
    assert got is not None and bytes(got.payload) == raw
    claimed = await claim_one(store)
    assert bytes(claimed.payload) == raw


async def test_an_empty_idempotency_key_never_loses_a_job(store: Store) -> None:
    jobs = [new_job(idempotency_key=""), new_job(idempotency_key="")]
    results = await store.enqueue_many(jobs, now=T0)
    for result in results:
        stored = await store.get(result.id)
        assert stored is not None, (
            f"enqueue_many reported job {result.id} as enqueued "
            f"(duplicate={result.duplicate}) but it was never stored")


async def test_enqueueing_an_existing_id_again_is_not_reported_as_new(store: Store) -> None:
    job = new_job()
    await store.enqueue_many([job], now=T0)
    try:
        [again] = await store.enqueue_many([job], now=T0 + 5)
    except Exception:  # refusing it outright is fine too
        return
    assert again.duplicate is True, "the second insert was dropped but reported as new"
    assert again.created_at == pytest.approx(T0)


PATHS = '{"card":{"number":true},"notes":true}'


async def test_sensitive_paths_are_kept_with_each_job(store: Store) -> None:
    one = new_job(sensitive=PATHS)
    keyed = new_job(sensitive=PATHS, idempotency_key="k-1", tenant="org-1")
    batch = [new_job(sensitive=PATHS), new_job(), new_job(sensitive='{"a":{"*":{"b":true}}}')]
    for jobs in ([one], [keyed], batch):
        await store.enqueue_many(jobs, now=T0)
    expected = {one.id: {"card": {"number": True}, "notes": True},
                keyed.id: {"card": {"number": True}, "notes": True},
                batch[0].id: {"card": {"number": True}, "notes": True}, batch[1].id: None,
                batch[2].id: {"a": {"*": {"b": True}}}}
    for job_id, paths in expected.items():
        got = await store.get(job_id)
        assert got is not None and got.sensitive == paths
    listed = {job.id: job.sensitive for job in await store.list_jobs(JobFilter())}
    assert listed == expected
