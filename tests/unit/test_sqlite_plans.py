"""SQLite query plans: finding a job by the start or end of its id searches an index (the
primary key, conveyor_jobs_id_tail), never the whole table."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from conveyor.store.sqlite import keys
from conveyor.store.sqlite import queries as q
from conveyor.store.sqlite.store import SQLiteStore


def plan(conn: sqlite3.Connection, sql: str, params: dict[str, object]) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def migrated(path: Path) -> sqlite3.Connection:
    """A connection to a new store at `path`, migrated to the newest schema."""
    store = SQLiteStore(f"sqlite:///{path}")

    async def migrate() -> None:
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())
    return sqlite3.connect(path)


def test_find_by_prefix_and_suffix_use_indexes(tmp_path: Path) -> None:
    conn = migrated(tmp_path / "plans.db")
    try:
        conn.execute("ANALYZE")
        prefix = plan(conn, q.FIND_BY_PREFIX, {"low": "01a2", "high": "01a3", "tenant": None,
                                               "limit": 5})
        assert "USING PRIMARY KEY" in prefix, prefix
        suffix = plan(conn, q.FIND_BY_SUFFIX, {"low": "dcba", "high": "dcbb",
                                               "fragment": "abcd", "tenant": None,
                                               "limit": 5})
        assert "conveyor_jobs_id_tail" in suffix, suffix
        for found in (prefix, suffix):  # a SEARCH of an index, never a SCAN of the table
            assert not any(step.startswith("SCAN") for step in found.split(" | ")), found
    finally:
        conn.close()


def test_dead_letters_search_the_index_of_dead_rows(tmp_path: Path) -> None:
    conn = migrated(tmp_path / "dead.db")
    try:
        for sql, params in ((q.DEAD_LETTERS, {"queue": None, "tenant": None, "after": None,
                                              "limit": 51}),):
            found = plan(conn, sql, params)
            assert "conveyor_jobs_dead" in found, found
            # a walk of the dead rows' index, newest first, that stops at the page's end:
            # never a scan of the table
            assert all("conveyor_jobs_dead" in step for step in found.split(" | ")
                       if step.startswith("SCAN")), found
    finally:
        conn.close()


def _list_sql(where: object, after: str | None = None) -> tuple[str, dict[str, object]]:
    from conveyor.store.sqlite.listing import list_where as _where

    where_sql, params = _where(where, after, 200)  # type: ignore[arg-type]
    return f"{q.LIST_SELECT}{where_sql} {q.LIST_ORDER}", params


def test_search_candidates_are_bounded_walks_newest_first(tmp_path: Path) -> None:
    """The pages a search reads (search.py): jobs that failed from their own index, and
    several tasks or queues by walking the primary key from the newest id; each stops at
    its LIMIT (no sort of every match first)."""
    from conveyor.job import JobFilter

    conn = migrated(tmp_path / "search.db")
    try:
        conn.execute("ANALYZE")
        errored = plan(conn, *_list_sql(JobFilter(with_errors=True), after="01b"))
        assert errored == "SEARCH conveyor_jobs USING INDEX conveyor_jobs_errored (id<?)", \
            errored
        # a tenant's: either partial index, each a walk newest first (no sort)
        errored = plan(conn, *_list_sql(JobFilter(with_errors=True, tenant="a"), after="01b"))
        assert errored in ("SEARCH conveyor_jobs USING INDEX conveyor_jobs_errored (id<?)",
                           "SEARCH conveyor_jobs USING INDEX conveyor_jobs_tenant "
                           "(tenant=? AND id<?)"), errored
        for where in (JobFilter(tasks=("a", "b")), JobFilter(queues=("q1", "q2"), tasks=("a",))):
            found = plan(conn, *_list_sql(where)).split(" | ")
            # the table in key order (newest first), the names as a list looked up per row
            assert found[0] == "SCAN conveyor_jobs", found
            assert not any("TEMP B-TREE" in step for step in found), found
    finally:
        conn.close()


def test_name_catalogue_reads_are_bounded(tmp_path: Path) -> None:
    from conveyor.store.sqlite import catalog

    conn = migrated(tmp_path / "names.db")
    try:
        conn.execute("ANALYZE")
        params = {"tenant": "org-1", "since": 1, "recent": 1000}
        rolled = plan(conn, catalog.ROLLED_NAMES, params)
        assert "SEARCH conveyor_rollups USING PRIMARY KEY (width=? AND minute>?)" in rolled, \
            rolled
        recent = plan(conn, catalog.RECENT_TENANT_NAMES, params)
        assert "conveyor_jobs_tenant" in recent and "TEMP B-TREE FOR ORDER BY" not in recent, \
            recent
        every = plan(conn, catalog.RECENT_NAMES, params)
        assert "TEMP B-TREE FOR ORDER BY" not in every, every  # the newest 1,000 by the key
    finally:
        conn.close()


def test_a_keyed_claim_reads_only_the_keys_it_picked(tmp_path: Path) -> None:
    """Per-key limits: ready keys from their partial index (parked ones are not in it), a
    key's counts and next jobs from the index of keyed jobs, never a scan of the jobs."""
    conn = migrated(tmp_path / "keys.db")
    try:
        ready = plan(conn, keys.READY_KEYS, {"task": "t", "now": 1.0, "probe": 11, "keys": 32,
                                             "queues": '["default"]'})
        picked = plan(conn, keys.KEY_CANDIDATES, {"task": "t", "key": "k", "now": 1.0,
                                                   "queues": '["default"]', "room": 2})
        assert "conveyor_limit_keys_ready" in ready, ready
        for found in (ready, picked):
            assert "conveyor_jobs_limit_key" in found, found
            assert not any(step.startswith("SCAN job") or step == "SCAN conveyor_jobs"
                           for step in found.split(" | ")), found
    finally:
        conn.close()


