"""The analytics API's error-group reads on 100,000 dead jobs in 7 error groups (issue 15):
a group's dead jobs (group_dead_jobs) are read from the partial index of the jobs that died
in a group (migration 0022), never a scan of every job or of the attempts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.store import dead_groups as dg
from conveyor.store import history_sql as hq
from conveyor.store.history_reads import PENDING_READ
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_explain import explain, filled_schema

pytestmark = pytest.mark.postgres

FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, tenant, state, payload, created_at,
                                    run_at, finished_at, attempt, dead_fingerprint)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'q' || (n % 20), 'org-' || (n % 50),
       CASE WHEN n % 2 = 0 THEN 'dead' ELSE 'completed' END, '\\x7b7d',
       1700000000 + n, 1700000000 + n, 1700000000 + n, 1,
       CASE WHEN n % 2 = 0 THEN 'fp' || (n % 7) END
FROM generate_series(1, 200000) AS n;
INSERT INTO {schema}.conveyor_attempts (job_id, attempt, task, queue, tenant, worker_id,
    host, pid, started_at, ended_at, duration, outcome, error_type, error_message,
    fingerprint, cpu, rss)
SELECT lpad(n::text, 12, '0'), 1, 'fill.task', 'q' || (n % 20), 'org-' || (n % 50), 'w',
       'h', 1, 1700000000 + n, 1700000000 + n, 0.05,
       CASE WHEN n % 2 = 0 THEN 'dead' ELSE 'completed' END,
       CASE WHEN n % 2 = 0 THEN 'ValueError' END, CASE WHEN n % 2 = 0 THEN 'boom' END,
       CASE WHEN n % 2 = 0 THEN 'fp' || (n % 7) END, 0.01, 1000
FROM generate_series(1, 200000) AS n;
INSERT INTO {schema}.conveyor_slow_tops (tenant, part, duration, ended_at)
SELECT DISTINCT ON (1, 2) tenant, floor(ended_at / 600)::int8, duration, ended_at
FROM {schema}.conveyor_attempts ORDER BY 1, 2, duration DESC, ended_at DESC;
INSERT INTO {schema}.conveyor_slow_tops_all (part, duration, ended_at)
SELECT DISTINCT ON (part) part, duration, ended_at FROM {schema}.conveyor_slow_tops
ORDER BY part, duration DESC, ended_at DESC;
INSERT INTO {schema}.conveyor_slow_tops_named (kind, name, tenant, part, duration, ended_at)
SELECT DISTINCT ON (1, 2, 3, 4) * FROM (
    SELECT 'task', task, tenant, floor(ended_at / 600)::int8, duration, ended_at
    FROM {schema}.conveyor_attempts UNION ALL
    SELECT 'queue', queue, tenant, floor(ended_at / 600)::int8, duration, ended_at
    FROM {schema}.conveyor_attempts) AS n ORDER BY 1, 2, 3, 4, 5 DESC, 6 DESC;
INSERT INTO {schema}.conveyor_slow_tops_named_all (kind, name, part, duration, ended_at)
SELECT DISTINCT ON (kind, name, part) kind, name, part, duration, ended_at
FROM {schema}.conveyor_slow_tops_named ORDER BY kind, name, part, duration DESC, ended_at DESC"""


