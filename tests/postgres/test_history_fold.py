"""The attempt history's fold on PostgreSQL: a role that may only read skips folding (its
reads show what was folded, and fail on nothing), the pending rows are tenant-isolated like
the attempts, and the fold deletes the rows it takes by ctid (a TID scan, not a scan of the
table per batch)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest

from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.history_fold import FOLD_HISTORY
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL, admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = 1_700_000_000.0
ALL = TimeRange(T0 - 3600, T0 + 3600)


@pytest.fixture
def reader_role(store: PostgresStore, schema: str) -> Iterator[str]:
    """A login role for dashboards that only read: SELECT on every table, nothing else."""
    role = f"conveyor_reader_{secrets.token_hex(4)}"
    with admin_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER BYPASSRLS')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    try:
        yield role
    finally:
        with admin_connect() as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


async def settle(store: PostgresStore, count: int, tenant: str | None = None) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="fold.task", queue="default",
                                     payload=b"{}", tenant=tenant) for _ in range(count)],
                             now=T0)
    jobs = await store.claim(None, "worker-1", count, 30.0, now=T0)
    items = [Complete(job.lease, attempt=AttemptRecord(
        task=job.task, queue=job.queue, tenant=job.tenant, number=job.attempt, started_at=T0,
        ended_at=T0 + 0.1, worker_id="worker-1", host="h", pid=1)) for job in jobs]
    assert await store.settle(items, now=T0 + 1) == [True] * count


def pending(schema: str, tenant: str | None = None) -> int:
    with admin_connect() as conn:
        [(count,)] = conn.execute(
            f'SELECT count(*) FROM "{schema}".conveyor_attempts_pending '
            "WHERE %(t)s::text IS NULL OR tenant = %(t)s", {"t": tenant}).fetchall()
        return int(count)


async def test_a_read_only_role_reads_what_was_folded_and_folds_nothing(
        store: PostgresStore, schema: str, reader_role: str) -> None:
    await settle(store, 2)
    assert await store.fold_history() == 2
    await settle(store, 1)
    reader = PostgresStore(BASE_URL.replace("postgres@", f"{reader_role}@", 1)
                           + f"?schema={schema}")
    await reader.open()
    try:
        [summary] = await reader.task_analytics(ALL)  # sums the pending row, folds nothing
        assert summary.total == 3 and pending(schema) == 1
        assert await reader.fold_history() == 0
        assert len(await reader.slow_attempts(ALL)) == 3  # the pending one too, unfolded
        assert pending(schema) == 1
    finally:
        await reader.close()
    assert pending(schema) == 1
    await store.job_attempts("none")  # a role that may write folds before other reads
    assert pending(schema) == 0
    [summary] = await store.task_analytics(ALL)
    assert summary.total == 3


async def test_pending_rows_are_tenant_isolated(store: PostgresStore, schema: str) -> None:
    await settle(store, 1, tenant="org-a")
    with admin_connect() as conn:
        policies = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_policies WHERE schemaname = %s", (schema,))}
        [(forced,)] = conn.execute(
            "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass",
            (f'"{schema}".conveyor_attempts_pending',)).fetchall()
    assert "conveyor_attempts_pending" in policies and forced
    assert pending(schema, "org-a") == 1


async def test_the_fold_takes_its_rows_by_tid(store: PostgresStore, schema: str) -> None:
    await settle(store, 3000)  # a backlog: the fold must not scan it once per batch
    with admin_connect() as conn:
        conn.execute(f'ANALYZE "{schema}".conveyor_attempts_pending')
    async with store._session() as conn:
        cursor = await conn.execute("EXPLAIN " + store.statement(FOLD_HISTORY), {"limit": 100})
        plan = "\n".join(str(r[0]) for r in await cursor.fetchall())
    assert "Tid Scan" in plan, plan


def manual_vacuums(schema: str) -> dict[str, int]:
    """How many times each history table was vacuumed by a VACUUM statement (not by
    autovacuum: vacuum_count). A vacuum reports to the shared statistics at once."""
    with admin_connect() as conn:
        return {name: int(n) for name, n in conn.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND relname IN ('conveyor_attempts_pending', 'conveyor_attempts')", (schema,))}


async def test_a_fold_vacuums_the_pending_rows_it_left_dead(store: PostgresStore,
                                                            schema: str) -> None:
    """A fold deletes the rows it takes; the store vacuums them itself (autovacuum may lag, or
    be off, as on this project's test server), so the pending-tail reads of analytics walk
    no dead rows, and it vacuums the attempts (insert-only: autovacuum waits for 20 % more
    rows) so that the newest hour's pages are marked all-visible. What a vacuum can remove
    depends on the oldest snapshot of the whole server (other tests' transactions), so the
    test asserts that the vacuums ran, not what they freed."""
    await settle(store, 200)
    assert manual_vacuums(schema) == {"conveyor_attempts_pending": 0, "conveyor_attempts": 0}
    assert await store.fold_history() == 200
    assert manual_vacuums(schema) == {"conveyor_attempts_pending": 1, "conveyor_attempts": 1}
    await settle(store, 10)
    assert await store.fold_history() == 10  # within a minute: the attempts not again
    assert manual_vacuums(schema)["conveyor_attempts"] == 1


def attempts(schema: str) -> int:
    with admin_connect() as conn:
        [(count,)] = conn.execute(
            f'SELECT count(*) FROM "{schema}".conveyor_attempts').fetchall()
        return int(count)


async def test_one_fold_at_a_time_and_a_fold_rolled_back_leaves_its_rows(
        store: PostgresStore, schema: str) -> None:
    """While one fold's transaction is open, another moves nothing and returns at once (it
    does not wait, nor take other rows); rolled back, the first fold's rows stay pending
    and the next fold counts each once."""
    await settle(store, 300)
    fold = store.statement(FOLD_HISTORY)
    with admin_connect() as conn:
        conn.execute("BEGIN")
        [(moved,)] = conn.execute(fold, {"limit": 100}).fetchall()
        assert moved == 100
        assert await store.fold_history() == 0  # the lock is held: nothing, at once
        conn.execute("ROLLBACK")
    assert pending(schema) == 300 and attempts(schema) == 0
    assert await store.fold_history() == 300
    assert pending(schema) == 0 and attempts(schema) == 300
    [summary] = await store.task_analytics(ALL)
    assert summary.total == 300


async def test_the_fold_locks_no_row_it_takes(store: PostgresStore, schema: str) -> None:
    """The fold takes its rows under one advisory lock, not a row lock each (FOR UPDATE
    wrote a WAL record per row before the DELETE wrote another)."""
    async with store._session() as conn:
        cursor = await conn.execute("EXPLAIN " + store.statement(FOLD_HISTORY),
                                    {"limit": 100})
        plan = "\n".join(str(r[0]) for r in await cursor.fetchall())
    assert "LockRows" not in plan, plan


async def test_a_read_that_folds_first_waits_for_a_fold_under_way(
        store: PostgresStore, schema: str) -> None:
    """job_attempts folds first: while another fold's transaction holds rows, it waits for
    that commit rather than skip (the rows in flight are in neither table it can read)."""
    await settle(store, 3)
    fold = store.statement(FOLD_HISTORY)
    with admin_connect() as conn:
        conn.execute("BEGIN")
        assert conn.execute(fold, {"limit": 2}).fetchall() == [(2,)]
        [(taken,)] = conn.execute(
            f'SELECT job_id FROM "{schema}".conveyor_attempts LIMIT 1').fetchall()
        read = asyncio.create_task(store.job_attempts(str(taken)))
        await asyncio.sleep(0.3)
        assert not read.done()  # waiting for the fold under way
        conn.execute("COMMIT")
        assert len(await read) == 1
    assert pending(schema) == 0 and attempts(schema) == 3


async def test_the_fold_is_prepared_and_planned_once_on_its_connection(url: str) -> None:
    """The fold is a plan of some 200 nodes: planned at every fold, its planning cost more
    server time than its work at a drain's ~1,000 rows a fold. Prepared at its first use on a
    connection (no parameters: a generic plan), the next folds there only run it."""
    store = PostgresStore(url + "&pool_size=1")
    await store.open()
    try:
        await store.migrate()
        for _ in range(2):
            await settle(store, 3)
            assert await store.fold_history() == 3
        async with store._session() as conn:
            cursor = await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%conveyor_attempts_pending WHERE ctid%'")
            assert await cursor.fetchall() == [(2, 0)]
    finally:
        await store.close()


async def test_a_store_that_prepares_nothing_folds(url: str) -> None:
    """prepare=off (behind PgBouncer's transaction pooling): the fold is not prepared."""
    store = PostgresStore(url + "&pool_size=1&prepare=off")
    await store.open()
    try:
        await store.migrate()
        for _ in range(6):
            await settle(store, 2)
            assert await store.fold_history() == 2
        async with store._session() as conn:
            cursor = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
            assert await cursor.fetchall() == [(0,)]
    finally:
        await store.close()
