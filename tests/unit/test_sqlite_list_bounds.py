"""SQLite: a list filtered by any combination of queue, task, tenant and states costs what it
returns, not the rows it passes over (issue 16). Before migration 0030 a rare combination
walked the primary key, or the tenant's range of conveyor_jobs_tenant, testing every row in
id order until the page was full: at 1M jobs `queue=q7&task=bench.t3&tenant=org-17&
state=completed` read org-17's ~20,000 jobs for ~40 matches (220 ms). Now the counted keys
the filter selects are read from the kept counts and only their ranges of
conveyor_jobs_listed (sqlite/listing.py).

The cost is counted in SQLite's virtual machine steps (a progress handler on the store's
connection), with the same matching jobs among 600 and among 2,400 that do not match."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest

from conveyor.job import JobFilter, JobState, NewJob, new_id
from conveyor.store.sqlite.store import SQLiteStore

from .test_sqlite_plans import migrated, plan

RARE = {"queue": "rare", "task": "t.rare"}
QUEUED, SCHEDULED = (JobState.QUEUED,), (JobState.QUEUED, JobState.SCHEDULED)
COMBINATIONS = {
    "queue, task, tenant, state": JobFilter(queue="rare", task="t.rare", tenant="org-a",
                                            states=QUEUED),
    "queue, tenant, state": JobFilter(queue="rare", tenant="org-a", states=QUEUED),
    "task, tenant, two states": JobFilter(task="t.rare", tenant="org-a", states=SCHEDULED),
    "queue, task": JobFilter(queue="rare", task="t.rare"),
    "queue, task, two states": JobFilter(queue="rare", task="t.rare", states=SCHEDULED),
    "task, state": JobFilter(task="t.rare", states=QUEUED),
    "queue, tenant": JobFilter(queue="rare", tenant="org-a"),
    "a search's tasks, tenant": JobFilter(tasks=("t.rare", "t.none"), tenant="org-a"),
    "a search's queues, state": JobFilter(queues=("rare", "none"), states=QUEUED),
}


def jobs(dense: int) -> list[NewJob]:
    """`dense` jobs of org-a in the busy queue, and 8 rare ones of org-a spread among them."""
    made = []
    for i in range(dense + 8):
        rare = i % (dense // 8 + 1) == 0 and sum(j.queue == "rare" for j in made) < 8
        made.append(NewJob(id=new_id(), payload=b"{}", tenant="org-a",
                           **(RARE if rare else {"queue": "busy", "task": "t.busy"})))
    return made


def list_steps(path: Path, dense: int) -> dict[str, tuple[int, int]]:
    """Per combination: (jobs listed, VM steps / 100 of the list_jobs call)."""
    store = SQLiteStore(f"sqlite:///{path}")
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    async def run() -> dict[str, tuple[int, int]]:
        await store.migrate()
        await store.enqueue_many(jobs(dense))
        found = {}
        with store.db.read() as conn:
            conn.set_progress_handler(step, 100)
        for name, where in COMBINATIONS.items():
            steps[0] = 0
            listed = await store.list_jobs(where, limit=51)
            found[name] = (len(listed), steps[0])
        await store.close()
        return found

    return asyncio.run(run())


def test_a_rare_combination_costs_its_matches_not_the_rows_passed(tmp_path: Path) -> None:
    small = list_steps(tmp_path / "small.db", 600)
    large = list_steps(tmp_path / "large.db", 2400)
    for name in COMBINATIONS:
        assert small[name][0] == large[name][0] == 8, (name, small[name], large[name])
        # the walk: ~4x the steps for 4x the rows passed over; the keyed read: the same
        assert large[name][1] <= small[name][1] + 5, (name, small[name], large[name])


def keyed_plan(conn: sqlite3.Connection, where: JobFilter) -> list[str]:
    from conveyor.store.sqlite.listing import keyed_statement

    sql, params = keyed_statement(where, None, 51)
    return plan(conn, sql, params).split(" | ")


@pytest.mark.parametrize("fields", [c for n in range(5) for c in itertools.combinations(
    ("queue", "task", "tenant", "states"), n)], ids=lambda c: ",".join(c) or "none")
def test_the_keyed_read_searches_each_key_in_the_index_alone(tmp_path: Path,
                                                             fields: tuple[str, ...]) -> None:
    """Every combination: the counted keys from the counts (never the jobs), each key's
    range of conveyor_jobs_listed read in the index alone (COVERING), the page's ids sorted
    (a page of them: bounded by the matches), and the page's rows by the primary key."""
    values = {"queue": "q7", "task": "t3", "tenant": "org-17",
              "states": (JobState.COMPLETED, JobState.DEAD)}
    where = JobFilter(**{field: values[field] for field in fields})  # type: ignore[arg-type]
    conn = migrated(tmp_path / "keyed.db")
    try:
        steps = keyed_plan(conn, where)
        searched = [s for s in steps if "conveyor_jobs_listed" in s]
        key = "queue=? AND task=? AND state=?" + (" AND tenant=? AND id<?"
                                                  if "tenant" in fields else "")
        assert searched == [f"SEARCH listed USING COVERING INDEX conveyor_jobs_listed ({key})"
                            ], steps
        assert "SEARCH conveyor_jobs USING PRIMARY KEY (id=?)" in steps, steps
        counts = "conveyor_tenant_counts" if "tenant" in fields else "conveyor_counts"
        assert any(counts in s for s in steps), steps
        assert not any(s.startswith("SCAN conveyor_jobs") for s in steps), steps
    finally:
        conn.close()


