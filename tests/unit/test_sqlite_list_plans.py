"""SQLite query plans of the job lists and the counts: every filter of /api/v1/jobs and the
dashboard's lists walks an index in id order and stops at the page's end (the primary key,
newest first, or an index of the few rows a rare filter selects), or searches a selective
index; none sorts a whole table's worth of rows. The counts read the counters, never the
jobs; the oldest queued job is a few probes of the claim index."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.job import JobFilter, JobState
from conveyor.store.sqlite import counters
from conveyor.store.sqlite import queries as q
from conveyor.store.sqlite.listing import list_where as _where

from .test_sqlite_plans import migrated, plan

FILTERS = {
    "none": JobFilter(),
    "queued": JobFilter(states=(JobState.QUEUED,)),
    "scheduled": JobFilter(states=(JobState.SCHEDULED,)),
    "running": JobFilter(states=(JobState.RUNNING,)),
    "completed": JobFilter(states=(JobState.COMPLETED,)),
    "dead": JobFilter(states=(JobState.DEAD,)),
    "cancelled": JobFilter(states=(JobState.CANCELLED,)),
    "several states": JobFilter(states=(JobState.QUEUED, JobState.RUNNING)),
    "queue": JobFilter(queue="emails"),
    "task": JobFilter(task="send"),
    "tenant": JobFilter(tenant="org-1"),
    "batch": JobFilter(batch_id="01a2-batch"),
    "task and state": JobFilter(task="send", states=(JobState.DEAD,)),
    "queue and state": JobFilter(queue="emails", states=(JobState.RUNNING,)),
    "every field": JobFilter(queue="emails", task="send", tenant="org-1",
                             states=(JobState.COMPLETED,)),
}
# filters on a field that an index finds by equality: a few rows, sorted after
SEARCHED = {
    "correlation id": (JobFilter(correlation_id="req-42"), "conveyor_jobs_correlation"),
    "retrying": (JobFilter(retrying=True), "conveyor_jobs_retrying"),
    "retrying or queued": (JobFilter(states=(JobState.QUEUED,), retrying=True), None),
}


def list_plan(conn: object, where: JobFilter, after: str | None = None) -> list[str]:
    where_sql, params = _where(where, after, 51)
    return plan(conn, f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}",  # type: ignore[arg-type]
                params).split(" | ")


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("after", [None, "01a2-cursor"], ids=["first page", "next page"])
def test_each_list_filter_walks_in_id_order(tmp_path: Path, name: str,
                                            after: str | None) -> None:
    conn = migrated(tmp_path / "lists.db")
    try:
        steps = list_plan(conn, FILTERS[name], after)
        walk = steps[0]
        assert walk.startswith(("SCAN conveyor_jobs", "SEARCH conveyor_jobs")), steps
        # the primary key newest first (a WITHOUT ROWID table is its primary key), or an
        # index whose order is the id's: never a sort of what the filter matched
        assert not any("TEMP B-TREE" in step for step in steps), steps
    finally:
        conn.close()


@pytest.mark.parametrize("name", list(SEARCHED))
def test_a_selective_filter_searches_its_index(tmp_path: Path, name: str) -> None:
    conn = migrated(tmp_path / "lists.db")
    try:
        where, index = SEARCHED[name]
        steps = list_plan(conn, where)
        if index is not None:
            assert any(index in step for step in steps), steps
        assert not any(step == "SCAN conveyor_jobs USING INDEX conveyor_jobs_scheduled"
                       for step in steps), steps
    finally:
        conn.close()


def test_counts_read_the_counters_and_never_the_jobs(tmp_path: Path) -> None:
    conn = migrated(tmp_path / "counts.db")
    try:
        for sql, params in ((counters.KEPT_ALL, {}), (counters.KEPT_TENANT, {"tenant": "t"}),
                            (counters.KEPT_MATCHING_ALL, {"queue": None, "task": None,
                                                          "states": '["dead"]'}),
                            (counters.FINISHED_ALL, {"since": 1}),
                            (counters.FINISHED_TENANT, {"tenant": "t", "since": 1})):
            found = plan(conn, sql, params)
            assert "conveyor_jobs" not in found.replace("conveyor_jobs_", ""), found
        for sql in (counters.KEPT_TENANT, counters.FINISHED_TENANT):  # the tenant's own range
            assert "SEARCH" in plan(conn, sql, {"tenant": "t", "since": 1}), sql
        oldest = plan(conn, counters.OLDEST_QUEUED, {"queue": "emails", "tenant": None})
        assert "conveyor_jobs_claim" in oldest, oldest
        assert "SCAN conveyor_jobs |" not in oldest + " |", oldest
    finally:
        conn.close()
