"""What the settle_and_claim tests (test_exchange.py, limited; test_exchange_unlimited.py)
share: a store whose pool has one connection (the one a trace is set on), a job's state, and
the check that the connection went back clean; and libpq's trace of what a connection sent
(test_trip.py, test_planning.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from conveyor.job import ClaimedJob, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.postgres.store import PostgresStore


async def traced(conn: psycopg.AsyncConnection[Any],
                 work: Callable[[], Awaitable[object]]) -> str:
    """libpq's trace of the messages on `conn` while `work` ran."""
    descriptor, path = tempfile.mkstemp()
    conn.pgconn.trace(descriptor)
    try:
        await work()
    finally:
        conn.pgconn.untrace()
        os.close(descriptor)
    with open(path) as trace:
        text = trace.read()
    os.unlink(path)
    return text


async def lone_store(url: str, jobs: int, limit: Limit | None = None
                     ) -> AsyncIterator[PostgresStore]:
    """A migrated store of one pooled connection holding `jobs` jobs of queue 'q' (under
    `limit` if given); closed after."""
    instance = PostgresStore(url + "&pool_size=1")
    await instance.open()
    await instance.migrate()
    if limit is not None:
        await instance.set_limit(limit)
    await instance.enqueue_many([NewJob(new_id(), "t", "q", b"{}") for _ in range(jobs)])
    try:
        yield instance
    finally:
        await instance.close()


async def state_of(store: PostgresStore, job: ClaimedJob) -> str:
    found = await store.get(job.id)
    assert found is not None
    return found.state.value


async def assert_clean(store: PostgresStore) -> None:
    async with store.pools.connection() as conn:
        assert conn.info.transaction_status == TransactionStatus.IDLE