def test_a_tenants_list_reads_the_index_of_tenants_jobs(tmp_path: Path) -> None:
    """A tenant's job list walks its partial index (tenant, id), which covers only jobs with
    a tenant: the clause must say so (tenant != '') or SQLite cannot use it."""
    from conveyor.job import JobFilter, JobState

    conn = migrated(tmp_path / "tenant.db")
    try:
        conn.execute("ANALYZE")
        for where in (JobFilter(tenant="org-1"), JobFilter(tenant="org-1", task="send"),
                      JobFilter(tenant="org-1", states=(JobState.DEAD,))):
            found = plan(conn, *_list_sql(where, after="01b"))
            assert found.startswith("SEARCH conveyor_jobs USING INDEX conveyor_jobs_tenant "
                                    "(tenant=? AND id<?)"), found
            assert "TEMP B-TREE" not in found, found
    finally:
        conn.close()


def test_list_filters_take_their_pinned_plans(tmp_path: Path) -> None:
    """Migration 0015 and the state literals (filters.states_clause): a batch's jobs are one
    range of conveyor_jobs_batch; a state with other fields walks the key newest first (not
    the partial index of dead rows, which would read and sort a tenth of the table); running
    jobs come from their own small index, newest first (no sort)."""
    from conveyor.job import JobFilter, JobState

    conn = migrated(tmp_path / "lists.db")
    try:
        conn.execute("ANALYZE")
        from conveyor.store.sqlite.listing import list_statement

        batch = plan(conn, *list_statement(JobFilter(batch_id="b-1", tenant="t"), "01b", 51))
        assert batch == "SEARCH conveyor_jobs USING INDEX conveyor_jobs_batch " \
            "(batch_id=? AND id<?)", batch
        for where in (JobFilter(states=(JobState.DEAD,), task="t"),
                      JobFilter(states=(JobState.COMPLETED,), queue="q"),
                      JobFilter(states=(JobState.QUEUED, JobState.DEAD))):
            found = plan(conn, *_list_sql(where))
            assert found == "SCAN conveyor_jobs", (where, found)
        running = plan(conn, *list_statement(JobFilter(states=(JobState.RUNNING,), queue="q"),
                                             None, 51))
        assert running == "SCAN conveyor_jobs USING INDEX conveyor_jobs_running_ids", running
    finally:
        conn.close()


