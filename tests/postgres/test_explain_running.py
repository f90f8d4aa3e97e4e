"""EXPLAIN tests of the running rows at scale (200,000 jobs, 5 % of them running under a
ghost worker's lease, in 20 queues: the shape of the 10M read bench's 49,995 running rows,
issue 16). Since migration 0024 the running rows have two indexes, and each reader keeps one:
a queue's running page walks its range of conveyor_jobs_running_queue newest first to the
LIMIT (before, it read every running row by the lease index and sorted the queue's: 211/255 ms
p50/p95 at 10M jobs); the stale-lease rescue tests each lease in conveyor_jobs_running
(worker_id, lease_expires_at), which a worker's heartbeat reads by worker_id; a settle, which
names no queue, never reads the queue's index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.job import JobFilter, JobState
from conveyor.store import history_sql
from conveyor.store.postgres import limits
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.reads import _where
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_explain import explain, filled_schema, plan_nodes, scans_of_jobs

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0
FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, payload, created_at, run_at,
                                    started_at, finished_at, worker_id, lease_token,
                                    lease_expires_at)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'q' || (n % 20),
       CASE WHEN n % 100 < 5 THEN 'running' WHEN n % 100 < 40 THEN 'queued'
            ELSE 'completed' END,
       '\\x7b7d', 1700000000 + n, 1700000000 + n,
       CASE WHEN n % 100 < 5 OR n % 100 >= 40 THEN 1700000000 + n END,
       CASE WHEN n % 100 >= 40 THEN 1700000000 + n END,
       CASE WHEN n % 100 < 5 THEN 'ghost' END, CASE WHEN n % 100 < 5 THEN 1 END,
       CASE WHEN n % 100 < 5 THEN 1700086400 + n END
FROM generate_series(1, 200000) AS n"""


@pytest.fixture(scope="module")
def running() -> Iterator[PostgresStore]:
    yield from filled_schema(FILL)


def indexes_read(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["Index Name"] for n in nodes if n.get("Index Name")]


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("after", [None, "000000100000"], ids=["first page", "next page"])
def test_a_queues_running_page_walks_its_range_to_the_limit(
        running: PostgresStore, generic: bool, after: str | None) -> None:
    """`?queue=q7&state=running`: one range of conveyor_jobs_running_queue walked backwards,
    stopping at the page's LIMIT; no read of every running row and no sort."""
    where_sql, params = _where(JobFilter(queue="q7", states=(JobState.RUNNING,)), after, 51)
    nodes = explain(running, f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}", params,
                    generic)
    assert scans_of_jobs(nodes) == [("Index Scan", "conveyor_jobs_running_queue")], nodes
    kinds = [n["Node Type"] for n in nodes]
    assert kinds[0] == "Limit" and "Sort" not in kinds, kinds
    scan = nodes[1]
    assert scan["Scan Direction"] == "Backward" and "queue" in scan["Index Cond"], scan


def test_a_queues_running_page_with_a_byte_budget_walks_too(running: PostgresStore) -> None:
    where_sql, params = _where(JobFilter(queue="q7", states=(JobState.RUNNING,)), None, 51)
    nodes = explain(running, q.LIST_BUDGETED.replace("{where}", where_sql),
                    {**params, "budget": 2 * 1024 * 1024})
    assert scans_of_jobs(nodes) == [("Index Scan", "conveyor_jobs_running_queue")], nodes
    assert "Sort" not in [n["Node Type"] for n in nodes]


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_the_rescue_tests_each_lease_in_the_index(running: PostgresStore,
                                                 generic: bool) -> None:
    """No lease expired yet: the rescue reads no job row, each lease is tested in the index
    (the second key of conveyor_jobs_running, since 0024 dropped the lease index)."""
    nodes = explain(running, q.RESCUE_EXPIRED, {"now": NOW, "limit": 1000, "events": None},
                    generic)
    picks = [n for n in nodes if n.get("Relation Name") == "conveyor_jobs"
             and n["Node Type"] != "ModifyTable" and n.get("Index Name") != "conveyor_jobs_pkey"]
    assert len(picks) == 1, nodes
    assert picks[0]["Index Name"] == "conveyor_jobs_running", picks[0]
    assert "lease_expires_at" in picks[0]["Index Cond"], picks[0]


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_the_rescue_of_many_expired_leases_stops_at_its_limit(running: PostgresStore,
                                                              generic: bool) -> None:
    """Every lease expired at once (a worker holding 10,000 jobs died): a rescue batch takes
    its LIMIT of them as the index yields them and stops, without reading and sorting every
    expired row first (252 ms a batch at 50,000 expired leases when it sorted by lease)."""
    nodes = explain(running, q.RESCUE_EXPIRED,
                    {"now": NOW + 10_000_000, "limit": 1000, "events": None}, generic)
    assert "Sort" not in [n["Node Type"] for n in nodes], nodes
    assert "Limit" in [n["Node Type"] for n in nodes], nodes


