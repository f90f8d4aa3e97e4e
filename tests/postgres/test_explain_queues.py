"""The queues read (the queues page, the overview) while workers drain (issue 16): the head of
each queue's range of the claim index then holds the entries of jobs claimed since the last
vacuum, and a lookup from the front of the range walks them, a heap visit each. These tests
hold such entries in place (a snapshot older than the claims keeps them from being dead to
everyone, as a drain's own transactions, or any long transaction, do) and read the plan of
the lookup the store sends after a fold has moved the queues' kept heads (migration 0035):
one descent per queue and priority, past the claimed entries, none walked; and the whole read
in one round trip. And the page's limits read, with JIT off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from conveyor.store.postgres.counters import NO_JIT
from conveyor.store.postgres.limits import USAGE_ALL
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_explain import filled_schema, plan_nodes

pytestmark = pytest.mark.postgres

QUEUES = 4
PER_QUEUE = 2_000
CLAIMED = 200  # per queue, from the head of its highest priority (as a claim takes them)
FILL = f"""
INSERT INTO {{schema}}.conveyor_jobs (id, task, queue, state, payload, created_at, run_at,
                                    priority)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'q' || (n % {QUEUES}), 'queued', '\\x7b7d',
       1700000000 + n, 1700000000 + n, CASE WHEN n % 5 = 0 THEN 5 ELSE 0 END
FROM generate_series(1, {QUEUES * PER_QUEUE}) AS n"""
LOOKUP = "conveyor_queue_heads"  # in the oldest-queued lookup's statement alone
CLAIM_HEADS = f"""
UPDATE {{schema}}.conveyor_jobs SET state = 'running', lease_token = 1,
    lease_expires_at = 1800000000, started_at = 1700000000
WHERE id IN (SELECT id FROM (
    SELECT id, row_number() OVER (PARTITION BY queue ORDER BY priority DESC, run_at) AS nth
    FROM {{schema}}.conveyor_jobs WHERE state = 'queued') AS ranked
    WHERE nth <= {CLAIMED})"""


@pytest.fixture(scope="module")
def draining() -> Iterator[tuple[PostgresStore, list[tuple[str, Any]]]]:
    """The filled schema with CLAIMED jobs per queue claimed while an older snapshot is
    open; yields the store and the statements its queues() sent (each with its params)."""
    for store in filled_schema(FILL):
        with admin_connect() as holder, admin_connect() as conn:
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            holder.execute("SELECT 1 FROM pg_class LIMIT 1")  # the snapshot, from now on
            conn.execute(store.statement(CLAIM_HEADS))
            asyncio.run(_fold(store))  # as a worker's maintenance does every second or so
            yield store, _sent_by_queues(store)
            holder.execute("ROLLBACK")


async def _fold(store: PostgresStore) -> None:
    try:
        assert await store.fold_counts()
    finally:
        await store.close()


def _sent_by_queues(store: PostgresStore) -> list[tuple[str, Any]]:
    """What queues() sends, in order, each (statement, params); a row read is ("FETCH",
    None) where it happens."""
    sent: list[tuple[str, Any]] = []
    execute, fetchall = psycopg.AsyncConnection.execute, psycopg.AsyncCursor.fetchall

    async def spy(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        sent.append((str(query), params))
        return await execute(conn, query, params, **kwargs)

    async def fetch_spy(cursor: Any) -> Any:
        sent.append(("FETCH", None))
        return await fetchall(cursor)

    async def read() -> None:
        try:
            psycopg.AsyncConnection.execute = spy  # type: ignore[method-assign]
            psycopg.AsyncCursor.fetchall = fetch_spy  # type: ignore[method-assign]
            found = await store.queues(None, 1_700_300_000.0)
        finally:
            psycopg.AsyncConnection.execute = execute  # type: ignore[method-assign]
            psycopg.AsyncCursor.fetchall = fetchall  # type: ignore[method-assign]
            await store.close()
        assert len(found) == QUEUES
        assert all(q.counts["running"] == CLAIMED for q in found), found

    asyncio.run(read())
    return sent


def _lookup_plan(draining: tuple[PostgresStore, list[tuple[str, Any]]]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the oldest-queued lookup, as the store sent it."""
    _, sent = draining
    [(sql, params)] = [(s, p) for s, p in sent if LOOKUP in s]
    with admin_connect() as conn:
        row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql,
                           params).fetchone()
    assert row is not None
    return dict(row[0][0] if isinstance(row[0], list) else json.loads(row[0])[0])


