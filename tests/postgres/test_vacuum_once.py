"""The store's own VACUUMs run once per interval for the whole database, not once per store:
each vacuum invalidates the cached plans of every statement on the table in every backend
(issue 15), and every worker process has a store that folds. A store vacuums when nobody
has within the interval (the server's statistics say when a vacuum last ended), and never
while another store vacuums the table (an advisory lock, tried); alone, it still vacuums."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conveyor.history.records import AttemptRecord
from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = 1_700_000_000.0
TABLES = ("conveyor_count_deltas", "conveyor_counts", "conveyor_attempts_pending",
          "conveyor_attempts")


def manual_vacuums(schema: str) -> dict[str, int]:
    """vacuum_count per table (VACUUM statements, not autovacuum); written as a vacuum ends."""
    with admin_connect() as conn:
        return {name: int(n) for name, n in conn.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND relname = ANY(%s)", (schema, list(TABLES)))}


@pytest.fixture
async def other(url: str, store: PostgresStore) -> AsyncIterator[PostgresStore]:
    """A second store on the same schema (another worker process's)."""
    instance = PostgresStore(url)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


async def churn(store: PostgresStore, jobs: int = 5) -> None:
    """Jobs enqueued, claimed and completed with an attempt row each: count deltas and
    pending attempts for the folds to move."""
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=b"{}")
                              for _ in range(jobs)], now=T0)
    claimed = await store.claim(None, "w1", jobs, 30.0, now=T0)
    assert await store.settle([Complete(job.lease, attempt=AttemptRecord(
        task=job.task, queue=job.queue, tenant=None, number=job.attempt, started_at=T0,
        ended_at=T0 + 0.1, worker_id="w1", host="h", pid=1)) for job in claimed],
        now=T0 + 1) == [True] * jobs


async def test_two_stores_vacuum_each_table_once_per_interval(
        store: PostgresStore, other: PostgresStore, schema: str) -> None:
    await churn(store)
    assert await store.fold_counts() > 0
    assert await store.fold_history() > 0
    assert manual_vacuums(schema) == dict.fromkeys(TABLES, 1)
    await churn(other)
    assert await other.fold_counts() > 0  # its first fold: its own clock says "due"
    assert await other.fold_history() > 0
    assert manual_vacuums(schema) == dict.fromkeys(TABLES, 1)  # the server's: not yet


async def test_a_store_does_not_vacuum_a_table_another_is_vacuuming(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.store.postgres import counters

    monkeypatch.setattr(counters, "VACUUM_EVERY", 0.0)  # due by every clock
    deltas = f'"{schema}".conveyor_count_deltas'  # the first table VACUUM_DELTAS names
    with admin_connect() as holder:  # another store's vacuum under way
        holder.execute("SELECT pg_advisory_lock(%s, CAST(CAST(%s AS regclass) AS oid)::int4)",
                       (0x63766163, deltas))  # vacuums.VACUUM_LOCK_KEY
        await churn(store)
        assert await store.fold_counts() > 0
        assert manual_vacuums(schema)["conveyor_count_deltas"] == 0
    await churn(store)  # the lock released with the holder's session
    assert await store.fold_counts() > 0
    assert manual_vacuums(schema)["conveyor_count_deltas"] == 1


async def test_behind_pgbouncer_a_store_asks_the_statistics_only(
        url: str, store: PostgresStore, schema: str) -> None:
    """prepare=off (PgBouncer's transaction pooling): a session lock taken through one server
    connection could be released through another, and so held for good; none is taken (a
    lock held elsewhere does not stop it), and the statistics alone keep a second store from
    vacuuming again within the interval."""
    deltas = f'"{schema}".conveyor_count_deltas'
    pooled = [PostgresStore(url + "&prepare=off") for _ in range(2)]
    try:
        with admin_connect() as holder:
            holder.execute("SELECT pg_advisory_lock(%s, CAST(CAST(%s AS regclass) AS oid)"
                           "::int4)", (0x63766163, deltas))
            for each in pooled:
                await each.open()
                await churn(each)
                assert await each.fold_counts() > 0
            assert manual_vacuums(schema)["conveyor_count_deltas"] == 1
    finally:
        for each in pooled:
            await each.close()



async def test_a_vacuum_whose_release_fails_leaves_no_lock_held(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's advisory lock must not stay held on a pooled connection when its release
    does not go through (cancelled at shutdown, an error): every other store would skip the
    table for good. The connection is closed rather than given back to the pool."""
    import psycopg

    from conveyor.store.postgres import counters, vacuums

    deltas = f'"{schema}".conveyor_count_deltas'
    held = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND objid = CAST(CAST(%s AS regclass) AS oid)")
    monkeypatch.setattr(vacuums, "_RELEASE", "SELECT 1 / 0 WHERE CAST(%(key)s AS int) IS NOT NULL "
                                             "AND CAST(%(table)s AS text) IS NOT NULL")
    with pytest.raises(psycopg.errors.DivisionByZero):
        await vacuums.vacuum_at_most_every(store, counters.VACUUM_DELTAS, 0.0)
    with admin_connect() as watcher:
        assert watcher.execute(held, (vacuums.VACUUM_LOCK_KEY, deltas)).fetchone()[0] == 0
    monkeypatch.undo()
    store.__dict__.pop("_vacuumed_at", None)
    assert await vacuums.vacuum_at_most_every(store, counters.VACUUM_DELTAS, 0.0)


async def test_a_vacuum_of_one_table_alone_does_not_make_the_others_wait(
        store: PostgresStore, schema: str) -> None:
    """VACUUM_DELTAS names the count deltas and the finished deltas: an autovacuum (here a
    VACUUM by hand) of the first alone must not count as a vacuum of both."""
    from conveyor.store.postgres import counters, vacuums

    with admin_connect() as conn:
        conn.execute(f'VACUUM "{schema}".conveyor_count_deltas')
    before = manual_vacuums(schema)["conveyor_count_deltas"]
    assert await vacuums.vacuum_at_most_every(store, counters.VACUUM_DELTAS, 3600.0)
    assert manual_vacuums(schema)["conveyor_count_deltas"] == before + 1
    store.__dict__.pop("_vacuumed_at", None)  # its own clock: due again
    # now both were vacuumed within the hour: not again
    assert not await vacuums.vacuum_at_most_every(store, counters.VACUUM_DELTAS, 3600.0)
