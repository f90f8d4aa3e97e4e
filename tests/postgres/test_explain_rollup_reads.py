"""The analytics reads of 0028 on rollups of many tenants (issue 15, issue 16): one tenant's
task rollups and worker hours are read from the tenant's index, every tenant's worker hours
from conveyor_worker_rollups_all, a queue's error groups over a day or more from the
queue's index; never the range's rows of every tenant walked in the key and filtered, nor a
(parallel) scan of every rollup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.history.records import TimeRange
from conveyor.store import history_sql as hq
from conveyor.store.history_reads import PENDING_READ, _points
from conveyor.store.postgres.store import PostgresStore

from .test_explain import explain, filled_schema

pytestmark = pytest.mark.postgres

DAY0 = 1_700_000_000 // 86400  # the fill's first day
FILL = f"""
INSERT INTO {{schema}}.conveyor_rollups (width, minute, task, queue, tenant, completed)
SELECT 86400, ({DAY0} + d) * 1440, 't' || t, 'q' || q, 'org-' || n, 1
FROM generate_series(0, 59) AS d, generate_series(0, 3) AS t, generate_series(0, 4) AS q,
     generate_series(0, 49) AS n;
INSERT INTO {{schema}}.conveyor_worker_rollups (hour, worker_id, tenant, attempts)
SELECT {DAY0 * 24} + h, 'w' || w, 'org-' || n, 1
FROM generate_series(0, 1439) AS h, generate_series(0, 3) AS w, generate_series(0, 29) AS n;
INSERT INTO {{schema}}.conveyor_worker_rollups_all (hour, worker_id, attempts)
SELECT hour, worker_id, sum(attempts) FROM {{schema}}.conveyor_worker_rollups GROUP BY 1, 2;
INSERT INTO {{schema}}.conveyor_error_rollups (width, minute, fingerprint, task, queue, tenant,
                                               failures, first_seen, last_seen)
SELECT 86400, ({DAY0} + d) * 1440, 'f' || f, 't0', 'q' || q, 'org-' || n, 1, 0, 0
FROM generate_series(0, 59) AS d, generate_series(0, 2) AS f, generate_series(0, 19) AS q,
     generate_series(0, 19) AS n;
ANALYZE {{schema}}.conveyor_rollups;
ANALYZE {{schema}}.conveyor_worker_rollups;
ANALYZE {{schema}}.conveyor_worker_rollups_all;
ANALYZE {{schema}}.conveyor_error_rollups"""
END = (DAY0 + 50) * 86400.0


@pytest.fixture(scope="module")
def rollups() -> Iterator[PostgresStore]:
    yield from filled_schema(FILL)


def scans(nodes: list[dict[str, object]]) -> set[tuple[object, object, object]]:
    return {(n.get("Relation Name"), n["Node Type"], n.get("Index Name")) for n in nodes
            if n.get("Relation Name") or n.get("Index Name")}


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("scope", [{}, {"task": "t1"}, {"queue": "q2"}],
                         ids=["all", "task", "queue"])
def test_a_tenants_task_rollups_are_read_from_the_tenants_index(
        rollups: PostgresStore, generic: bool, scope: dict[str, str]) -> None:
    """task_analytics of one tenant over 30 days (day rollups): conveyor_rollups_tenant
    (0028), not the key's range of every tenant (tasks 30d of one tenant at 1.09M attempts:
    5,956 rows of 310,000 walked, 191 ms p95)."""
    from conveyor.store.postgres.history import PostgresHistory

    params, _ = _points(TimeRange(END - 30 * 86400, END, tenant="org-7", **scope), 30)
    found = scans(explain(rollups, PostgresHistory._task_rollups[0], params, generic))
    used = {index for table, _, index in found if index is not None}
    assert "conveyor_rollups_tenant" in used, found
    assert "conveyor_rollups_pkey" not in used, found
    assert ("conveyor_rollups", "Seq Scan", None) not in found, found


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("tenant", [None, "org-7"], ids=["all", "tenant"])
def test_worker_hours_read_the_tenants_rows_or_every_tenants_sums(
        rollups: PostgresStore, generic: bool, tenant: str | None) -> None:
    """worker_analytics over 30 days: one tenant's hours by conveyor_worker_rollups_tenant;
    every tenant's from conveyor_worker_rollups_all (a row per hour and worker), never the
    worker rollups of every tenant (at 1.09M attempts: a seq scan of 144,107 rows)."""
    first = int(END // 3600) - 720
    nodes = explain(rollups, hq.WORKER_HOURS_TENANT if tenant else hq.WORKER_HOURS_ALL, {
        "first_hour": first, "end_hour": first + 720, "tenant": tenant,
        "pending_limit": PENDING_READ}, generic)
    found = scans(nodes)
    tables = {table for table, _, _ in found}
    if tenant is None:
        assert "conveyor_worker_rollups_all" in tables, found
        assert "conveyor_worker_rollups" not in tables, found
    else:
        assert any(index == "conveyor_worker_rollups_tenant" for _, _, index in found), found
        assert ("conveyor_worker_rollups", "Seq Scan", None) not in found, found


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_a_queues_error_groups_are_read_from_the_queues_index(
        rollups: PostgresStore, generic: bool) -> None:
    """error_groups of a queue over 30 days, every tenant: conveyor_error_rollups_queue
    (0028), not a (parallel) seq scan of every error rollup (errors 30d of a queue at 1.09M
    attempts: 96 ms p95)."""
    start = END - 30 * 86400
    nodes = explain(rollups, hq.ERROR_GROUP_ROLLUPS_QUEUE, {
        "start": start, "end": END, "tenant": None, "task": None, "queue": "q3",
        "pending_limit": PENDING_READ, "width": 86400,
        "first_minute": int(start // 86400) * 1440, "end_minute": int(END // 60),
        "pending_end": END}, generic)
    found = scans(nodes)
    assert any(index == "conveyor_error_rollups_queue" for _, _, index in found), found
    assert ("conveyor_error_rollups", "Seq Scan", None) not in found, found
