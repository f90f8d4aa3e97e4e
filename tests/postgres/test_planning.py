"""Statements the server would otherwise parse and plan again and again in a drain
(bench/results/2026-12-09-pgplan.md): the unlimited exchange's statements are prepared at
their first use on a connection (psycopg's default is the fifth, and a drain's pool grows to
6-7 connections per worker process), and maintenance's promotion of scheduled jobs, which
mostly finds nothing due, sends its big statement only when something is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.postgres.store import PostgresStore

from .exchanges import lone_store, traced

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ASK = ClaimAsk(["q"], "w", 2, 30)


@pytest.fixture
async def lone(url: str) -> AsyncIterator[PostgresStore]:
    async for store in lone_store(url, 6):
        yield store


async def prepared(store: PostgresStore) -> list[tuple[str, int]]:
    """The statements prepared on the store's one connection: (text, times planned or run)."""
    async with store.pools.connection() as conn:
        cursor = await conn.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return [(" ".join(text.split()), runs) for text, runs in await cursor.fetchall()]


async def test_the_exchange_is_prepared_at_its_first_use(lone: PostgresStore) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs  # a plain claim, not the exchange
    answer = await lone.settle_and_claim([Complete(j.lease) for j in held], ASK)
    assert (answer.applied, len(answer.jobs)) == ([True, True], 2)
    found = await prepared(lone)
    settles = [runs for text, runs in found if "SET state = 'completed'" in text]
    claims = [runs for text, runs in found if "state = 'queued' AND queue = $" in text]
    timings = [runs for text, runs in found if "clock_timestamp() - now()" in text]
    # each run once so far (the old code prepared them at their fifth run on the connection)
    assert (settles, timings) == ([1], [1])
    assert claims and sum(claims) <= 2  # the exchange's claim (and the first, plain one)
    assert {"BEGIN", "COMMIT"} <= {text for text, _ in found}


async def test_a_store_that_prepares_nothing_exchanges(url: str) -> None:
    """prepare=off (behind PgBouncer's transaction pooling): nothing is prepared."""
    async for store in lone_store(url + "&prepare=off", 6):
        held = (await store.settle_and_claim([], ASK)).jobs
        for _ in range(2):
            answer = await store.settle_and_claim([Complete(j.lease) for j in held], ASK)
            assert answer.applied == [True] * len(held)
            held = answer.jobs
        assert await prepared(store) == []


async def sent(store: PostgresStore, work: Callable[[], Awaitable[object]]) -> str:
    """What the client sent on the store's one connection while `work` ran (libpq's trace)."""
    async with store.pools.connection() as conn:
        pass
    return await traced(conn, work)


async def test_promoting_with_nothing_due_sends_no_promotion(lone: PostgresStore) -> None:
    job = NewJob(new_id(), "t", "q", b"{}", delay=100.0)
    await lone.enqueue_many([job])
    found = await lone.get(job.id)
    assert found is not None and found.run_at is not None
    due = found.run_at
    answers: list[tuple[int, float | None]] = []

    async def promote(now: float) -> None:
        answers.append(await lone.promote_scheduled(now=now))

    early = await sent(lone, lambda: promote(due - 1))
    assert "SET state = 'queued'" not in early  # the old code sent it every time
    late = await sent(lone, lambda: promote(due))
    assert "SET state = 'queued'" in late
    assert answers == [(0, pytest.approx(due)), (1, None)]
    assert (await lone.stats()).by_state["queued"] == 7
