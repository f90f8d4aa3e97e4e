"""EXPLAIN tests of the lists by queue and task without a tenant (issue 16, migration 0030):
a page of a state they rarely hold (any but running, which has its own index) is one walk of
conveyor_jobs_listed newest first that stops at the page's end (one state), or a read of that
index's few matching ranges (two states, jobs waiting to retry), never a walk of the primary
key past every row that does not match (~100,000-200,000 rows for a page at 1M jobs before
0030: bench/results/2026-12-07-jobs4f.md). 200,000 jobs, 20 queues x 10 tasks, 1 % each
dead, cancelled and scheduled, 2 % queued: 10 dead jobs per queue and task (1,000 jobs). (Jobs
waiting to retry may be read from their own index instead, conveyor_jobs_retrying: not pinned
here.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.job import JobFilter, JobState
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.reads import _where
from conveyor.store.postgres.store import PostgresStore

from .test_explain import explain, filled_schema, scans_of_jobs

pytestmark = pytest.mark.postgres

FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, payload, tenant, created_at,
                                    run_at, finished_at, attempt)
SELECT lpad(n::text, 12, '0'), 't' || ((n / 20) % 10), 'q' || (n % 20),
       CASE (n / 200) % 100 WHEN 1 THEN 'dead' WHEN 2 THEN 'cancelled' WHEN 3 THEN 'scheduled'
            WHEN 5 THEN 'queued' WHEN 15 THEN 'queued' ELSE 'completed' END,
       '\\x7b7d', CASE WHEN n % 3 = 0 THEN 'org-' || (n % 50) ELSE '' END,
       1700000000 + n, 1700000000 + n, 1700000000 + n,
       CASE WHEN (n / 200) % 100 = 1 THEN 3 ELSE 1 END
FROM generate_series(1, 200000) AS n"""
DEAD, DEAD_OR_CANCELLED = (JobState.DEAD,), (JobState.DEAD, JobState.CANCELLED)


@pytest.fixture(scope="module")
def keyed() -> Iterator[PostgresStore]:
    yield from filled_schema(FILL)


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("after", [None, "000000100000"], ids=["first page", "next page"])
@pytest.mark.parametrize("states", [DEAD, (JobState.CANCELLED,), DEAD_OR_CANCELLED,
                                    (JobState.SCHEDULED,), (JobState.QUEUED,)],
                         ids=["dead", "cancelled", "dead or cancelled", "scheduled", "queued"])
def test_a_rare_state_of_a_queue_and_task_reads_their_range(
        keyed: PostgresStore, states: tuple[JobState, ...], after: str | None,
        generic: bool) -> None:
    where_sql, params = _where(JobFilter(queue="q7", task="t3", states=states), after, 51)
    nodes = explain(keyed, f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}", params, generic)
    scans = scans_of_jobs(nodes)
    # the range walked newest first (many matches), or read whole by a bitmap and sorted (a
    # few, as here): either way bounded by the matches, not by the rows of the queue or task
    assert [n["Index Name"] for n in nodes if n.get("Index Name")] == [
        "conveyor_jobs_listed"], nodes  # (a bitmap heap scan's index is on its child node)
    assert all(kind != "Seq Scan" for kind, _ in scans), scans
