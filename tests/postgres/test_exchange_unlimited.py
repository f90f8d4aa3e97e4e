"""settle_and_claim on PostgreSQL with no limit (store/postgres/exchange.py `_exchange`): the
settle's transaction and the plain claim go out in one round trip (they were two); a claim
that fails after the settle's commit leaves the outcomes written (and says so), a settle that
fails writes and claims nothing; either way the connection goes back clean. The claim's
cursor is timed by the server's clock, not by the trip that carried the settle too."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.postgres import cursor as cursor_module
from conveyor.store.postgres.exchange import _Trip
from conveyor.store.postgres.store import PostgresStore

from .exchanges import assert_clean, lone_store, state_of
from .test_trip import syncs

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ASK = ClaimAsk(["q"], "w", 2, 30)


@pytest.fixture
async def lone(url: str) -> AsyncIterator[PostgresStore]:
    """A store whose pool has one connection (the one the trace is set on); no limits."""
    async for store in lone_store(url, 6):
        yield store


async def test_settle_and_the_unlimited_claim_are_one_trip(lone: PostgresStore) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs  # the limited names are read, cached
    async with lone.pools.connection() as conn:
        pass
    answers = []

    async def exchange() -> None:
        answers.append(await lone.settle_and_claim([Complete(j.lease) for j in held], ASK))

    assert await syncs(conn, exchange) == 1  # was two: the settle's, then the claim's
    [answer] = answers
    assert (answer.applied, len(answer.jobs), answer.claim_failed) == ([True, True], 2, None)
    assert {await state_of(lone, job) for job in held} == {"completed"}
    assert {await state_of(lone, job) for job in answer.jobs} == {"running"}
    await assert_clean(lone)


async def test_a_claim_failing_after_the_settle_keeps_the_outcomes(
        lone: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs

    async def failing(fetch: Any, *args: object) -> object:
        return await fetch("SELECT 1 / 0", {})

    monkeypatch.setattr(lone, "_claim_rows", failing)
    answer = await lone.settle_and_claim([Complete(held[0].lease)], ASK)
    assert answer.applied == [True] and answer.jobs == []
    assert isinstance(answer.claim_failed, psycopg.errors.DivisionByZero)
    assert await state_of(lone, held[0]) == "completed"
    await assert_clean(lone)
    monkeypatch.undo()
    again = await lone.settle_and_claim([Complete(held[1].lease)], ASK)
    assert (again.applied, len(again.jobs)) == ([True], 2)
    await assert_clean(lone)


async def test_a_failing_settle_writes_and_claims_nothing(
        lone: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    held = (await lone.settle_and_claim([], ASK)).jobs
    monkeypatch.setattr(lone, "_settle_statement", lambda *args: ("SELECT 1 / 0", None))
    with pytest.raises(psycopg.errors.DivisionByZero):
        await lone.settle_and_claim([Complete(held[0].lease)], ASK)
    assert await state_of(lone, held[0]) == "running"
    await assert_clean(lone)
    by_state = (await lone.stats()).by_state
    assert (by_state["running"], by_state["queued"]) == (2, 4)  # nothing claimed


async def test_the_claim_is_timed_without_the_settle_before_it(
        lone: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full claim slower than cursor.SLOW makes the next claims continue after the cursor
    (cursor.py). The settle's part of the shared trip (here 50 ms) is not the claim's."""
    held = (await lone.settle_and_claim([], ASK)).jobs
    monkeypatch.setattr(cursor_module, "SLOW", 0.03)

    async def slow_settle(conn: psycopg.AsyncConnection[Any], ids: object) -> None:
        await conn.execute("SELECT pg_sleep(0.05)")  # queued in the settle's transaction

    monkeypatch.setattr(lone, "_unpark_settled", slow_settle)
    answer = await lone.settle_and_claim([Complete(j.lease) for j in held], ASK)
    assert len(answer.jobs) == 2
    cursor = lone.cursors.get("w", "q")
    assert cursor is not None and not cursor.slow


async def test_a_claim_after_the_trip_is_timed_by_its_own_trip(lone: PostgresStore) -> None:
    """A cursor's continuation that finds nothing is followed by a full claim, a trip of its
    own: that one is timed as it took, not by the first statement's server time."""
    async with lone.pools.connection() as conn:
        trip = _Trip(lone, conn, True)
        await trip.open()
        assert await trip.fetch("SELECT 1", {}) == [(1,)]  # the pipelined one: timed
        began = time.monotonic()
        await trip.fetch("SELECT pg_sleep(0.05)", {})
        assert trip.timer(began) >= 0.05
