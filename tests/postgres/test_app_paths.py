"""The app's own ways into PostgreSQL, end to end on a real server.

Plain sync callers go straight to the database on their own thread (a blocking pool, no hop
to the sync door's loop); a plain bulk batch streams in by COPY while it is being encoded,
and anything else in a batch falls back to INSERT with the same results. Transactional
enqueue goes through the caller's own connection, sync or async.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from pydantic import BaseModel

from conveyor import Conveyor, Retry
from conveyor.clock import FakeClock
from conveyor.errors import ConfigError, JobNotFound, PayloadInvalid
from conveyor.job import JobEvent, NewJob, new_id
from conveyor.store.base import drive_inline
from conveyor.store.postgres.enqueue import SyncSession, insert_jobs
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL

pytestmark = pytest.mark.postgres

FALLBACK = "bulk enqueue by INSERT instead of COPY"


class Order(BaseModel):
    order_id: int


def make_app(url: str, clock: FakeClock | None = None) -> Conveyor:
    app = Conveyor(url, auto_migrate=True, clock=clock)
    app.task(name="plain", retry=Retry(attempts=7))(lambda ctx, payload: None)
    app.task(name="order", schema=Order, queue="orders")(lambda ctx, payload: None)
    return app


@pytest.fixture
def app(url: str) -> Iterator[Conveyor]:
    instance = make_app(url)
    try:
        yield instance
    finally:
        instance.close()


def count(app: Conveyor) -> int:
    return sum(q.counts.get("queued", 0) + q.counts.get("scheduled", 0)
               for q in app.queues())


# --- transactional enqueue through the app ----------------------------------------------


def test_sync_enqueue_exists_only_if_the_callers_transaction_commits(app: Conveyor) -> None:
    with psycopg.connect(BASE_URL) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            lost = app.enqueue("plain", {"n": 1}, connection=conn)
            [lost_many, _] = app.enqueue_many([("plain", {"n": 2}), ("plain", {"n": 3})],
                                              connection=conn)
            raise RuntimeError("the business write failed")
        with conn.transaction():
            kept = app.enqueue("plain", {"n": 4}, connection=conn)
            kept_many = app.enqueue_many([("plain", {"n": 5}), ("plain", {"n": 6})],
                                         connection=conn)
            with pytest.raises(JobNotFound):  # not visible outside the transaction yet
                app.get(kept.id)
    for job_id in (lost.id, lost_many.id):
        with pytest.raises(JobNotFound):
            app.get(job_id)
    assert app.get(kept.id).payload == {"n": 4}
    assert [app.get(j.id).payload["n"] for j in kept_many] == [5, 6]


def test_async_enqueue_inside_an_async_transaction(app: Conveyor) -> None:
    async def scenario() -> tuple[str, str]:
        async with await psycopg.AsyncConnection.connect(BASE_URL) as conn:
            try:
                async with conn.transaction():
                    lost = await app.enqueue_async("plain", {"n": 1}, connection=conn)
                    raise RuntimeError("rolled back")
            except RuntimeError:
                pass
            async with conn.transaction():
                kept = await app.enqueue_async("plain", {"n": 2}, connection=conn)
        return lost.id, kept.id

    lost_id, kept_id = asyncio.run(scenario())
    with pytest.raises(JobNotFound):
        app.get(lost_id)
    assert app.get(kept_id).state == "queued"


def test_sync_enqueue_refuses_an_async_connection(app: Conveyor) -> None:
    async def connect() -> psycopg.AsyncConnection[object]:
        return await psycopg.AsyncConnection.connect(BASE_URL)

    conn = asyncio.run(connect())
    try:
        with pytest.raises(ConfigError, match="enqueue_async"):
            app.enqueue("plain", {"n": 1}, connection=conn)
    finally:
        asyncio.run(conn.close())
    assert count(app) == 0


# --- one job from sync code ---------------------------------------------------------------


def test_sync_enqueue_keeps_keys_tenants_and_schedules(app: Conveyor) -> None:
    first = app.enqueue("plain", {"n": 1}, idempotency_key="k-1")
    again = app.enqueue("plain", {"n": 2}, idempotency_key="k-1")
    assert (again.id, again.duplicate, first.duplicate) == (first.id, True, False)
    tenant_job = app.for_tenant("acme").enqueue("plain", {"n": 3})
    assert app.get(tenant_job.id, tenant="acme").tenant == "acme"
    with pytest.raises(JobNotFound):
        app.get(tenant_job.id, tenant="other")
    later = app.enqueue("plain", {"n": 4}, delay=60)
    assert later.state == "scheduled"
    assert later.run_at == pytest.approx(later.created_at + 60)
    assert abs(first.created_at - time.time()) < 5  # the database's clock


# --- bulk: COPY and its fallbacks ---------------------------------------------------------


def test_a_plain_batch_streams_in_by_copy(app: Conveyor, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    seen: list[JobEvent] = []
    woken: list[str] = []

    async def listen_and_enqueue() -> list[str]:
        store = app.store
        assert isinstance(store, PostgresStore)
        stop_events = await store.subscribe(seen.extend)
        stop_wake = await store.listen(woken.append)
        try:
            loop = asyncio.get_running_loop()
            jobs = await loop.run_in_executor(None, lambda: app.enqueue_many(
                [("plain", {"n": n}) for n in range(800)]
                + [("order", {"order_id": n}) for n in range(200)]))
            deadline = time.monotonic() + 10
            while len(seen) < 1000 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return [j.id for j in jobs]
        finally:
            await stop_events()
            await stop_wake()

    with caplog.at_level(logging.DEBUG, logger="conveyor.store.postgres"):
        ids = asyncio.run(listen_and_enqueue())
    assert FALLBACK not in caplog.text
    assert len(set(ids)) == 1000
    stored = [app.get(job_id) for job_id in ids[::97]]
    assert {job.state for job in stored} == {"queued"}
    assert len({job.batch_id for job in stored}) == 1 and stored[0].batch_id
    assert len({job.created_at for job in stored}) == 1  # one statement clock
    assert abs(stored[0].created_at - time.time()) < 5
    assert app.get(ids[3]).payload == {"n": 3} and app.get(ids[3]).max_attempts == 7
    assert app.get(ids[900]).queue == "orders"
    assert sorted(e.id for e in seen) == sorted(ids)  # every job in the event feed
    assert {(e.state, e.queue) for e in seen} == {("queued", "default"), ("queued", "orders")}
    assert {"default", "orders"} <= set(woken)


def test_copy_rows_keep_every_character_of_names_and_values(
        app: Conveyor, caplog: pytest.LogCaptureFixture) -> None:
    """COPY's text format gives tab, newline, carriage return and backslash a meaning: the
    rows escape them in task names (queue names cannot hold them, conveyor.names) and
    payloads, and the padding after max_attempts reads back as nothing."""
    odd = "a\\b\tc\rd\\N"
    app.task(name=odd, queue="odd:q/1", unique_for=90.5)(lambda ctx, payload: None)
    with caplog.at_level(logging.DEBUG, logger="conveyor.store.postgres"):
        jobs = app.enqueue_many([(odd, {"s": "tab\there \\N"}), ("plain", {"n": 1}),
                                 {"task": "plain", "payload": None, "queue": "q.third"}])
    assert FALLBACK not in caplog.text
    first, second, third = (app.get(job.id) for job in jobs)
    assert (first.task, first.queue, first.payload) == (odd, "odd:q/1", {"s": "tab\there \\N"})
    assert (second.max_attempts, third.queue, third.payload) == (7, "q.third", {})
    assert [j.created_at for j in jobs] == [first.created_at] * 3  # the store's clock
    assert [j.run_at for j in jobs] == [first.run_at] * 3
    stored = app.store
    assert isinstance(stored, PostgresStore)
    row = asyncio.run(_row(stored, first.id))
    assert row == (90.5, 3, None)  # unique_for, max_attempts, batch's absent parent


async def _row(store: PostgresStore, job_id: str) -> tuple[object, ...]:
    rows = await store._one("SELECT unique_for, max_attempts, parent_id "
                            "FROM {schema}.conveyor_jobs WHERE id = %(id)s", {"id": job_id})
    return tuple(rows[0])


def test_an_id_copy_cannot_carry_goes_in_by_insert(app: Conveyor,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    store = app.store
    assert isinstance(store, PostgresStore)
    jobs = [NewJob(id=f"made\telsewhere-{n}", task="plain", queue="default",
                   payload=b"{}") for n in range(3)]
    with caplog.at_level(logging.DEBUG, logger="conveyor.store.postgres"):
        results = store.enqueue_stream(jobs)
    assert FALLBACK in caplog.text
    assert [r.id for r in results] == [j.id for j in jobs]
    assert app.get("made\telsewhere-2").state == "queued"


def test_a_batch_with_options_falls_back_to_insert(app: Conveyor,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    items: list[object] = [("plain", {"n": n}) for n in range(10)]
    items[6] = {"task": "plain", "payload": {"n": 6}, "correlation_id": "corr-6",
                "priority": 5}
    with caplog.at_level(logging.DEBUG, logger="conveyor.store.postgres"):
        jobs = app.enqueue_many(items)
    assert FALLBACK in caplog.text
    assert [app.get(j.id).payload["n"] for j in jobs] == list(range(10))
    special = app.get(jobs[6].id)
    assert (special.correlation_id, special.priority) == ("corr-6", 5)
    assert count(app) == 10


def test_a_bad_item_in_a_streamed_batch_stores_nothing(app: Conveyor) -> None:
    items = [("order", {"order_id": n}) for n in range(600)]
    items[457] = ("order", {"order_id": "not a number"})
    with pytest.raises(PayloadInvalid) as caught:
        app.enqueue_many(items)
    assert "jobs[457]" in str(caught.value.errors)
    assert count(app) == 0


def test_ids_already_stored_come_back_as_duplicates(app: Conveyor) -> None:
    """A spooled batch forwarded twice: COPY meets the stored ids and the batch goes in by
    INSERT ... ON CONFLICT instead, the stored jobs reported as duplicates."""
    store = app.store
    assert isinstance(store, PostgresStore)
    jobs = [NewJob(id=new_id(), task="plain", queue="default", payload=b'{"n":%d}' % n)
            for n in range(50)]
    first = store.enqueue_stream(jobs[:20])
    again = store.enqueue_stream(jobs)
    assert [r.duplicate for r in first] == [False] * 20
    assert [r.duplicate for r in again] == [True] * 20 + [False] * 30
    assert [r.id for r in again] == [j.id for j in jobs]
    assert count(app) == 50


def test_batches_with_options_go_in_without_on_conflict_and_fall_back_on_stored_ids(
        app: Conveyor) -> None:
    """Jobs without keys skip ON CONFLICT (INSERT_JOBS_NEW, INSERT_ONE_NEW); a stored id
    fails that statement with nothing stored, and the general one reports the duplicate.
    Their feed items carry each job's own state."""
    store = app.store
    assert isinstance(store, PostgresStore)
    seen: list[JobEvent] = []
    jobs = [NewJob(id=new_id(), task="plain", queue="default", payload=b"{}",
                   correlation_id=f"c{n}", delay=60.0 if n == 3 else 0.0) for n in range(5)]

    single = NewJob(id=new_id(), task="plain", queue="default", payload=b"{}", priority=2)

    async def enqueue_and_listen() -> tuple[list[bool], list[bool], list[bool]]:
        stop = await store.subscribe(seen.extend)
        try:
            first = store.enqueue_many_blocking(jobs[:2])
            again = store.enqueue_many_blocking(jobs)
            alone = [store.enqueue_many_blocking([job])[0] for job in (jobs[4], single, single)]
            deadline = time.monotonic() + 10
            while len(seen) < 6 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return ([r.duplicate for r in first], [r.duplicate for r in again],
                    [r.duplicate for r in alone])
        finally:
            await stop()

    first, again, alone = asyncio.run(enqueue_and_listen())
    assert (first, again, alone) == ([False] * 2, [True] * 2 + [False] * 3,
                                     [True, False, True])
    assert sorted((e.id, e.state) for e in seen) == sorted(
        [(j.id, "scheduled" if j.delay else "queued") for j in jobs] + [(single.id, "queued")])
    assert app.get(single.id).priority == 2
    assert app.get(jobs[3].id).state == "scheduled" and app.get(jobs[2].id).correlation_id == "c2"


