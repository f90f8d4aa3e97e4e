"""Outages: when the server drops the store's connections (a restart does that to all of
them) the store reconnects by itself, and a call caught in the middle fails with a clear
StoreUnavailable instead of a driver error. Simulated with pg_terminate_backend, so it does
not disturb anyone else on the server."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor.errors import StoreUnavailable
from conveyor.job import NewJob, new_id
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def terminate_connections(application_name: str) -> int:
    """Drop every connection of the app, and wait until the server has let them go (as a
    restart would have by the time anyone calls again)."""
    count_sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    with admin_connect() as conn:
        row = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = %s", (application_name,)).fetchone()
        for _ in range(100):
            left = conn.execute(count_sql, (application_name,)).fetchone()
            if left is None or left[0] == 0:
                break
            time.sleep(0.02)
    return int(row[0]) if row else 0


async def test_store_recovers_after_its_connections_are_killed(store: PostgresStore,
                                                              schema: str) -> None:
    [result] = await store.enqueue_many([NewJob(id=new_id(), task="t", queue="q",
                                                payload=b"{}")])
    assert terminate_connections(schema) >= 1
    failures: list[str] = []
    for _ in range(5):
        try:
            got = await store.get(result.id)
            break
        except StoreUnavailable as exc:
            failures.append(str(exc))
    else:
        pytest.fail(f"the store did not come back: {failures}")
    assert got is not None
    assert failures == [], "a dropped connection is noticed before use, not by the caller"
    for message in failures:
        assert message.startswith("the PostgreSQL store at 127.0.0.1:5432/test is unavailable")


async def test_idle_connections_are_checked_before_use(store: PostgresStore,
                                                       schema: str) -> None:
    await store.workers()
    await asyncio.sleep(2.2)  # longer than the idle threshold: the pool pings it first
    assert terminate_connections(schema) >= 1
    assert await store.workers() == []  # no error: the dead connection was replaced
