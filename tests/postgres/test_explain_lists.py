"""EXPLAIN tests of the job lists and the counts (200,000 rows, most of them finished): every
filter of /api/v1/jobs and the dashboard's lists reads an index, never the whole table (the
primary key backwards, newest first, stopping at the page's end; or the index of the few rows
a filter selects; a batch's jobs: test_batches.py). The counts read the counters, never the
jobs; the oldest queued job is a few probes of the claim index."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.job import JobFilter, JobState
from conveyor.store.postgres import counters
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.reads import _where
from conveyor.store.postgres.store import PostgresStore

from .test_explain import explain, filled, scans_of_jobs  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.postgres

# the running rows' own partial indexes (migration 0020 dropped a third, by id, that every
# claim wrote; 0024 put one by queue in place of the lease index): a page of them reads the
# few running rows, never the finished ones (here, 200 of them: read whole, by a bitmap or
# not; at scale one queue's page is a walk of its range, test_explain_running.py)
RUNNING = ("conveyor_jobs_running", "conveyor_jobs_running_queue")
FILTERS: dict[str, tuple[JobFilter, str | tuple[str, ...] | None]] = {
    "none": (JobFilter(), None),
    "queued": (JobFilter(states=(JobState.QUEUED,)), None),
    "scheduled": (JobFilter(states=(JobState.SCHEDULED,)), None),
    "retrying": (JobFilter(retrying=True), "conveyor_jobs_retrying"),
    "running": (JobFilter(states=(JobState.RUNNING,)), RUNNING),
    "completed": (JobFilter(states=(JobState.COMPLETED,)), None),
    "dead": (JobFilter(states=(JobState.DEAD,)), None),
    "cancelled": (JobFilter(states=(JobState.CANCELLED,)), None),
    "several states": (JobFilter(states=(JobState.QUEUED, JobState.RUNNING)), None),
    "queue": (JobFilter(queue="queue-3"), None),
    "task": (JobFilter(task="fill.task"), None),
    "tenant": (JobFilter(tenant="org-1"), "conveyor_jobs_tenant"),
    "correlation id": (JobFilter(correlation_id="req-42"), "conveyor_jobs_correlation"),
    "task and state": (JobFilter(task="fill.task", states=(JobState.DEAD,)), None),
    "queue and state": (JobFilter(queue="queue-3", states=(JobState.RUNNING,)),
                        RUNNING),
    "task and running": (JobFilter(task="fill.task", states=(JobState.RUNNING,)),
                         RUNNING),
    "every field": (JobFilter(queue="queue-3", task="fill.task", tenant="org-1",
                              states=(JobState.COMPLETED,)), "conveyor_jobs_tenant_fields"),
}


def indexes_read(nodes: list[dict[str, Any]]) -> list[str]:
    """Every index a plan reads (a bitmap heap scan's index is on its child node)."""
    return [n["Index Name"] for n in nodes if n.get("Index Name")]


def list_plan(store: PostgresStore, where: JobFilter, after: str | None,
              generic: bool) -> list[dict[str, Any]]:
    where_sql, params = _where(where, after, 51)
    return explain(store, f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}", params, generic)


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("after", [None, "000000100000"], ids=["first page", "next page"])
def test_each_list_filter_reads_an_index(filled: PostgresStore, name: str,  # noqa: F811
                                         after: str | None) -> None:
    where, index = FILTERS[name]
    nodes = list_plan(filled, where, after, False)
    scans = scans_of_jobs(nodes)
    assert scans and all(kind != "Seq Scan" for kind, _ in scans), scans
    if index is not None:
        assert any(found in (index if isinstance(index, tuple) else (index,))
                   for found in indexes_read(nodes)), nodes


@pytest.mark.parametrize("name", ["none", "queued", "running", "dead", "queue", "retrying",
                                  "queue and state", "every field"])
def test_a_prepared_list_reads_an_index_too(filled: PostgresStore, name: str  # noqa: F811
                                            ) -> None:
    where, index = FILTERS[name]
    nodes = list_plan(filled, where, None, True)
    scans = scans_of_jobs(nodes)
    assert scans and all(kind != "Seq Scan" for kind, _ in scans), scans
    # the state is a literal in the statement (filters.states_clause), so even a generic
    # plan proves a partial index's predicate
    if index is not None:
        assert any(found in (index if isinstance(index, tuple) else (index,))
                   for found in indexes_read(nodes)), nodes


def test_counts_read_the_counters_and_never_the_jobs(filled: PostgresStore  # noqa: F811
                                                     ) -> None:
    matching = {"queue": None, "task": None, "states": ["dead"], "tenant": "t"}
    for template, params in ((counters.KEPT_ALL, {}), (counters.KEPT_TENANT, {"tenant": "t"}),
                             (counters.KEPT_MATCHING_ALL, matching),
                             (counters.KEPT_MATCHING_TENANT, matching),
                             (counters.FINISHED_ALL, {"window": 3600, "now": None}),
                             (counters.FINISHED_TENANT, {"tenant": "t", "window": 3600,
                                                         "now": None})):
        nodes = explain(filled, template, params)
        assert scans_of_jobs(nodes) == [], template
        assert {n.get("Relation Name") for n in nodes} - {None} <= {
            "conveyor_counts", "conveyor_tenant_counts", "conveyor_count_deltas",
            "conveyor_finished", "conveyor_tenant_finished", "conveyor_finished_deltas"}
    scans = scans_of_jobs(explain(filled, counters.OLDEST_QUEUED_ALL, {"tenant": None}))
    assert scans and all(name == "conveyor_jobs_claim_queue" for _, name in scans), scans


@pytest.mark.parametrize("name", ["none", "running", "dead", "queue and state", "tenant"])
def test_a_page_with_a_byte_budget_is_one_bounded_walk(filled: PostgresStore,  # noqa: F811
                                                       name: str) -> None:
    """list_jobs(budget=...): the running sum rides the same index walk, which stops at the
    page's LIMIT (the sum streams: no sort, no scan of every match first)."""
    where, index = FILTERS[name]
    where_sql, params = _where(where, None, 51)
    nodes = explain(filled, q.LIST_BUDGETED.replace("{where}", where_sql),
                    {**params, "budget": 2 * 1024 * 1024})
    scans = scans_of_jobs(nodes)
    assert scans and all(kind != "Seq Scan" for kind, _ in scans), scans
    if index is not None:
        assert any(found in (index if isinstance(index, tuple) else (index,))
                   for found in indexes_read(nodes)), nodes
    kinds = [n["Node Type"] for n in nodes]
    assert "WindowAgg" in kinds and "Limit" in kinds, kinds
    # the limit sits above the window, which streams along the scan: a walk that stops
    assert kinds.index("Limit") < kinds.index("WindowAgg"), kinds
    # (this table has no dead rows: the planner may sort none of them; the running rows are
    # read whole from their partial index and sorted: the few jobs workers hold, since 0020)
    if name not in ("dead", "running", "queue and state"):
        assert "Sort" not in kinds, kinds


def test_dead_letters_with_a_byte_budget_walk_the_dead_rows(filled: PostgresStore  # noqa: F811
                                                            ) -> None:
    nodes = explain(filled, q.DEAD_LETTERS_BUDGETED, {"queue": None, "tenant": None,
                                                      "after": None, "limit": 51,
                                                      "budget": 2 * 1024 * 1024})
    assert [index for _, index in scans_of_jobs(nodes)] == ["conveyor_jobs_dead"], nodes