def test_no_other_statement_takes_the_keyed_index(tmp_path: Path) -> None:
    """`queue <> ''` (its predicate) keeps the walks off conveyor_jobs_listed: a list that
    does not write it out is planned as before 0030."""
    from conveyor.store.sqlite.listing import list_statement

    conn = migrated(tmp_path / "walks.db")
    try:
        for where in COMBINATIONS.values():
            sql, params = list_statement(where, None, 51)
            found = plan(conn, sql, params)
            assert "conveyor_jobs_listed" not in found and "TEMP B-TREE" not in found, found
    finally:
        conn.close()


def running_store(path: Path) -> SQLiteStore:
    """A store with running jobs of several keys (the busy key's and rare ones, two tenants),
    finished and queued ones beside them."""
    store = SQLiteStore(f"sqlite:///{path}")

    async def fill() -> None:
        await store.migrate()
        await store.enqueue_many(jobs(200))
        await store.enqueue_many([NewJob(id=new_id(), payload=b"{}", tenant=tenant, **RARE)
                                  for tenant in ("org-b", None, "org-b", "org-a")])
        claimed = await store.claim(None, "w", 150, 60.0)
        from conveyor.store.base import Complete

        await store.settle([Complete(c.lease) for c in claimed[::3]])

    asyncio.run(fill())
    return store


def test_a_running_job_has_no_entry_in_the_keyed_index(tmp_path: Path) -> None:
    """Migration 0032: conveyor_jobs_listed holds every job but the running ones (a claim
    removes the job's entry, its settle writes one), as PostgreSQL's."""
    store = running_store(tmp_path / "entries.db")
    asyncio.run(store.close())
    conn = sqlite3.connect(tmp_path / "entries.db")
    try:
        # an index's entries: the cells of its every page (interior pages hold entries too)
        entries = conn.execute("SELECT sum(ncell) FROM dbstat "
                               "WHERE name = 'conveyor_jobs_listed'").fetchone()[0]
        running, every = conn.execute("SELECT count(*) FILTER (WHERE state = 'running'), "
                                      "count(*) FROM conveyor_jobs").fetchone()
        assert running == 100 and entries == every - running, (entries, running, every)
    finally:
        conn.close()


@pytest.mark.parametrize("states", [(), (JobState.RUNNING,), (JobState.RUNNING,
                                                              JobState.COMPLETED),
                                    (JobState.COMPLETED, JobState.QUEUED)],
                         ids=lambda s: ",".join(s) or "every")
def test_the_keyed_read_lists_the_running_jobs_as_the_walk_does(
        tmp_path: Path, states: tuple[JobState, ...]) -> None:
    """The running jobs, not in conveyor_jobs_listed, are read from their own index by the
    keyed read: every filter with them lists what the walk lists, page after page."""
    from conveyor.store.sqlite.listing import keyed_statement, list_statement

    store = running_store(tmp_path / "running.db")
    try:
        with store.db.read() as conn:
            for queue, task, tenant in itertools.product((None, "rare", "busy"),
                                                         (None, "t.rare"),
                                                         (None, "org-a", "org-b")):
                where = JobFilter(queue=queue, task=task, tenant=tenant, states=states)
                for after in (None, "0", "z"):
                    walked = [r[0] for r in conn.execute(*list_statement(where, after, 7))]
                    keyed = [r[0] for r in conn.execute(*keyed_statement(where, after, 7))]
                    assert keyed == walked, (where, after)
    finally:
        asyncio.run(store.close())
