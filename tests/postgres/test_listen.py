"""LISTEN/NOTIFY wake-ups: fast, and a listener whose connection dies comes back by itself."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def job(queue: str = "mail") -> NewJob:
    return NewJob(id=new_id(), task="listen.task", queue=queue, payload=b"{}")


class Ear:
    """Records wake-ups and when they came."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, float]] = []
        self.event = asyncio.Event()

    def __call__(self, queue: str) -> None:
        self.heard.append((queue, time.perf_counter()))
        self.event.set()

    async def next(self, timeout: float = 5.0) -> str:
        await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()
        return self.heard[-1][0]


async def test_idle_listener_hears_an_enqueue_within_milliseconds(store: PostgresStore) -> None:
    ear = Ear()
    stop = await store.listen(ear)
    try:
        await asyncio.sleep(0.3)  # idle
        latencies = []
        for _ in range(5):
            sent = time.perf_counter()
            await store.enqueue_many([job()])
            assert await ear.next() == "mail"
            latencies.append(ear.heard[-1][1] - sent)
        assert min(latencies) < 0.05, f"wake-up latencies {latencies}"
    finally:
        await stop()


async def test_notify_and_maintenance_wake_listeners(store: PostgresStore) -> None:
    ear = Ear()
    stop = await store.listen(ear)
    try:
        store.notify(["reports"])
        assert await ear.next() == "reports"
        await store.enqueue_many([NewJob(id=new_id(), task="t", queue="later", payload=b"{}",
                                         delay=0.05)])
        assert await ear.next() == "later"  # scheduled jobs notify too (harmless)
        await asyncio.sleep(0.1)
        count, _ = await store.promote_scheduled()
        assert count == 1 and await ear.next() == "later"
    finally:
        await stop()


async def test_listener_reconnects_and_resubscribes(store: PostgresStore, schema: str) -> None:
    ear = Ear()
    stop = await store.listen(ear)
    try:
        with admin_connect() as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND query LIKE 'LISTEN%%'", (schema,)).fetchone()
        assert killed is not None and killed[0] == 1
        assert await ear.next(timeout=10) == "*"  # back: anything missed means "look now"
        await store.enqueue_many([job("after")])
        assert await ear.next() == "after"
    finally:
        await stop()