def test_a_batch_at_the_apps_clock(url: str) -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(url, clock)
    try:
        jobs = app.enqueue_many([("plain", {"n": n}) for n in range(5)])
        assert {j.created_at for j in jobs} == {1_900_000_000.0}
        assert app.get(jobs[4].id).run_at == 1_900_000_000.0
    finally:
        app.close()


def test_feed_payloads_stay_under_notifys_limit_with_the_longest_names(app: Conveyor) -> None:
    """A tenant's batch goes in by INSERT_JOBS, its feed grouped: 100 ids per payload leave
    room for a 255-character tenant, a 200-character task and a 100-character queue even
    when JSON escapes every character (NOTIFY refuses payloads over 8,000 bytes)."""
    store = app.store
    assert isinstance(store, PostgresStore)
    task, queue, tenant = "\x01" * 200, "\x02" * 100, "\x03" * 255
    jobs = [NewJob(id=new_id(), task=task, queue=queue, payload=b"{}", tenant=tenant)
            for _ in range(300)]
    results = store.enqueue_many_blocking(jobs)
    assert [r.id for r in results] == [j.id for j in jobs]


def test_a_plain_job_from_sync_code_goes_in_through_libpq_with_every_value(
        app: Conveyor, url: str, schema: str) -> None:
    """The hottest call skips the cursor (enqueue.NativeStatement): every value still lands,
    a stored id still comes back as a duplicate, and prepare=off keeps to the cursor."""
    store = app.store
    assert isinstance(store, PostgresStore)
    job = NewJob(id=new_id(), task="plain\u00e9", queue="q\tx", priority=0,
                 payload=b'{"n":"\xc3\xa9"}', max_attempts=7, unique_for=2.5,
                 batch_id=new_id())
    store.enqueue_many_blocking([NewJob(id=new_id(), task="plain", queue="default",
                                        payload=b"{}")])  # looks for a waiting worker
    [result] = store.enqueue_many_blocking([job])  # found none: the plain insert
    assert not result.duplicate and result.created_at > 0
    assert b"conveyor_insert_one_plain" in set().union(*store.blocking._native.values())
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        row = conn.execute(f'SELECT task, queue, priority, payload, max_attempts, unique_for, '
                           f'batch_id, state FROM "{schema}".conveyor_jobs WHERE id = %s',
                           (job.id,)).fetchone()
    assert row == (job.task, job.queue, 0, job.payload, 7, 2.5, job.batch_id, "queued")
    [again] = store.enqueue_many_blocking([job])  # a spool forwarded twice
    assert again.duplicate and again.id == job.id
    with store.blocking.connection() as (conn, cursor):
        prepared = store.blocking.prepared(conn)
        assert prepared is not None
        prepared.add(b"conveyor_insert_one_plain")  # as if prepared here before...
        conn.execute("DEALLOCATE ALL")  # ...and dropped since (psycopg may do this)
        later = NewJob(id=new_id(), task="plain", queue="default", payload=b"{}")
        [result] = drive_inline(insert_jobs(SyncSession(conn, cursor, prepared),
                                            store.statement, [later], None, store._channels,
                                            retryable=True))
        assert not result.duplicate and b"conveyor_insert_one_plain" in prepared
    off = PostgresStore(url + "&prepare=off")
    try:
        for _ in range(2):
            [plain] = off.enqueue_many_blocking([NewJob(id=new_id(), task="plain",
                                                        queue="default", payload=b"{}")])
            assert not plain.duplicate
        assert not any(off.blocking._native.values())
    finally:
        asyncio.run(off.close())


def test_the_envelopes_a_batch_returns_are_the_stored_jobs(app: Conveyor) -> None:
    """Bulk enqueue builds each envelope itself (positionally, while COPY runs): every field
    must read back the same from the store, by COPY and by INSERT alike."""
    by_copy = app.enqueue_many([("plain", {"n": n}) for n in range(3)])
    by_insert = app.enqueue_many([
        {"task": "plain", "payload": {"n": 9}, "correlation_id": "corr", "priority": 4,
         "idempotency_key": "key-1", "ttl": 600.0, "max_attempts": 2, "tenant": "acme",
         "parent_id": by_copy[0].id},
        {"task": "order", "payload": {"order_id": 5}, "delay": 3600.0}])
    for job in by_copy + by_insert:
        stored = app.get(job.id, tenant=job.tenant)
        assert job.to_dict() == stored.to_dict()
    assert by_insert[0].expires_at == by_insert[0].created_at + 600.0  # type: ignore[operator]
    assert (by_insert[0].tenant, by_insert[0].idempotency_key) == ("acme", "key-1")
    assert by_insert[0].parent_id == by_copy[0].id
    assert by_insert[1].state == "scheduled" and by_copy[0].state == "queued"
