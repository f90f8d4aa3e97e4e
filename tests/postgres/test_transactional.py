"""Transactional enqueue: the job exists exactly when the caller's transaction commits, and
its wake-up is delivered only then."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def job(**fields: object) -> NewJob:
    values: dict[str, object] = {"id": new_id(), "task": "tx.task", "queue": "tx",
                                 "payload": b"{}"}
    values.update(fields)
    return NewJob(**values)  # type: ignore[arg-type]


async def test_sync_connection_rolled_back_leaves_no_job(store: PostgresStore) -> None:
    with psycopg.connect(BASE_URL) as conn:
        [result] = await store.enqueue_many([job()], tx=conn)
        assert await store.get(result.id) is None  # not visible before the caller commits
        conn.rollback()
    assert await store.get(result.id) is None
    assert await store.claim(None, "worker-1", 10, 30.0) == []


async def test_sync_connection_committed_keeps_the_job(store: PostgresStore) -> None:
    with psycopg.connect(BASE_URL) as conn:
        conn.execute("CREATE TEMP TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (1)")
        [result] = await store.enqueue_many([job(idempotency_key="order-1")], tx=conn)
        conn.commit()
    got = await store.get(result.id)
    assert got is not None and got.idempotency_key == "order-1"


async def test_async_connection_in_an_explicit_transaction(store: PostgresStore) -> None:
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        with pytest.raises(RuntimeError, match="abandon"):
            async with conn.transaction():
                [lost] = await store.enqueue_many([job()], tx=conn)
                raise RuntimeError("abandon the order")
        async with conn.transaction():
            [kept] = await store.enqueue_many([job(), job()][:1], tx=conn)
    assert await store.get(lost.id) is None
    assert await store.get(kept.id) is not None


async def test_idle_autocommit_connection_is_still_all_or_nothing(store: PostgresStore) -> None:
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        results = await store.enqueue_many([job(), job()], tx=conn)
    assert all([await store.get(r.id) for r in results])


async def test_wake_up_waits_for_the_commit(store: PostgresStore) -> None:
    heard: list[str] = []
    woke = asyncio.Event()

    def on_wake(queue: str) -> None:
        heard.append(queue)
        woke.set()

    stop = await store.listen(on_wake)
    try:
        with psycopg.connect(BASE_URL) as conn:
            await store.enqueue_many([job()], tx=conn)
            await asyncio.sleep(0.2)
            assert heard == [], "a listener must not wake for an uncommitted job"
            conn.commit()
        await asyncio.wait_for(woke.wait(), 5)
        assert heard == ["tx"]
    finally:
        await stop()


async def test_wrong_kind_of_connection_is_a_clear_error(store: PostgresStore) -> None:
    from conveyor.errors import ConfigError

    with pytest.raises(ConfigError, match="psycopg Connection or AsyncConnection"):
        await store.enqueue_many([job()], tx=object())
