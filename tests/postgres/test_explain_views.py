"""The overview's and /metrics' reads on 200,000 jobs of 50 tenants in 20 queues (issue 16):
the queues read's oldest-queued lookup for one tenant is a few index probes per queue, but its
estimate passes jit_above_cost as the table grows, and compiling it (~0.5 s at a million jobs)
cost a hundred times its execution. The queues read switches JIT off for its transaction
(counters.NO_JIT); these tests pin that it does, and that it matters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.store.postgres import counters
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_explain import explain, filled_schema, plan_nodes, scans_of_jobs

pytestmark = pytest.mark.postgres

FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, tenant, state, payload, created_at,
                                    run_at, finished_at, priority)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'q' || (n % 20), 'org-' || ((n / 20) % 50),
       CASE WHEN n % 5 = 0 THEN 'completed' ELSE 'queued' END,
       '\\x7b7d', 1700000000 + n, 1700000000 + n,
       CASE WHEN n % 5 = 0 THEN 1700000000 + n END, CASE WHEN n % 7 = 0 THEN 5 ELSE 0 END
FROM generate_series(1, 200000) AS n"""

QUEUES = [f"q{n}" for n in range(20)]


@pytest.fixture(scope="module")
def tenants() -> Iterator[PostgresStore]:
    yield from filled_schema(FILL)


def _analyzed(store: PostgresStore, before: list[str]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of a tenant's OLDEST_QUEUED_TENANT (every queue), in one transaction
    after `before`, with JIT as cheap to reach as it gets (jit_above_cost 0)."""
    with admin_connect() as conn, conn.transaction():
        conn.execute("SET LOCAL jit_above_cost = 0")
        for statement in before:
            conn.execute(statement)
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) "
                           + store.statement(counters.OLDEST_QUEUED_TENANT),
                           {"tenant": "org-7"}).fetchone()
    assert row is not None
    return dict(row[0][0] if isinstance(row[0], list) else json.loads(row[0])[0])


def test_a_tenants_oldest_queued_is_index_probes(tenants: PostgresStore) -> None:
    plan = _analyzed(tenants, [counters.NO_JIT])
    scans = scans_of_jobs(list(plan_nodes(plan["Plan"])))
    assert scans and all(index == "conveyor_jobs_claim_queue" for _, index in scans), scans
    assert "JIT" not in plan, plan["JIT"]


def test_jit_would_compile_it(tenants: PostgresStore) -> None:
    """The control: without NO_JIT the same statement is compiled (on a server built with
    JIT; skipped on one without)."""
    with admin_connect() as conn:
        available = conn.execute("SELECT pg_jit_available()").fetchone()
    if not (available and available[0]):
        pytest.skip("this server has no JIT")
    assert "JIT" in _analyzed(tenants, [])


def test_the_queues_read_switches_jit_off_before_the_lookup(
        tenants: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """store.queues() sends NO_JIT in its transaction, before OLDEST_QUEUED_TENANT."""
    sent: list[str] = []
    statement = PostgresStore.statement

    def spy(self: PostgresStore, template: str) -> str:
        sent.append(template)
        return statement(self, template)

    monkeypatch.setattr(PostgresStore, "statement", spy)

    async def read() -> None:
        try:
            found = await tenants.queues("org-7", 1_700_300_000.0)
            assert {q.name for q in found} == set(QUEUES)
        finally:
            await tenants.close()

    asyncio.run(read())
    assert counters.NO_JIT in sent and counters.OLDEST_QUEUED_TENANT in sent, sent
    assert sent.index(counters.NO_JIT) < sent.index(counters.OLDEST_QUEUED_TENANT)


# 3 days of minute rows (and their hours) for 20 queues, and 20,000 pending attempts
ROLLUPS = """
INSERT INTO {schema}.conveyor_rollups_all (width, minute, task, queue, completed)
SELECT w, m, 't', 'q' || q, 1
FROM generate_series(0, 19) AS q, (VALUES (60), (3600)) AS widths(w),
     generate_series(28333000, 28333000 + 3 * 1440 - 1) AS m
WHERE m % (w / 60) = 0;
INSERT INTO {schema}.conveyor_attempts_pending (job_id, attempt, task, queue, started_at,
                                                ended_at, duration, outcome, bucket)
SELECT 'j' || n, 1, 't', 'q' || (n % 20), 1700000000 + n * 0.01, 1700000000 + n * 0.01,
       0.01, 'completed', 4
FROM generate_series(1, 20000) AS n;
ANALYZE {schema}.conveyor_rollups_all;
ANALYZE {schema}.conveyor_attempts_pending"""


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("span", [3600.0, 86400.0], ids=["hour", "day"])
def test_the_charts_read_is_a_key_range_and_a_limited_tail(
        tenants: PostgresStore, generic: bool, span: float) -> None:
    """queue_analytics (the overview's charts): the folded minutes or hours are a range of
    the rollups' key, and the pending rows a scan cut at PENDING_READ rows."""
    from conveyor.history.records import TimeRange
    from conveyor.store.history_reads import PENDING_READ, _points
    from conveyor.store.postgres.history import PostgresHistory

    with admin_connect() as conn:
        if not conn.execute(tenants.statement(
                "SELECT 1 FROM {schema}.conveyor_rollups_all LIMIT 1")).fetchone():
            conn.execute(tenants.statement(ROLLUPS))
    end = 28333000 * 60 + 3 * 86400.0
    params, _ = _points(TimeRange(end - span, end + 60), 61 if span == 3600 else 30)
    nodes = explain(tenants, PostgresHistory._queue_rollups[1],
                    {**params, "pending_limit": PENDING_READ}, generic)
    [rollups] = [n for n in nodes if n.get("Relation Name") == "conveyor_rollups_all"]
    assert rollups["Node Type"] != "Seq Scan", rollups
    assert "minute >=" in json.dumps(nodes), nodes
    limits = [n for n in nodes if n["Node Type"] == "Limit"]
    assert limits and any(p.get("Relation Name") == "conveyor_attempts_pending"
                          for n in limits for p in plan_nodes(n)), nodes
