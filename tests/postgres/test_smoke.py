"""The PostgreSQL store end to end on its own: URL, schema, clock, a job's life, events."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conveyor.errors import ConfigError, StoreUnavailable
from conveyor.job import JobEvent, JobState, NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.connection import parse_url
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL, admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

# the newest migration this checkout ships: every one of them is applied, once
NEWEST = len(list((Path(__file__).parents[2] / "src/conveyor/store/postgres/migrations")
                  .glob("[0-9][0-9][0-9][0-9]_*.sql")))


def job(**fields: object) -> NewJob:
    values: dict[str, object] = {"id": new_id(), "task": "smoke.task", "queue": "default",
                                 "payload": b'{"n":1}'}
    values.update(fields)
    return NewJob(**values)  # type: ignore[arg-type]


def test_url_options_are_parsed_and_checked() -> None:
    target = parse_url("postgresql://u@db:6543/jobs?schema=billing&sslmode=disable")
    assert (target.schema, target.where) == ("billing", "db:6543/jobs")
    assert "sslmode=disable" in target.conninfo and "schema" not in target.conninfo
    assert parse_url("postgres://u@db/jobs").schema == "public"
    options = parse_url("postgresql://u@db/jobs?events=off&prepare=off&pool_size=3")
    assert (options.events, options.prepare, options.pool_size) == (False, False, 3)
    with pytest.raises(ConfigError, match="schema"):
        parse_url("postgresql://u@db/jobs?schema=bad;drop")


def test_the_url_sets_tcp_keepalives_and_a_user_timeout_unless_it_has_its_own() -> None:
    """A host cut off from the database must fail its calls, not hang in a read for the
    kernel's 15 minutes (tests/multihost/test_partition.py cuts one off)."""
    conninfo = parse_url("postgresql://u@db/jobs").conninfo
    for option in ("keepalives=1", "keepalives_idle=10", "keepalives_interval=5",
                   "keepalives_count=3", "tcp_user_timeout=15000"):
        assert option in conninfo
    own = parse_url("postgresql://u@db/jobs?tcp_user_timeout=2000&keepalives=0").conninfo
    assert "tcp_user_timeout=2000" in own and "keepalives=0" in own
    assert "tcp_user_timeout=15000" not in own


async def test_migrate_creates_the_schema_once(url: str, schema: str) -> None:
    store = PostgresStore(url)
    await store.open()
    try:
        assert await store.schema_version() == 0
        assert await store.migrate() == store.latest_version == NEWEST
        assert await store.migrate() == 0
        assert await store.schema_version() == NEWEST
    finally:
        await store.close()
    with admin_connect() as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
    assert {"conveyor_jobs", "conveyor_queues", "conveyor_workers", "conveyor_offers",
            "conveyor_sessions"} <= tables


async def test_migrate_from_many_nodes_at_once(url: str) -> None:
    stores = [PostgresStore(url) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        # every migration applied once, by whichever node took its lock first
        assert sum(applied) == stores[0].latest_version == NEWEST
        assert set(await asyncio.gather(*(s.schema_version() for s in stores))) == {NEWEST}
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_job_lives_on_the_database_clock(store: PostgresStore) -> None:
    before = time.time()
    [result] = await store.enqueue_many([job()])
    assert result.state == JobState.QUEUED and before - 5 < result.created_at < time.time() + 5
    [claimed] = await store.claim(["default"], "worker-1", 10, 30.0)
    assert claimed.id == result.id and claimed.attempt == 1
    assert await store.settle([Complete(claimed.lease, b'{"ok":true}')]) == [True]
    assert await store.settle([Complete(claimed.lease, b"{}")]) == [False]  # stale: fenced
    got = await store.get(result.id)
    assert got is not None and got.state == JobState.COMPLETED and got.result == {"ok": True}
    assert got.finished_at is not None and got.started_at is not None


async def test_delay_uses_the_database_clock(store: PostgresStore) -> None:
    [result] = await store.enqueue_many([job(delay=60)])
    assert result.state == JobState.SCHEDULED
    assert 59 < result.run_at - result.created_at < 61
    assert await store.claim(None, "worker-1", 10, 30.0) == []


async def test_unreachable_server_is_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1")
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/test is unavailable"):
        await store.open()
    await store.close()


async def test_one_store_serves_two_event_loops(store: PostgresStore) -> None:
    """The sync door runs the store on a portal loop in another thread while the worker uses
    it from its own loop: each loop gets its own pool, and both work at once."""
    portal = asyncio.new_event_loop()
    thread = threading.Thread(target=portal.run_forever, daemon=True)
    thread.start()
    try:
        [result] = await store.enqueue_many([job()])
        other = asyncio.run_coroutine_threadsafe(store.get(result.id), portal)
        mine = await store.get(result.id)
        theirs = await asyncio.wrap_future(other)
        assert mine is not None and theirs is not None and mine.id == theirs.id
        closing = asyncio.run_coroutine_threadsafe(store.close(), portal)
        await asyncio.wrap_future(closing)  # closes the portal's pool there, this loop's here
    finally:
        portal.call_soon_threadsafe(portal.stop)
        thread.join(5)
        portal.close()


async def test_event_feed_carries_state_changes(store: PostgresStore) -> None:
    seen: list[JobEvent] = []
    arrived = asyncio.Event()

    def on_events(events: list[JobEvent]) -> None:
        seen.extend(events)
        if any(e.state == "completed" for e in events):
            arrived.set()

    stop = await store.subscribe(on_events)
    try:
        [result] = await store.enqueue_many([job(tenant="org-a")])
        [claimed] = await store.claim(None, "worker-1", 1, 30.0)
        await store.settle([Complete(claimed.lease, None)])
        await asyncio.wait_for(arrived.wait(), 5)
    finally:
        await stop()
    states = [e.state for e in seen if e.id == result.id]
    assert states == ["queued", "running", "completed"]
    assert seen[0].tenant == "org-a" and seen[0].task == "smoke.task"


async def test_event_feed_splits_big_batches_and_skips_rollbacks(store: PostgresStore) -> None:
    seen: list[JobEvent] = []
    stop = await store.subscribe(seen.extend)
    try:
        long = "t" * 200
        await store.enqueue_many([job(task=long, tenant="x" * 255, queue="q" * 100)
                                  for _ in range(300)])
        with psycopg.connect(BASE_URL) as conn:
            await store.enqueue_many([job()], tx=conn)
            conn.rollback()
        for _ in range(100):
            if len(seen) >= 300:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        await stop()
    assert len(seen) == 300 and {e.task for e in seen} == {long}


async def test_event_feed_can_be_switched_off(url: str) -> None:
    store = PostgresStore(url + "&events=off")
    await store.open()
    await store.migrate()
    seen: list[JobEvent] = []
    stop = await store.subscribe(seen.extend)
    try:
        await store.enqueue_many([job()])
        await asyncio.sleep(0.3)
    finally:
        await stop()
        await store.close()
    assert seen == []
