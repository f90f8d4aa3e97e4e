"""The event feed is sent only while someone subscribes (migration 0025): a claim or a settle
that nobody watches sends no NOTIFY, because a notifying commit holds a database-wide lock
until its WAL flush (two workers' commits would flush one at a time for an unread feed).
A raw LISTEN on the feed's channel, which registers nothing, tells what was sent."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from conveyor.job import JobEvent, NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def job() -> NewJob:
    return NewJob(id=new_id(), task="feed.task", queue="mail", payload=b"{}")


class RawEar:
    """A plain LISTEN on the feed's channel: hears whatever the statements send."""

    def __init__(self, store: PostgresStore) -> None:
        self.conn = admin_connect()
        self.conn.execute(f'LISTEN "{store.target.events_channel}"')

    def heard(self, wait: float = 0.3) -> list[str]:
        return [n.payload for n in self.conn.notifies(timeout=wait)]

    def close(self) -> None:
        self.conn.close()


async def life(store: PostgresStore) -> str:
    """One job enqueued, claimed and completed; its id."""
    [result] = await store.enqueue_many([job()])
    [claimed] = await store.claim(None, "worker-1", 1, 30.0)
    await store.settle([Complete(claimed.lease, None)])
    return result.id


def subscribers(schema: str) -> list[tuple[Any, ...]]:
    with admin_connect() as conn:
        return conn.execute(
            f'SELECT id, seen_at FROM "{schema}".conveyor_event_subscribers').fetchall()


async def test_nothing_is_sent_until_someone_subscribes(store: PostgresStore,
                                                        schema: str) -> None:
    ear = RawEar(store)
    try:
        await life(store)
        assert ear.heard() == []  # on main: the enqueue's, the claim's and the settle's

        seen: list[JobEvent] = []
        stop = await store.subscribe(seen.extend)
        try:
            assert len(subscribers(schema)) == 1
            job_id = await life(store)
            for _ in range(100):
                if [e.state for e in seen if e.id == job_id] == ["queued", "running",
                                                                 "completed"]:
                    break
                await asyncio.sleep(0.02)
            assert [e.state for e in seen if e.id == job_id] == ["queued", "running",
                                                                 "completed"]
            assert len(ear.heard()) == 3
        finally:
            await stop()
        assert subscribers(schema) == []  # the stopper took its row away

        await life(store)
        assert ear.heard() == []
    finally:
        ear.close()


async def test_a_stale_subscriber_row_does_not_count(store: PostgresStore, schema: str
                                                     ) -> None:
    """A subscriber that died without removing its row stops the feed SUBSCRIBER_TTL seconds
    after its last refresh."""
    ear = RawEar(store)
    try:
        with admin_connect() as conn:
            now = conn.execute("SELECT date_part('epoch', clock_timestamp())").fetchone()
            assert now is not None
            conn.execute(f'INSERT INTO "{schema}".conveyor_event_subscribers VALUES '
                         "('gone', %s), ('fresh', %s)",
                         (now[0] - q.SUBSCRIBER_TTL - 1, now[0] + 3600))
            await life(store)
            assert len(ear.heard()) == 3  # the fresh row counts
            conn.execute(f'DELETE FROM "{schema}".conveyor_event_subscribers '
                         "WHERE id = 'fresh'")
        await life(store)
        assert ear.heard() == []  # the stale one does not
    finally:
        ear.close()


async def test_a_subscriber_keeps_its_row_fresh_and_makes_it_again(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refreshed every SUBSCRIBER_REFRESH seconds, and made again when it is gone (an unlogged
    table is emptied by a server crash)."""
    monkeypatch.setattr(q, "SUBSCRIBER_REFRESH", 0.05)
    stop = await store.subscribe(lambda events: None)
    try:
        [(_, first)] = subscribers(schema)
        with admin_connect() as conn:
            conn.execute(f'TRUNCATE "{schema}".conveyor_event_subscribers')
        deadline = time.monotonic() + 5
        while not subscribers(schema) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        [(_, again)] = subscribers(schema)
        assert again > first
    finally:
        await stop()
    assert subscribers(schema) == []


async def test_the_table_is_unlogged(store: PostgresStore, schema: str) -> None:
    with admin_connect() as conn:
        row = conn.execute(
            "SELECT relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE nspname = %s AND relname = 'conveyor_event_subscribers'", (schema,)
        ).fetchone()
    assert row == ("u",)


def test_raw_listener_helper_hears_a_plain_notify() -> None:
    """The ear itself works (else the 'nothing was sent' assertions could not fail)."""
    with admin_connect() as listen, psycopg.connect(listen.info.dsn, autocommit=True) as send:
        listen.execute('LISTEN "feed_probe"')
        send.execute("NOTIFY feed_probe, 'x'")
        assert [n.payload for n in listen.notifies(timeout=1)] == ["x"]