def test_the_claimed_entries_are_not_walked(
        draining: tuple[PostgresStore, list[tuple[str, Any]]]) -> None:
    """Each probe starts at its kept head, past the claimed jobs' entries: a heap visit at
    most for the one entry it finds (the table is not vacuumed: no page is all-visible). The
    lookup that started at the front of each queue visited every claimed entry (1,616 here
    before issue 16's first change, 800-1,200 after it)."""
    nodes = list(plan_nodes(_lookup_plan(draining)["Plan"]))
    fetched = sum(n.get("Heap Fetches", 0) for n in nodes  # each a total over its loops
                  if n.get("Relation Name") == "conveyor_jobs")
    assert fetched <= QUEUES * 2, fetched
    hit = sum(n.get("Shared Hit Blocks", 0) + n.get("Shared Read Blocks", 0) for n in nodes
              if n.get("Relation Name") == "conveyor_jobs")
    assert hit <= QUEUES * 2 * 4, hit  # a descent (3 levels at most here) and its heap page


def test_each_queue_is_one_probe_per_priority(
        draining: tuple[PostgresStore, list[tuple[str, Any]]]) -> None:
    """Two priorities per queue: one descent each, from its head (the recursive lookup:
    three per queue, the last finding no priority below; before it five)."""
    nodes = list(plan_nodes(_lookup_plan(draining)["Plan"]))
    probes = sum(n["Actual Loops"] for n in nodes
                 if n.get("Relation Name") == "conveyor_jobs")
    assert probes == QUEUES * 2, probes
    assert all(n.get("Index Name") == "conveyor_jobs_claim_queue" for n in nodes
               if n.get("Relation Name") == "conveyor_jobs"), nodes


def test_the_queues_read_is_one_round_trip(
        draining: tuple[PostgresStore, list[tuple[str, Any]]]) -> None:
    """Every statement of queues() is sent before any row is read: the lookup finds its
    queues from the kept counts itself, not from the counts' rows read back first."""
    _, sent = draining
    order = [s for s, _ in sent]
    first_read = order.index("FETCH")
    assert any(LOOKUP in s for s in order[:first_read]), order
    assert set(order[first_read:]) == {"FETCH"}, order



def test_an_empty_limits_table_is_guessed_at_hundreds_of_rows(
        draining: tuple[PostgresStore, list[tuple[str, Any]]]) -> None:
    """Why: conveyor_limits never analysed (empty here, as on most installs) is guessed at
    hundreds of rows, each with the read's subqueries (the count of running jobs walks them
    all): at 2,000,000 jobs the estimate passed jit_above_cost (143,984 > 100,000) and every
    read compiled (bench/results/2026-12-08-q16.md)."""
    store, _ = draining
    with admin_connect() as conn:
        row = conn.execute("EXPLAIN (FORMAT JSON) " + store.statement(USAGE_ALL),
                           {"now": None}).fetchone()
    assert row is not None
    plan = (row[0][0] if isinstance(row[0], list) else json.loads(row[0])[0])["Plan"]
    assert plan["Plan Rows"] >= 100, plan


def test_the_limits_read_switches_jit_off(
        draining: tuple[PostgresStore, list[tuple[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """store.limits() (the queues page's limits) sends NO_JIT in its transaction first."""
    store, _ = draining
    sent: list[str] = []
    statement = PostgresStore.statement

    def spy(self: PostgresStore, template: str) -> str:
        sent.append(template)
        return statement(self, template)

    monkeypatch.setattr(PostgresStore, "statement", spy)

    async def read() -> None:
        try:
            assert await store.limits() == []
        finally:
            await store.close()

    asyncio.run(read())
    assert NO_JIT in sent and USAGE_ALL in sent, sent
    assert sent.index(NO_JIT) < sent.index(USAGE_ALL)
