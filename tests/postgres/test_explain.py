"""EXPLAIN tests: the claim and maintenance statements stay on their partial indexes as the
jobs table grows (200,000 rows, most of them finished, as in a busy queue before pruning)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.store.postgres import keys
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL, admin_connect

pytestmark = pytest.mark.postgres

# 1 % queued, 1 % scheduled, 0.1 % running (with 1 % running, spread evenly over the ids, a
# primary-key walk finds a page of 51 in ~5,100 rows, close enough in cost to reading the
# running index and sorting that ANALYZE's sample tipped the choice in one CI run)
FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, payload, created_at, run_at,
                                    finished_at, lease_expires_at, priority)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'queue-' || (n % 7),
       CASE WHEN n % 100 = 0 THEN 'queued' WHEN n % 100 = 1 THEN 'scheduled'
            WHEN n % 1000 = 2 THEN 'running' ELSE 'completed' END,
       '\\x7b7d', 1700000000 + n, 1700000000 + n,
       CASE WHEN n % 100 > 1 AND n % 1000 <> 2 THEN 1700000000 + n END,
       CASE WHEN n % 1000 = 2 THEN 1700000000 + n END, n % 3
FROM generate_series(1, 200000) AS n"""


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


async def _migrate(store: PostgresStore) -> None:
    try:
        await store.migrate()
    finally:
        await store.close()


def filled_schema(fill: str, analyze: bool = True) -> Iterator[PostgresStore]:
    """A fresh schema, migrated, filled by `fill` and analysed; dropped afterwards (the
    module fixtures of the EXPLAIN tests: filling takes a few seconds, so once a module)."""
    schema = f"conveyor_pgtest_{secrets.token_hex(6)}"
    store = PostgresStore(f"{BASE_URL}?schema={schema}")
    with admin_connect() as conn:
        asyncio.run(_migrate(store))
        try:
            conn.execute(store.statement(fill))
            if analyze:  # (not: the planner's guesses in a fresh drain, autovacuum behind)
                conn.execute(store.statement("ANALYZE {schema}.conveyor_jobs"))
            yield store
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def filled() -> Iterator[PostgresStore]:
    """One schema filled once for the whole module (filling takes a few seconds)."""
    yield from filled_schema(FILL)


def explain(store: PostgresStore, template: str, params: dict[str, Any],
            generic: bool = False) -> list[dict[str, Any]]:
    with admin_connect() as conn, conn.transaction():
        if generic:  # what a prepared statement settles on after a few runs
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        row = conn.execute("EXPLAIN (FORMAT JSON) " + store.statement(template),
                           params).fetchone()
    assert row is not None
    return list(plan_nodes(row[0][0]["Plan"]))


def scans_of_jobs(nodes: list[dict[str, Any]], table: str = "conveyor_jobs"
                  ) -> list[tuple[str, str | None]]:
    return [(n["Node Type"], n.get("Index Name")) for n in nodes
            if n.get("Relation Name") == table]


CLAIM = {"now": 1_800_000_000.0, "limit": 10, "token": 1, "lease_for": 30.0,
         "worker_id": "w", "host": "h", "events": None}


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_claim_from_one_queue_walks_its_partial_index(filled: PostgresStore,
                                                            generic: bool) -> None:
    nodes = explain(filled, q.CLAIM_QUEUE, {**CLAIM, "queue": "queue-0"}, generic)
    scans = scans_of_jobs(nodes)
    assert ("Index Scan", "conveyor_jobs_claim_queue") in scans, scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans
    assert any(n["Node Type"] == "LockRows" for n in nodes)  # FOR UPDATE SKIP LOCKED


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_claim_from_any_queue_skips_through_the_claim_index(filled: PostgresStore,
                                                          generic: bool) -> None:
    scans = scans_of_jobs(explain(filled, q.CLAIM_ANY, CLAIM, generic))
    assert any(name == "conveyor_jobs_claim_queue" for _, name in scans), scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_claim_from_several_queues_reads_each_queue_range(filled: PostgresStore,
                                                          generic: bool) -> None:
    scans = scans_of_jobs(explain(filled, q.CLAIM_QUEUES,
                                  {**CLAIM, "queues": ["queue-1", "queue-2"]}, generic))
    assert ("Index Scan", "conveyor_jobs_claim_queue") in scans, scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans


@pytest.mark.parametrize(("template", "index"), [
    # 0024 dropped the lease index: the heartbeat's, whose second key is the lease
    (q.RESCUE_EXPIRED, ("conveyor_jobs_running",)),
    (q.PROMOTE_SCHEDULED, ("conveyor_jobs_scheduled",)),
])
def test_maintenance_reads_its_partial_index(filled: PostgresStore, template: str,
                                                   index: tuple[str, ...]) -> None:
    scans = scans_of_jobs(explain(filled, template, {"now": 1_700_000_100.0, "limit": 1000,
                                                    "events": None}))
    assert any(name in index for _, name in scans), scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_finding_a_job_by_the_start_or_end_of_its_id_is_an_index_scan(
        filled: PostgresStore, generic: bool) -> None:
    prefix = explain(filled, q.FIND_BY_PREFIX, {"low": "0000001234", "high": "0000001235",
                                                "fragment": "0000001234", "tenant": None,
                                                "limit": 5}, generic)
    scans = scans_of_jobs(prefix)
    assert scans and all(kind != "Seq Scan" for kind, _ in scans), scans
    assert any(name == "conveyor_jobs_pkey" for _, name in scans), scans
    suffix = explain(filled, q.FIND_BY_SUFFIX, {"reversed": "4321%", "tenant": None,
                                                "limit": 5}, generic)
    scans = scans_of_jobs(suffix, "conveyor_job_tails")  # the jobs' tails (migration 0020)
    assert any(name == "conveyor_jobs_id_tail" for _, name in scans), scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_retention_by_count_reads_an_index(filled: PostgresStore, generic: bool) -> None:
    from conveyor.store.postgres.retention import PRUNE_KEPT_QUEUE

    # what runs for a queue over its limit (maintenance skips those within it)
    nodes = explain(filled, PRUNE_KEPT_QUEUE, {"queue": "queue-3", "state": "completed",
                                               "task": None, "keep": 1000, "limit": 1000,
                                               "now": 1_800_000_000.0}, generic)
    scans = scans_of_jobs(nodes)
    assert ("Index Scan", "conveyor_jobs_finished") in scans, scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_dead_letters_read_the_index_of_dead_rows(filled: PostgresStore, generic: bool) -> None:
    for template, params in ((q.DEAD_LETTERS, {"queue": None, "tenant": None, "after": None,
                                               "limit": 51}),):
        scans = scans_of_jobs(explain(filled, template, params, generic))
        assert any(name == "conveyor_jobs_dead" for _, name in scans), scans
        assert all(kind != "Seq Scan" for kind, _ in scans), scans


def _list(where: Any, after: str | None = None) -> tuple[str, dict[str, Any]]:
    from conveyor.store.postgres.reads import _where

    where_sql, params = _where(where, after, 200)
    return f"{q.LIST_SELECT}{where_sql} {q.LIST_ORDER}", params


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_search_candidates_are_bounded_walks_newest_first(filled: PostgresStore,
                                                          generic: bool) -> None:
    """A search's pages (search.py): failed jobs from their own partial index; several tasks
    or queues by walking the primary key backwards, stopping at the LIMIT (no sort)."""
    from conveyor.job import JobFilter

    nodes = explain(filled, *_list(JobFilter(with_errors=True), after="000000100000"), generic)
    scans = scans_of_jobs(nodes)
    assert any(name == "conveyor_jobs_errored" for _, name in scans), scans
    assert all(kind != "Seq Scan" for kind, _ in scans), scans
    nodes = explain(filled, *_list(JobFilter(tasks=("fill.task", "other"),
                                             queues=("queue-1", "queue-2"))), generic)
    assert nodes[0]["Node Type"] == "Limit", nodes[0]
    assert not any(n["Node Type"] == "Sort" for n in nodes), nodes
    assert ("Index Scan", "conveyor_jobs_pkey") in scans_of_jobs(nodes), scans_of_jobs(nodes)


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_name_catalogue_reads_are_bounded(filled: PostgresStore, generic: bool) -> None:
    from conveyor.store.postgres import catalog

    params = {"tenant": "org-1", "since": 1, "recent": 1000, "window": 20_000}
    for template in (catalog.RECENT_NAMES, catalog.RECENT_TENANT_NAMES):
        nodes = explain(filled, template, params, generic)
        # the newest rows by the key, under a Limit: never a sort of the table
        assert scans_of_jobs(nodes) == [("Index Scan", "conveyor_jobs_pkey")], nodes
        walk = next(n for n in nodes if n.get("Relation Name") == "conveyor_jobs")
        assert walk["Scan Direction"] == "Backward", walk
        assert any(n["Node Type"] == "Limit" for n in nodes), nodes
    rolled = explain(filled, catalog.ROLLED_NAMES, params, generic)
    assert all(n["Node Type"] != "Seq Scan" for n in rolled
               if n.get("Relation Name") == "conveyor_rollups"), rolled


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_a_keyed_claim_reads_only_the_keys_it_picked(filled: PostgresStore,
                                                     generic: bool) -> None:
    """Per-key limits: a key's counts and its next jobs come from the index of keyed jobs
    (task, limit_key, state, ...), never from a walk of the queue or of other keys' jobs."""
    ready = explain(filled, keys.READY_KEYS, {"tasks": ["fill.task"], "now": 1_800_000_000.0,
                                              "queues": ["queue-0"],
                                              "probe": 11, "keys": 32}, generic)
    picked = explain(filled, keys.KEY_CANDIDATES, {
        "tasks": ["fill.task"], "keys": ["k1"], "rooms": [2], "now": 1_800_000_000.0,
        "queues": ["queue-0"]}, generic)
    for nodes in (ready, picked):
        scans = scans_of_jobs(nodes)
        assert scans and all(name == "conveyor_jobs_limit_key" for _, name in scans), scans
    assert any(n.get("Index Name") == "conveyor_limit_keys_ready" for n in ready), ready