@pytest.fixture(scope="module")
def dead() -> Iterator[PostgresStore]:
    for store in filled_schema(FILL):
        with admin_connect() as conn:
            conn.execute(store.statement("ANALYZE {schema}.conveyor_attempts"))
        yield store


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
def test_a_groups_dead_jobs_are_read_from_the_group(
        dead: PostgresStore, generic: bool, tenant: str | None) -> None:
    """A page (0023) of every tenant's from conveyor_jobs_dead_groups, walked in id order
    from the page's first id (no sort, not the primary key's walk filtered); of one
    tenant's from conveyor_jobs_dead_tenants."""
    nodes = explain(dead, dg.GROUP_DEAD_JOBS if tenant is None else dg.TENANT_GROUP_DEAD_JOBS,
                    {"fingerprint": "fp3", "tenant": tenant, "limit": dg.PAGE,
                     "after": "000000001000"}, generic)
    scans = {(n.get("Relation Name"), n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") or n.get("Index Name")}
    index = "conveyor_jobs_dead_groups" if tenant is None else "conveyor_jobs_dead_tenants"
    assert any(name == index for _, _, name in scans), scans
    assert not any(kind == "Seq Scan" for _, kind, _ in scans), scans
    if tenant is None:  # a tenant's may sort its rows of the group: bounded by those
        assert not any(n["Node Type"] == "Sort" for n in nodes), nodes


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
def test_an_hours_error_groups_read_the_hours_failed_attempts(
        dead: PostgresStore, generic: bool, tenant: str | None) -> None:
    """ERROR_GROUPS (an hour): a range of the partial ended index of failed attempts
    (0023), not a (parallel) seq scan of every attempt (errors 1h at 1M jobs: 189/301 ms)."""
    start = 1_700_100_000.0
    nodes = explain(dead, hq.ERROR_GROUPS, {
        "start": start, "end": start + 3600, "tenant": tenant, "task": None, "queue": None,
        "pending_limit": PENDING_READ}, generic)
    scans = {(n.get("Relation Name"), n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") or n.get("Index Name")}
    assert any(name == "conveyor_attempts_failed_ended" for _, _, name in scans), scans
    assert ("conveyor_attempts", "Seq Scan", None) not in scans, scans


@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
def test_dead_counts_never_read_the_jobs(dead: PostgresStore, tenant: str | None) -> None:
    nodes = explain(dead, dg.DEAD_GROUP_COUNTS, {"tenant": tenant}, False)
    assert {n.get("Relation Name") for n in nodes} - {None} == {"conveyor_dead_groups"}


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
@pytest.mark.parametrize("hours", [1, 24, 720], ids=["1h", "24h", "30d"])
def test_the_slow_read_walks_the_10_minute_index_by_part(
        dead: PostgresStore, generic: bool, tenant: str | None, hours: int) -> None:
    """slow_attempts (0025): per 10-minute part of the range (within the stored attempts'
    first and last parts: two ends of the ended index) a LATERAL step down
    conveyor_attempts_slow_10min for the part's slowest, then a LATERAL walk from the top
    of the parts that reach the cut (index scans, backward, stopped at the limit); never a
    scan of every attempt, nor a sort of a part's rows: only the parts' tops (the cut) and
    the merge are sorted. And no index of the attempts leads with the duration: a fold's
    insert no longer lands on a random leaf of one."""
    from conveyor.store.postgres.history import PostgresHistory

    end = 1_700_100_000.0
    start = end - 3600 * hours
    nodes = explain(dead, PostgresHistory._slow[tenant is None], {
        "start": start, "end": end, "tenant": tenant, "task": None, "queue": None,
        "pending_limit": PENDING_READ, "limit": 20, "first_part": int(start // hq.SLOW_PART),
        "last_part": int(end // hq.SLOW_PART)}, generic)
    scans = {(n.get("Relation Name"), n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") == "conveyor_attempts"}
    index = "conveyor_attempts_slow_10min"
    walks = [n for n in nodes if n.get("Index Name") == index]
    # the parts' tops and walks; and the two ends of the ended index (the stored parts)
    assert scans - {("conveyor_attempts", "Index Only Scan", index)} == {
        ("conveyor_attempts", "Index Scan", index),
        ("conveyor_attempts", "Index Only Scan", "conveyor_attempts_ended")}, scans
    assert len(walks) == 2 and all(n["Scan Direction"] == "Backward" for n in walks), walks
    # one tenant's entries picked in the index (its last column), not by a row fetched each
    assert tenant is None or all("tenant = " in n["Index Cond"] for n in walks), walks
    sorts = [n for n in nodes if n["Node Type"] == "Sort"]
    assert len(sorts) == 3, sorts  # the parts' tops for the cut (two columns), the merge
    with admin_connect() as conn:
        leading = {row[0] for row in conn.execute(
            "SELECT a.attname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid "
            "JOIN pg_namespace AS s ON s.oid = c.relnamespace LEFT JOIN pg_attribute AS a "
            "ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
            "WHERE c.relname = 'conveyor_attempts' AND s.nspname = %s",
            (dead.statement("{schema}").strip('"'),))}
    assert "duration" not in leading, leading


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
@pytest.mark.parametrize("hours", [1, 24, 720], ids=["1h", "24h", "30d"])
def test_the_slow_read_starts_from_the_kept_tops(
        dead: PostgresStore, generic: bool, tenant: str | None, hours: int) -> None:
    """slow_attempts with no task or queue filter (0026): the parts' tops of the parts wholly
    in range read from the tops the fold kept (of every tenant, or the tenant's), the
    10-minute index stepped for the first and last parts and walked for the parts that
    reach the cut (backward); never a scan of every attempt."""
    from conveyor.store.postgres.history import PostgresHistory

    end = 1_700_100_000.0
    start = end - 3600 * hours
    nodes = explain(dead, PostgresHistory._slow[2 + (tenant is None)], {
        "start": start, "end": end, "tenant": tenant, "task": None, "queue": None,
        "pending_limit": PENDING_READ, "limit": 20, "first_part": int(start // hq.SLOW_PART),
        "last_part": int(end // hq.SLOW_PART)}, generic)
    relations = {n.get("Relation Name") for n in nodes} - {None}
    kept = "conveyor_slow_tops_all" if tenant is None else "conveyor_slow_tops"
    assert kept in relations, relations
    scans = {(n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") == "conveyor_attempts"}
    index = "conveyor_attempts_slow_10min"
    assert {kind for kind, name in scans if name != index} <= {"Index Only Scan"}, scans
    walks = [n for n in nodes if n.get("Index Name") == index]
    assert walks and all(n["Scan Direction"] == "Backward" for n in walks), walks
    assert tenant is None or all("tenant = " in n["Index Cond"] for n in walks), walks


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("filter", ["task", "queue"])
@pytest.mark.parametrize("tenant", [None, "org-8"], ids=["all", "tenant"])
@pytest.mark.parametrize("hours", [24, 720], ids=["24h", "30d"])
def test_a_task_or_queue_slow_read_starts_from_the_tops_kept_of_it(
        dead: PostgresStore, generic: bool, filter: str, tenant: str | None,
        hours: int) -> None:
    """slow_attempts of a task or a queue (0027): the parts' tops of the parts wholly in
    range read from the tops the fold kept of that task or queue (of every tenant, or the
    tenant's), the 10-minute index stepped for the first and last parts and walked for the
    parts that reach the cut (backward); never a scan of every attempt. (Before 0027 such
    a read stepped every part.)"""
    from conveyor.store.postgres.history import PostgresHistory

    end = 1_700_100_000.0
    start = end - 3600 * hours
    params = {"start": start, "end": end, "tenant": tenant, "task": None, "queue": None,
              "pending_limit": PENDING_READ, "limit": 20,
              "first_part": int(start // hq.SLOW_PART), "last_part": int(end // hq.SLOW_PART)}
    params[filter] = "fill.task" if filter == "task" else "q3"
    statement = PostgresHistory.__new__(PostgresHistory)._slow_statement(params)
    nodes = explain(dead, statement, params, generic)
    relations = {n.get("Relation Name") for n in nodes} - {None}
    kept = "conveyor_slow_tops_named_all" if tenant is None else "conveyor_slow_tops_named"
    assert kept in relations, relations
    assert {"conveyor_slow_tops", "conveyor_slow_tops_all"}.isdisjoint(relations), relations
    kept_scans = [n for n in nodes if n.get("Relation Name") == kept]
    assert all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in kept_scans), (
        kept_scans)
    scans = {(n["Node Type"], n.get("Index Name")) for n in nodes
             if n.get("Relation Name") == "conveyor_attempts"}
    index = "conveyor_attempts_slow_10min"
    assert {kind for kind, name in scans if name != index} <= {"Index Only Scan"}, scans
    walks = [n for n in nodes if n.get("Index Name") == index]
    assert walks and all(n["Scan Direction"] == "Backward" for n in walks), walks