def test_the_stats_durations_read_the_finished_index_alone(tmp_path: Path) -> None:
    """The last hour's durations (stats) walk conveyor_jobs_finished, which carries every
    column they read (0016): no lookup of each job's row, for the tenants' stats too."""
    conn = migrated(tmp_path / "durations.db")
    try:
        for tenant in (None, "acme"):
            found = plan(conn, q.DURATIONS, {"since": 0.0, "tenant": tenant})
            assert "COVERING INDEX conveyor_jobs_finished" in found, found
    finally:
        conn.close()


def test_the_charts_rollup_read_searches_the_rollups_by_minute(tmp_path: Path) -> None:
    """queue_analytics (the overview's and queues page's charts): the folded rollups are a
    SEARCH of their key by width and minute, and the pending rows a LIMITed scan
    (history_reads.PENDING_READ)."""
    from conveyor.history.records import TimeRange
    from conveyor.store.history_reads import PENDING_READ, _points
    from conveyor.store.sqlite.history import SQLiteHistory, _statement

    conn = migrated(tmp_path / "charts.db")
    try:
        for every_tenant, tenant in ((True, None), (False, "acme")):
            hour = TimeRange(1_700_000_000.0, 1_700_003_660.0, tenant=tenant)
            params, _ = _points(hour, 61)
            sql = _statement(SQLiteHistory._queue_rollups[every_tenant])
            found = plan(conn, sql, {**params, "pending_limit": PENDING_READ})
            table = "conveyor_rollups_all" if every_tenant else "conveyor_rollups"
            assert f"SEARCH main.{table} USING" in found and "minute>?" in found, found
            assert not any(step.startswith(f"SCAN main.{table}") for step in found.split(" | "))
            assert "LIMIT %(pending_limit)s" in SQLiteHistory._queue_rollups[every_tenant]
    finally:
        conn.close()


def test_a_groups_dead_jobs_are_read_from_the_group(tmp_path: Path) -> None:
    """group_dead_jobs: a SEARCH of the partial index of the jobs that died in a group
    (migration 0022; a tenant's: 0023's, that leads with the tenant), by fingerprint from
    the page's first id in id order, never a scan of the jobs or a sort; the counts a read
    of conveyor_dead_groups alone."""
    from conveyor.store import dead_groups as dg
    from conveyor.store.sqlite.history import _statement

    conn = migrated(tmp_path / "dead.db")
    try:
        for tenant, statement, index in (
                (None, dg.GROUP_DEAD_JOBS, "conveyor_jobs_dead_groups ("),
                ("acme", dg.TENANT_GROUP_DEAD_JOBS, "conveyor_jobs_dead_tenants (tenant=? AND ")):
            found = plan(conn, _statement(statement), {
                "fingerprint": "0123456789abcdef", "tenant": tenant, "limit": 10,
                "after": "01a"})
            assert f"{index}(dead_fingerprint,id)>(?,?) AND dead_fingerprint<?)" in found, found
            assert "TEMP B-TREE" not in found, found
            assert not any(step.startswith("SCAN") for step in found.split(" | ")), found
            counts = plan(conn, _statement(dg.DEAD_GROUP_COUNTS), {"tenant": tenant})
            assert "conveyor_dead_groups" in counts and "conveyor_jobs" not in counts, counts
    finally:
        conn.close()


