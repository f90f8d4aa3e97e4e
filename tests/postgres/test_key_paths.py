"""Every way a keyed job goes into PostgreSQL stores its limit key and unparks its key: one
job from sync code (the blocking pool), a bulk batch (whose COPY stream falls back to INSERT
at the first keyed job), an async batch, the caller's own transaction, a cron slot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from conveyor import Conveyor, KeyLimit
from conveyor.clock import FakeClock
from conveyor.scheduler import Scheduler

from .conftest import BASE_URL, admin_connect

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(url: str) -> Iterator[Conveyor]:
    instance = Conveyor(url, auto_migrate=True)
    instance.task(name="sync", key=KeyLimit("payload.customer", concurrency=1))(
        lambda ctx, payload: None)
    instance.task(name="plain")(lambda ctx, payload: None)
    try:
        yield instance
    finally:
        instance.close()


def stored(schema: str) -> dict[str, str | None]:
    with admin_connect() as conn:
        rows = conn.execute(f'SELECT id, limit_key FROM "{schema}".conveyor_jobs').fetchall()
        return {str(r[0]): r[1] for r in rows}


def key_rows(schema: str) -> set[tuple[str, str]]:
    with admin_connect() as conn:
        rows = conn.execute(f'SELECT task, limit_key FROM "{schema}".conveyor_limit_keys')
        return {(str(r[0]), str(r[1])) for r in rows.fetchall()}


def test_every_insert_path_stores_the_key(app: Conveyor, schema: str) -> None:
    one = app.enqueue("sync", {"customer": "c1"})
    plain = app.enqueue_many([("plain", {"n": n}) for n in range(3)])  # COPY, no keys
    mixed = app.enqueue_many([("plain", {}), ("sync", {"customer": "c2"}), ("plain", {})])
    later = asyncio.run(app.enqueue_many_async([("sync", {"customer": "c3"})]))
    with psycopg.connect(BASE_URL) as conn, conn.transaction():
        own = app.enqueue("sync", {"customer": "c4"}, connection=conn)
    keys = stored(schema)
    assert [keys[j.id] for j in (one, *mixed, *later, own)] == [
        "c1", None, "c2", None, "c3", "c4"]
    assert all(keys[j.id] is None for j in plain)
    assert key_rows(schema) == {("sync", f"c{n}") for n in range(1, 5)}


def test_a_cron_slot_stores_the_key(url: str, schema: str) -> None:
    clock = FakeClock(1_800_000_000.5)
    app = Conveyor(url, auto_migrate=True, clock=clock)
    app.task(name="sync", key=KeyLimit("payload.customer", concurrency=1))(
        lambda ctx, payload: None)
    app.cron("* * * * * *", "sync", {"customer": "cron"}, name="tick")
    try:
        assert asyncio.run(Scheduler(app, clock).run_once()) == 1
        assert list(stored(schema).values()) == ["cron"]
    finally:
        app.close()
