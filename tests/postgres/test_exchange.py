"""settle_and_claim on PostgreSQL (store/postgres/exchange.py): under a limit, the settle's
transaction and the claim's go out in one round trip; a claim that fails after the settle's
commit leaves the outcomes written (and says so), a settle that fails writes and claims
nothing; either way the connection goes back clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from conveyor.job import ClaimedJob, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.postgres.store import PostgresStore

from .exchanges import assert_clean, lone_store, state_of
from .test_trip import executes, syncs

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ASK = ClaimAsk(["q"], "w", 2, 30)


@pytest.fixture
async def lone(url: str) -> AsyncIterator[PostgresStore]:
    """A store whose pool has one connection: the one the trace is set on."""
    async for store in lone_store(url, 5, Limit("queue", "q", concurrency=2)):
        yield store


async def test_settle_and_the_limited_claim_are_one_trip(lone: PostgresStore) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs  # the limited names are read, cached
    async with lone.pools.connection() as conn:
        pass
    answers = []

    async def exchange() -> None:
        answers.append(await lone.settle_and_claim([Complete(j.lease) for j in held], ASK))

    assert await syncs(conn, exchange) == 1  # was two: the settle's, then the claim's
    [answer] = answers
    assert (answer.applied, len(answer.jobs), answer.cut_short) == ([True, True], 2, False)
    assert {await state_of(lone, job) for job in held} == {"completed"}


async def test_a_capped_exchange_runs_as_few_statements_as_an_unlimited_one(
        lone: PostgresStore) -> None:
    """One queue under its own cap: BEGIN, the settle, COMMIT, the lock with the claim's
    settings, the claim (in the implicit transaction the pipeline's sync ends), as the
    unlimited exchange's BEGIN, settle, COMMIT, claim and its timing. It was 8: BEGIN and
    COMMIT around the claim and its settings in a statement of their own (each statement
    an execute of the worker's CPU: bench/results/2026-12-09-pgcap20.md)."""
    held = (await lone.settle_and_claim([], ASK)).jobs
    async with lone.pools.connection() as conn:
        pass
    answers = []

    async def exchange() -> None:
        answers.append(await lone.settle_and_claim([Complete(j.lease) for j in held], ASK))

    assert await executes(conn, exchange) == 5
    [answer] = answers
    assert (answer.applied, len(answer.jobs)) == ([True, True], 2)
    assert {await state_of(lone, job) for job in held} == {"completed"}
    await assert_clean(lone)
    async with lone.pools.connection() as conn:  # the claim's settings were its own
        for setting in ("synchronous_commit", "enable_bitmapscan"):
            assert (await (await conn.execute(f"SHOW {setting}")).fetchone()) == ("on",)
    usage = {u.limit.name: u.running for u in await lone.limits()}
    assert usage == {"q": 2}  # the claim committed


async def test_a_claim_failing_after_the_settle_keeps_the_outcomes(
        lone: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs

    async def failing(conn: psycopg.AsyncConnection[Any], *args: object) -> None:
        await conn.execute("SELECT 1 / 0")

    monkeypatch.setattr(lone, "_claim_in", failing)
    monkeypatch.setattr(lone, "_claim_room_in", failing)  # one queue's caps: this path
    answer = await lone.settle_and_claim([Complete(held[0].lease)], ASK)
    assert answer.applied == [True] and answer.jobs == []
    assert isinstance(answer.claim_failed, psycopg.errors.DivisionByZero)
    assert await state_of(lone, held[0]) == "completed"
    await assert_clean(lone)
    monkeypatch.undo()
    again = await lone.settle_and_claim([Complete(held[1].lease)], ASK)
    assert (again.applied, len(again.jobs)) == ([True], 2)


async def test_a_failing_settle_writes_and_claims_nothing(
        lone: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs
    monkeypatch.setattr(lone, "_settle_statement", lambda *args: ("SELECT 1 / 0", None))
    with pytest.raises(psycopg.errors.DivisionByZero):
        await lone.settle_and_claim([Complete(held[0].lease)], ASK)
    assert await state_of(lone, held[0]) == "running"
    await assert_clean(lone)
    monkeypatch.undo()
    usage = {u.limit.name: u.running for u in await lone.limits()}
    assert usage == {"q": 2}  # nothing claimed


async def test_a_claim_a_full_cap_cut_short_says_so_while_others_settle(url: str) -> None:
    """Issue 14: a worker shut out of a full cap retries soon only if its answer says a full
    cap cut it short (worker/caps.py); otherwise it waits its poll, about a second. Another
    worker settling and claiming again the whole time, a short claim must say so every time:
    the answer is read in the claim's own statement. (Read by a second statement, a settle
    that committed between the two made it say "not full" in ~10 % of the short claims.)"""
    holder, waiter = PostgresStore(url), PostgresStore(url)
    for store in (holder, waiter):
        await store.open()
    try:
        await holder.migrate()
        await holder.set_limit(Limit("queue", "q", concurrency=4))
        for _ in range(4):
            await holder.enqueue_many([NewJob(new_id(), "t", "q", b"{}") for _ in range(1000)])
        done = False

        async def hold() -> None:  # settles its jobs and takes the slots again, in one trip
            held: list[ClaimedJob] = []
            while not done:
                held = (await holder.settle_and_claim(
                    [Complete(j.lease) for j in held], ClaimAsk(["q"], "holder", 4, 30))).jobs

        async def wait() -> list[tuple[int, bool]]:
            answers, mine = [], []
            for _ in range(300):
                answer = await waiter.settle_and_claim(
                    [Complete(j.lease) for j in mine], ClaimAsk(["q"], "waiter", 4, 30))
                mine = answer.jobs
                answers.append((len(answer.jobs), answer.cut_short))
            return answers

        holding = asyncio.ensure_future(hold())
        try:
            answers = await wait()
        finally:
            done = True
            await holding
        # the queue never ran dry: every short claim was one the full cap cut short
        assert (await holder.stats()).by_state.get("queued", 0) >= 100
        short = [cut for got, cut in answers if got < 4]
        assert len(short) > 100 and all(short), f"{short.count(False)} of {len(short)} not cut"
    finally:
        for store in (holder, waiter):
            await store.close()