def test_the_error_reads_search_their_range(tmp_path: Path) -> None:
    """error_groups (0023): an hour's failed attempts are a SEARCH of the partial ended index
    of failed attempts (covering), not a walk of every failed attempt's errors index; a
    day of every tenant a SEARCH of conveyor_error_rollups_all by width and minute; a day
    of one tenant a SEARCH of the error rollups' tenant index."""
    from conveyor.store import history_sql as hq
    from conveyor.store.history_reads import PENDING_READ
    from conveyor.store.sqlite.history import _statement

    conn = migrated(tmp_path / "errors.db")
    try:
        for tenant in (None, "acme"):
            scope = {"start": 1.0, "end": 2.0, "tenant": tenant, "task": None, "queue": None,
                     "pending_limit": PENDING_READ}
            hour = plan(conn, _statement(hq.ERROR_GROUPS), scope)
            assert "COVERING INDEX conveyor_attempts_failed_ended (ended_at>? AND " \
                "ended_at<?)" in hour, hour
            day = plan(conn, _statement(hq.ERROR_GROUP_ROLLUPS_TENANT if tenant
                                        else hq.ERROR_GROUP_ROLLUPS_ALL),
                       {**scope, "width": 3600, "first_minute": 1, "end_minute": 2,
                        "pending_end": 3600})
            index = ("conveyor_error_rollups USING COVERING INDEX conveyor_error_rollups_tenant "
                     "(tenant=? AND width=? AND minute>? AND minute<?)" if tenant else
                     "conveyor_error_rollups_all USING PRIMARY KEY (width=? AND minute>? "
                     "AND minute<?)")
            assert f"SEARCH main.{index}" in day, day
    finally:
        conn.close()


def test_the_slow_read_walks_the_10_minute_index_by_part(tmp_path: Path) -> None:
    """slow_attempts (0025): each 10-minute part of the range is a SEARCH of
    conveyor_attempts_slow_10min by its part expression: two steps for the part's slowest
    (duration, end), then a walk from the top of the parts that reach the cut,
    each row taken by id; never a scan of the attempts. And no index of the attempts
    leads with the duration any more: a fold's insert no longer lands on a random leaf of
    one."""
    from conveyor.store.history_reads import PENDING_READ
    from conveyor.store.sqlite.history import SQLiteHistory, _statement

    conn = migrated(tmp_path / "slow.db")
    try:
        for tenant, parts in ((None, 6), (None, 4320), ("acme", 144)):
            found = plan(conn, _statement(SQLiteHistory._slow[tenant is None]), {
                "start": 600.0, "end": 600.0 * (1 + parts), "tenant": tenant, "task": None,
                "queue": None, "pending_limit": PENDING_READ, "limit": 20, "first_part": 1,
                "last_part": 1 + parts})
            steps = found.split(" | ")
            index = "INDEX conveyor_attempts_slow_10min (<expr>=?"
            # the parts' tops: their duration, then a step to it for their end
            assert sum(f"{index})" in step for step in steps) == 1, found
            assert sum(f"{index} AND duration=?)" in step for step in steps) == 1, found
            # the walks down to the cut
            walk = f"{index} AND (duration,ended_at)>(?,?))"
            assert sum(walk in step for step in steps) == 1, found
            assert "SEARCH a USING INTEGER PRIMARY KEY (rowid=?)" in found, found
            assert not any(step.startswith("SCAN main.conveyor_attempts ")
                           or step == "SCAN main.conveyor_attempts" for step in steps), found
        leading = {conn.execute(f"PRAGMA index_xinfo('{name}')").fetchone()[2]
                   for (name,) in conn.execute(
                       "SELECT name FROM sqlite_master WHERE type = 'index' "
                       "AND tbl_name = 'conveyor_attempts'")}
        assert "duration" not in leading, leading
    finally:
        conn.close()


