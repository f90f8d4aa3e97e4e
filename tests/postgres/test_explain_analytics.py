"""The analytics API's error-group reads on 100,000 dead jobs whose final attempts fall in 7
error groups (issue 15): a group's dead jobs (group_dead_jobs) are that group's failed
attempts by the errors index and each one's job probed by its key, never a scan of every
job; the pending rows it adds are a scan cut at PENDING_READ."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.store import history_sql as hq
from conveyor.store.history_reads import PENDING_READ
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_explain import explain, filled_schema, plan_nodes

pytestmark = pytest.mark.postgres

FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, tenant, state, payload, created_at,
                                    run_at, finished_at, attempt)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'q' || (n % 20), 'org-' || (n % 50),
       CASE WHEN n % 2 = 0 THEN 'dead' ELSE 'completed' END, '\\x7b7d',
       1700000000 + n, 1700000000 + n, 1700000000 + n, 1
FROM generate_series(1, 200000) AS n;
INSERT INTO {schema}.conveyor_attempts (job_id, attempt, task, queue, tenant, worker_id,
    host, pid, started_at, ended_at, duration, outcome, error_type, error_message,
    fingerprint, cpu, rss)
SELECT lpad(n::text, 12, '0'), 1, 'fill.task', 'q' || (n % 20), 'org-' || (n % 50), 'w',
       'h', 1, 1700000000 + n, 1700000000 + n, 0.05,
       CASE WHEN n % 2 = 0 THEN 'dead' ELSE 'completed' END,
       CASE WHEN n % 2 = 0 THEN 'ValueError' END, CASE WHEN n % 2 = 0 THEN 'boom' END,
       CASE WHEN n % 2 = 0 THEN 'fp' || (n % 7) END, 0.01, 1000
FROM generate_series(1, 200000) AS n"""


@pytest.fixture(scope="module")
def dead() -> Iterator[PostgresStore]:
    for store in filled_schema(FILL):
        with admin_connect() as conn:
            conn.execute(store.statement("ANALYZE {schema}.conveyor_attempts"))
        yield store


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
@pytest.mark.parametrize("template", ["GROUP_DEAD_JOBS"])
def test_a_groups_dead_jobs_are_read_from_the_group(
        dead: PostgresStore, generic: bool, tenant: str | None, template: str) -> None:
    nodes = explain(dead, getattr(hq, template), {
        "fingerprint": "fp3", "tenant": tenant, "limit": 10_000,
        "pending_limit": PENDING_READ}, generic)
    scans = {(n.get("Relation Name"), n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") or n.get("Index Name")}
    assert any(index == "conveyor_attempts_errors" for _, _, index in scans), scans
    assert not any(kind == "Seq Scan" for name, kind, _ in scans
                   if name in ("conveyor_jobs", "conveyor_attempts")), scans
    jobs = [n for n in nodes if n.get("Relation Name") == "conveyor_jobs"]
    # a probe of each attempt's job by its key
    assert jobs and all("Index" in n["Node Type"] and ".job_id)" in n["Index Cond"]
                        for n in jobs), [n.get("Index Cond") for n in jobs]
    limits = [n for n in nodes if n["Node Type"] == "Limit"]
    assert any(p.get("Relation Name") == "conveyor_attempts_pending"
               for n in limits for p in plan_nodes(n)), nodes
