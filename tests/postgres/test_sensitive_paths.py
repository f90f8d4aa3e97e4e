"""Every way a job gets into PostgreSQL keeps its task's sensitive paths in the row: one job
(hand-off, libpq, named parameters), async, batches (COPY, COPY at the app's clock, the plain
INSERT, the general one), the caller's transaction, cron, child jobs and the spool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import psycopg
import pytest
from pydantic import BaseModel

from conveyor import Conveyor, JobContext, Sensitive, Settings
from conveyor.clock import FakeClock
from conveyor.scheduler import Scheduler
from conveyor.store.postgres.store import PostgresStore
from conveyor.testing import run_until_idle

from .conftest import BASE_URL, admin_connect

pytestmark = pytest.mark.postgres

FALLBACK = "bulk enqueue by INSERT instead of COPY"
PATHS = {"number": True}


class Card(BaseModel):
    holder: str
    number: Annotated[str, Sensitive]


def card(n: int) -> dict[str, Any]:
    return {"holder": f"h{n}", "number": f"4111-{n:04d}"}


def make_app(url: str, clock: FakeClock | None = None, spool: Path | None = None) -> Conveyor:
    settings = Settings.load(url=url, spool=str(spool) if spool else "")
    app = Conveyor(settings=settings, auto_migrate=True, clock=clock)
    app.task(name="charge", schema=Card)(lambda ctx, payload: None)
    app.task(name="plain")(lambda ctx, payload: None)

    @app.task(name="parent")
    def parent(ctx: JobContext, payload: Any) -> None:
        ctx.enqueue("charge", card(99))

    return app


@pytest.fixture
def app(url: str) -> Iterator[Conveyor]:
    instance = make_app(url)
    try:
        yield instance
    finally:
        instance.close()


def stored_paths(schema: str, ids: list[str]) -> list[Any]:
    """Each job's sensitive column as stored, in the order of `ids`."""
    with admin_connect() as conn:
        rows = dict(conn.execute(f'SELECT id, sensitive FROM "{schema}".conveyor_jobs '
                                 "WHERE id = ANY(%s)", [ids]).fetchall())
    assert set(rows) == set(ids)
    return [None if rows[i] is None else orjson.loads(str(rows[i])) for i in ids]


def test_single_jobs_keep_their_paths_on_every_statement(app: Conveyor, schema: str) -> None:
    store = app.store
    assert isinstance(store, PostgresStore)
    ids = [app.enqueue("charge", card(1)).id,            # the gate tries a hand-off first
           app.enqueue("charge", card(2)).id,            # then libpq's prepared statement
           app.enqueue("charge", card(3), tenant="acme").id,
           app.enqueue("charge", card(4), idempotency_key="k").id,
           asyncio.run(app.enqueue_async("charge", card(5))).id,
           app.enqueue("plain", {"n": 1}).id]
    assert b"conveyor_insert_one_plain" in set().union(*store.blocking._native.values())
    assert stored_paths(schema, ids) == [PATHS] * 5 + [None]


def test_batches_keep_their_paths_by_copy_and_by_insert(
        app: Conveyor, schema: str, caplog: pytest.LogCaptureFixture) -> None:
    mixed = [("charge", card(n)) for n in range(150)] + [("plain", {"n": 1})]
    with caplog.at_level(logging.DEBUG, logger="conveyor.store.postgres"):
        copied = app.enqueue_many(mixed)
    assert FALLBACK not in caplog.text
    plain_insert = asyncio.run(app.enqueue_many_async([("charge", card(n)) for n in range(3)]))
    general = app.enqueue_many([("charge", card(7)), ("plain", {"n": 2}),
                                {"task": "charge", "payload": card(8), "idempotency_key": "b"}])
    ids = [j.id for j in copied + plain_insert + general]
    assert stored_paths(schema, ids) == ([PATHS] * 150 + [None] + [PATHS] * 3
                                         + [PATHS, None, PATHS])


def test_a_batch_at_the_apps_clock_keeps_its_paths(url: str, schema: str) -> None:
    app = make_app(url, FakeClock(1_900_000_000.0))
    try:
        jobs = app.enqueue_many([("charge", card(n)) for n in range(3)])
    finally:
        app.close()
    assert stored_paths(schema, [j.id for j in jobs]) == [PATHS] * 3


def test_the_callers_transaction_keeps_the_paths(app: Conveyor, schema: str) -> None:
    with psycopg.connect(BASE_URL) as conn, conn.transaction():
        one = app.enqueue("charge", card(1), connection=conn)
        many = app.enqueue_many([("charge", card(2)), ("plain", {})], connection=conn)
    assert stored_paths(schema, [one.id] + [j.id for j in many]) == [PATHS, PATHS, None]


def test_cron_and_child_jobs_keep_the_paths(url: str, schema: str) -> None:
    clock = FakeClock(1_800_000_000.5)
    app = make_app(url, clock)
    try:
        app.cron("* * * * * */10", "charge", card(1), name="nightly")
        result = asyncio.run(Scheduler(app, clock).enqueue(app.schedules["nightly"],
                                                           1_800_000_000.0))
        parent = app.enqueue("parent", {})
        run_until_idle(app, queues=["default"])
        [child] = [j for j in app.list_jobs() if j.parent_id == parent.id]
    finally:
        app.close()
    assert stored_paths(schema, [result.id, child.id, parent.id]) == [PATHS, PATHS, None]


def test_spooled_jobs_keep_their_paths_when_forwarded(url: str, schema: str,
                                                      tmp_path: Path) -> None:
    app = make_app(url, spool=tmp_path / "spool")
    try:
        new, _ = app.preparer.one("charge", card(1), {})
        assert app.spool is not None
        app.spool.write([new])  # as an enqueue during an outage leaves it
        assert app.forward_spool() == 1
    finally:
        app.close()
    assert stored_paths(schema, [new.id]) == [PATHS]