def test_the_slow_read_starts_from_the_kept_tops(tmp_path: Path) -> None:
    """slow_attempts with no task or queue filter (0026): the tops of the parts wholly in
    range are a SEARCH of the tops the fold kept (every tenant's by part, a tenant's by
    tenant and part), the 10-minute index stepped for the rest (the first and last parts,
    those at or below the prune's mark) and walked down to the cut; never a scan."""
    from conveyor.store.history_reads import PENDING_READ
    from conveyor.store.sqlite.history import SQLiteHistory, _statement

    conn = migrated(tmp_path / "slowtop.db")
    try:
        for tenant, parts in ((None, 6), (None, 4320), ("acme", 4320)):
            found = plan(conn, _statement(SQLiteHistory._slow[2 + (tenant is None)]), {
                "start": 600.0, "end": 600.0 * (1 + parts), "tenant": tenant, "task": None,
                "queue": None, "pending_limit": PENDING_READ, "limit": 20, "first_part": 1,
                "last_part": 1 + parts})
            steps = found.split(" | ")
            kept = ("SEARCH main.conveyor_slow_tops_all USING PRIMARY KEY (part>? AND part<?)"
                    if tenant is None else "SEARCH main.conveyor_slow_tops USING PRIMARY KEY "
                    "(tenant=? AND part>? AND part<?)")
            assert kept in steps, found
            index = "INDEX conveyor_attempts_slow_10min (<expr>=?"
            assert sum(f"{index})" in step for step in steps) == 1, found
            assert sum(f"{index} AND (duration,ended_at)>(?,?))" in step
                       for step in steps) == 1, found
            assert not any(step.startswith("SCAN main.conveyor_attempts ")
                           or step == "SCAN main.conveyor_attempts" for step in steps), found
    finally:
        conn.close()


def test_a_task_or_queue_slow_read_starts_from_the_tops_kept_of_it(tmp_path: Path) -> None:
    """slow_attempts of a task or a queue (0027), of every tenant or one: the tops of the
    parts wholly in range are a SEARCH of the tops the fold kept of that task or queue (by
    kind, name, the tenant and part), the 10-minute index stepped for the rest and walked
    down to the cut; never a scan. (Before 0027 such a read stepped every part.)"""
    from conveyor.store.history_reads import PENDING_READ
    from conveyor.store.sqlite.history import SQLiteHistory, _statement

    reads = SQLiteHistory.__new__(SQLiteHistory)
    conn = migrated(tmp_path / "slownamed.db")
    try:
        for tenant in (None, "acme"):
            for task, queue in (("demo.task", None), (None, "default")):
                params: dict[str, object] = {
                    "start": 600.0, "end": 600.0 * 4321, "tenant": tenant, "task": task,
                    "queue": queue, "pending_limit": PENDING_READ, "limit": 20,
                    "first_part": 1, "last_part": 4321}
                found = plan(conn, _statement(reads._slow_statement(params)), params)
                steps = found.split(" | ")
                kept = ("SEARCH main.conveyor_slow_tops_named_all USING PRIMARY KEY "
                        "(kind=? AND name=? AND part>? AND part<?)" if tenant is None else
                        "SEARCH main.conveyor_slow_tops_named USING PRIMARY KEY "
                        "(kind=? AND name=? AND tenant=? AND part>? AND part<?)")
                assert kept in steps, found
                index = "INDEX conveyor_attempts_slow_10min (<expr>=?"
                assert sum(f"{index} AND (duration,ended_at)>(?,?))" in step
                           for step in steps) == 1, found
                assert not any(step.startswith("SCAN main.conveyor_attempts ")
                               or step == "SCAN main.conveyor_attempts" for step in steps), found
    finally:
        conn.close()