HEARTBEAT = {"id": "w", "host": "h", "pid": 1, "queues": None, "concurrency": 10,
             "running": 0, "claimed": 0, "claimed_queues": "{}", "lease_for": 30.0, "now": NOW}
CLAIM = {"now": None, "limit": 10, "token": 1, "lease_for": 30.0, "worker_id": "w",
         "host": "h", "events": None, "queue": "q7", "held": None}


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_the_other_readers_of_running_rows_keep_an_index(running: PostgresStore,
                                                         generic: bool) -> None:
    """A worker's heartbeat (its own jobs, by worker_id), the workers page's running jobs (all
    of them, from either index) and a queue's concurrency cap (the queue's range)."""
    beat = scans_of_jobs(explain(running, q.HEARTBEAT, HEARTBEAT, generic))
    assert [scan for scan in beat if scan[0] != "ModifyTable"] == [
        ("Index Scan", "conveyor_jobs_running")], beat
    workers = explain(running, history_sql.RUNNING_NOW, {"tenant": None}, generic)
    assert all(kind != "Seq Scan" for kind, _ in scans_of_jobs(workers)), workers
    assert set(indexes_read(workers)) & {"conveyor_jobs_running",
                                         "conveyor_jobs_running_queue"}, workers
    room = explain(running, limits.CLAIM_ROOM_AT_WALL, CLAIM, generic)
    assert "conveyor_jobs_running_queue" in indexes_read(room), room


SETTLE = {"ids": [f"{n:012d}" for n in range(100, 110)], "tokens": [1] * 10,
          "results": [None] * 10, "now": None, "events": None}


@pytest.fixture(scope="module")
def unanalyzed() -> Iterator[PostgresStore]:
    """A drain's table as the planner first sees it: 20,000 jobs, 20 running, no ANALYZE."""
    yield from filled_schema(FILL.replace("200000", "20000").replace(
        "n % 100 < 5", "n % 1000 < 1"), analyze=False)


@pytest.mark.parametrize("table", ["analyzed", "unanalyzed"])
def test_a_settle_never_walks_the_queues_index(running: PostgresStore,
                                               unanalyzed: PostgresStore, table: str) -> None:
    """A settle's fence (`id = item.id AND state = 'running'`) names no queue: without the
    index's `queue <> ''` the planner, taking the new index for a small one before ANALYZE,
    walked it whole for each job of the batch (the drain's backends +28 % CPU per job)."""
    store = running if table == "analyzed" else unanalyzed
    nodes = explain(store, q.COMPLETE, SETTLE)
    assert "conveyor_jobs_running_queue" not in indexes_read(nodes), nodes


@pytest.mark.parametrize("held", [None, 0], ids=["counted", "told"])
def test_a_holders_claim_told_what_it_holds_reads_no_running_row(running: PostgresStore,
                                                                 held: int | None) -> None:
    """A claim by a worker with a live grant of the queue's cap, told what it holds
    (ClaimAsk.holding), never reads the running rows to count its own jobs (mid-drain a walk
    of every entry of the last lease period, each heap row fetched: ~6,600 a claim,
    bench/results/2026-12-08-pgcap.md); without it the store counts them."""
    schema = running.target.quoted_schema
    with admin_connect() as conn, conn.transaction(force_rollback=True):
        conn.execute(f"INSERT INTO {schema}.conveyor_limits"
                     " (kind, name, concurrency, updated_at) VALUES ('queue', 'q7', 20, 0)")
        conn.execute(f"INSERT INTO {schema}.conveyor_cap_grants"
                     " (kind, name, worker_id, slots, share, wanted, expires_at)"
                     " VALUES ('queue', 'q7', 'w', 10, 10, 10, 4e9)")
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " +
                           running.statement(limits.CLAIM_ROOM_AT_WALL),
                           {**CLAIM, "held": held}).fetchone()
    assert row is not None
    # the count reads either running index (by queue, or by worker_id), as planned
    walks = [n["Actual Loops"] for n in plan_nodes(row[0][0]["Plan"])
             if n.get("Index Name") in ("conveyor_jobs_running_queue", "conveyor_jobs_running")]
    assert walks, row
    assert (max(walks) == 0) == (held is not None), walks
