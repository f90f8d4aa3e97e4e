"""EXPLAIN tests of the stats' durations on 200,000 jobs of 50 tenants, most of them
finished a second apart: the percentiles are computed from a bounded read (the finished
jobs' index newest first, cut at the hour before now and at 5,000 rows; or, for a tenant,
one of the tenant's index ranges), never from a scan of every job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.store.postgres import queries as q
from conveyor.store.postgres.store import PostgresStore

from .test_explain import explain, filled_schema, scans_of_jobs

pytestmark = pytest.mark.postgres

FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, tenant, state, payload, created_at,
                                    run_at, started_at, finished_at, priority)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'queue-' || (n % 7), 'org-' || (n % 50),
       CASE WHEN n % 100 = 0 THEN 'queued' WHEN n % 100 = 1 THEN 'dead' ELSE 'completed' END,
       '\\x7b7d', 1700000000 + n, 1700000000 + n,
       CASE WHEN n % 100 > 0 THEN 1700000000 + n - (n % 5) END,
       CASE WHEN n % 100 > 0 THEN 1700000000 + n END, 0
FROM generate_series(1, 200000) AS n"""

NOW = 1_700_200_000.0  # the last job finished then: the hour before holds 3,600 jobs


@pytest.fixture(scope="module")
def tenants() -> Iterator[PostgresStore]:
    yield from filled_schema(FILL)


def _scan(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    [scan] = [n for n in nodes if n.get("Relation Name") == "conveyor_jobs"]
    return scan


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_everyones_durations_walk_the_finished_index_newest_first(
    tenants: PostgresStore, generic: bool
) -> None:
    nodes = explain(tenants, q.DURATION_PERCENTILES, {"now": NOW, "tenant": None}, generic)
    assert scans_of_jobs(nodes) == [("Index Scan", "conveyor_jobs_finished")], nodes
    scan = _scan(nodes)
    assert scan["Scan Direction"] == "Backward"
    assert "finished_at >" in scan["Index Cond"]  # cut at the hour, not filtered after
    [limit] = [n for n in nodes if n["Node Type"] == "Limit"]
    assert limit["Plan Rows"] <= 5000


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_a_tenants_durations_read_an_index_range(tenants: PostgresStore, generic: bool) -> None:
    nodes = explain(tenants, q.DURATION_PERCENTILES, {"now": NOW, "tenant": "org-7"}, generic)
    scans = scans_of_jobs(nodes)
    assert scans and all(kind != "Seq Scan" for kind, _ in scans), scans
    assert "Index Cond" in _scan(nodes), _scan(nodes)