def test_the_rollup_reads_of_a_tenant_or_a_queue_search_their_index(tmp_path: Path) -> None:
    """0028: one tenant's task rollups over 30 days are a SEARCH of conveyor_rollups_tenant
    (pinned: SQLite's planner took the key's range of every tenant); one tenant's worker
    hours a SEARCH of conveyor_worker_rollups_tenant, every tenant's a SEARCH of
    conveyor_worker_rollups_all's key (never the worker rollups of every tenant); a
    queue's error groups over a day a SEARCH of conveyor_error_rollups_queue (pinned; not
    covering: the fold's upserts of a row's failures leave its entry)."""
    from conveyor.history.records import TimeRange
    from conveyor.store import history_sql as hq
    from conveyor.store.history_reads import PENDING_READ, _points
    from conveyor.store.sqlite.history import SQLiteHistory, _statement

    conn = migrated(tmp_path / "rollups.db")
    try:
        month = TimeRange(1_700_000_000.0 - 30 * 86400, 1_700_000_000.0, tenant="acme")
        params, _ = _points(month, 30)
        found = plan(conn, _statement(SQLiteHistory._task_rollups[0]), params)
        assert "SEARCH main.conveyor_rollups USING INDEX conveyor_rollups_tenant (tenant=? " \
            "AND width=? AND minute>? AND minute<?)" in found, found
        hours = {"first_hour": 1, "end_hour": 2, "tenant": "acme", "pending_limit": PENDING_READ}
        found = plan(conn, _statement(hq.WORKER_HOURS_TENANT), hours)
        assert "SEARCH main.conveyor_worker_rollups USING INDEX conveyor_worker_rollups_tenant " \
            "(tenant=? AND hour>? AND hour<?)" in found, found
        found = plan(conn, _statement(hq.WORKER_HOURS_ALL), {**hours, "tenant": None})
        assert "SEARCH main.conveyor_worker_rollups_all USING PRIMARY KEY (hour>? AND " \
            "hour<?)" in found and "main.conveyor_worker_rollups " not in found, found
        scope = {"start": 1.0, "end": 2.0, "tenant": None, "task": None, "queue": "q1",
                 "pending_limit": PENDING_READ, "width": 86400, "first_minute": 1,
                 "end_minute": 2, "pending_end": 86400}
        found = plan(conn, _statement(hq.ERROR_GROUP_ROLLUPS_QUEUE), scope)
        assert "SEARCH main.conveyor_error_rollups USING INDEX conveyor_error_rollups_queue " \
            "(queue=? AND width=? AND minute>? AND minute<?)" in found, found
    finally:
        conn.close()


def test_the_tasks_read_sorts_its_pending_rows_and_a_tenants_days_by_index(
        tmp_path: Path) -> None:
    """0038: the tasks read (every tenant, one tenant; an hour and a month) scans the pending
    rows and sorts them to group them (0031's index of them, which it walked instead, cost
    every settle's insert more than it saved a read of a second's pending rows: 0038
    dropped it); a tenant's day rows by conveyor_rollups_tenant_days (0031), covering (not
    a lookup in the key per entry of conveyor_rollups_tenant)."""
    from conveyor.history.records import TimeRange
    from conveyor.store.history_reads import _points
    from conveyor.store.sqlite.history import SQLiteHistory, _statement

    conn = migrated(tmp_path / "pending.db")
    try:
        for span in (3600.0, 30 * 86400.0):
            for tenant in (None, "acme"):
                params, _ = _points(TimeRange(1_700_000_000.0 - span, 1_700_000_000.0,
                                              tenant=tenant), 30)
                steps = plan(conn, _statement(SQLiteHistory._task_rollups[tenant is None]),
                             params).split(" | ")
                assert "SCAN a" in steps, steps
                assert "USE TEMP B-TREE FOR GROUP BY" in steps[steps.index("SCAN a") + 1], steps
        # a tenant's month (day rows): their covering index, no lookup in the table's key
        params, _ = _points(TimeRange(1_700_000_000.0 - 30 * 86400, 1_700_000_000.0,
                                      tenant="acme", task="t"), 30)
        found = plan(conn, _statement(SQLiteHistory._task_rollups[2]), params)
        assert "SEARCH main.conveyor_rollups USING COVERING INDEX conveyor_rollups_tenant_days" \
            " (tenant=? AND minute>? AND minute<?)" in found, found
    finally:
        conn.close()
