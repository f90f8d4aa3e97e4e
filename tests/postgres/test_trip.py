"""trip.one_trip: a transaction sent as one round trip, rolled back whole on any error, its
connection returned clean; and the store's transactions (a limited claim, an atomic or
tenant-scoped session) take one trip each."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from conveyor.job import ClaimedJob, ErrorInfo, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Fail
from conveyor.store.postgres.store import PostgresStore
from conveyor.store.postgres.trip import one_trip

from .conftest import BASE_URL
from .exchanges import traced

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ERROR = ErrorInfo(1, "ValueError", "no")


@pytest.fixture
async def conn(schema: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    connection = await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True)
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.execute(f'CREATE TABLE "{schema}".t (x integer PRIMARY KEY)')
    try:
        yield connection
    finally:
        await connection.close()


async def rows_in(conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str) -> int:
    cursor = await conn.execute(f'SELECT count(*) FROM "{schema}".t')
    [(count,)] = await cursor.fetchall()
    return int(str(count))


async def syncs(conn: psycopg.AsyncConnection[tuple[object, ...]],
                work: Callable[[], Awaitable[object]]) -> int:
    """How many round trips `work` made: in libpq's trace of the messages, each run of
    messages the client sent (F) that the server then answered (B)."""
    parts = [line.split("\t") for line in (await traced(conn, work)).splitlines()]
    sides = [part[1] for part in parts if len(part) > 2 and part[1] in ("F", "B")]
    return sum(1 for sent, answer in itertools.pairwise(sides)
               if (sent, answer) == ("F", "B"))


async def executes(conn: psycopg.AsyncConnection[tuple[object, ...]],
                   work: Callable[[], Awaitable[object]]) -> int:
    """How many statements `work` ran: in libpq's trace, the Execute messages the client
    sent (one a statement, prepared or not)."""
    parts = [line.split("\t") for line in (await traced(conn, work)).splitlines()]
    return sum(1 for part in parts if len(part) > 3 and part[1] == "F" and part[3] == "Execute")


async def test_a_transaction_with_a_result_read_after_it_is_one_trip(
        conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str) -> None:
    async def work() -> None:
        async with one_trip(conn):
            await conn.execute(f'INSERT INTO "{schema}".t VALUES (1)')
            cursor = await conn.execute(f'SELECT x FROM "{schema}".t')
        assert await cursor.fetchall() == [(1,)]

    async def with_psycopg_transaction() -> None:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(f'INSERT INTO "{schema}".t VALUES (2)')

    assert await syncs(conn, work) == 1
    assert await syncs(conn, with_psycopg_transaction) > 1  # what one_trip saves
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert await rows_in(conn, schema) == 2


@pytest.mark.parametrize("read_inside", [False, True], ids=["queued", "read-inside"])
async def test_a_failing_statement_commits_nothing_and_leaves_the_connection_clean(
        conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str,
        read_inside: bool) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with one_trip(conn):
            await conn.execute(f'INSERT INTO "{schema}".t VALUES (1)')
            cursor = await conn.execute(f'INSERT INTO "{schema}".t VALUES (1)')
            if read_inside:
                await cursor.fetchall()
            await conn.execute(f'INSERT INTO "{schema}".t VALUES (3)')
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert await rows_in(conn, schema) == 0
    async with one_trip(conn):  # and it is usable at once, in one trip again
        await conn.execute(f'INSERT INTO "{schema}".t VALUES (4)')
    assert await rows_in(conn, schema) == 1


async def test_a_python_error_in_the_block_rolls_back(
        conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str) -> None:
    with pytest.raises(LookupError):
        async with one_trip(conn):
            await conn.execute(f'INSERT INTO "{schema}".t VALUES (1)')
            raise LookupError("the caller's own error")
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert await rows_in(conn, schema) == 0


async def test_a_failed_store_session_returns_a_clean_connection(store: PostgresStore) -> None:
    await store.enqueue_many([NewJob(new_id(), "t", "q", b"{}")])
    with pytest.raises(psycopg.errors.DivisionByZero):
        async with store._session(atomic=True) as conn:
            await conn.execute(store.statement("DELETE FROM {schema}.conveyor_jobs"))
            await conn.execute("SELECT 1 / 0")
    async with store._session() as conn:  # the pool's connection (a pool of one or more)
        assert conn.info.transaction_status == TransactionStatus.IDLE
        cursor = await conn.execute(store.statement("SELECT count(*) FROM {schema}.conveyor_jobs"))
        assert await cursor.fetchall() == [(1,)]


@pytest.fixture
async def lone(url: str) -> AsyncIterator[PostgresStore]:
    """A store whose pool has one connection: the one the trace is set on."""
    instance = PostgresStore(url + "&pool_size=1")
    await instance.open()
    await instance.migrate()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.mark.parametrize("limits", [
    [Limit("queue", "q", concurrency=20)],
    [Limit("queue", "q", concurrency=20), Limit("task", "other", concurrency=5)],
], ids=["one-queue", "general"])
async def test_a_limited_claim_and_an_atomic_settle_take_their_fewest_trips(
        lone: PostgresStore, limits: list[Limit]) -> None:
    for limit in limits:
        await lone.set_limit(limit)
    await lone.enqueue_many([NewJob(new_id(), "t", "q", b"{}") for _ in range(3)])
    await lone.claim(["q"], "w", 1, 30)  # the limited names are read and cached
    async with lone.pools.connection() as conn:
        pass
    claimed: list[ClaimedJob] = []

    async def claim() -> None:
        claimed.extend(await lone.claim(["q"], "w", 2, 30))

    async def settle() -> None:
        await lone.settle([Complete(claimed[0].lease), Fail(claimed[1].lease, ERROR)])

    # one queue: one trip; the general way reads usage, then candidates, then claims
    assert await syncs(conn, claim) == (1 if len(limits) == 1 else 3)
    assert len(claimed) == 2
    assert await syncs(conn, settle) == 1  # two kinds of outcome: a transaction, one trip


async def test_only_a_settle_of_a_keyed_job_is_a_transaction(lone: PostgresStore) -> None:
    """With a key limit set, a settle of an unkeyed job is a plain statement (no BEGIN, no
    unpark); the settle of the keyed job unparks its key in the same one trip."""
    await lone.set_limit(Limit("key", "k", concurrency=1))
    await lone.enqueue_many([NewJob(new_id(), "k", "q", b"{}", limit_key="a"),
                             NewJob(new_id(), "plain", "q", b"{}")])
    claimed = {j.task: j for j in await lone.claim(["q"], "w", 5, 30)}
    async with lone.pools.connection() as conn:
        pass

    async def sent(job: ClaimedJob) -> str:
        return await traced(conn, lambda: lone.settle([Complete(job.lease)]))

    plain = await sent(claimed["plain"])
    assert "BEGIN" not in plain and "conveyor_limit_keys" not in plain
    keyed = await sent(claimed["k"])
    assert "BEGIN" in keyed and "conveyor_limit_keys" in keyed
