"""SQLite query plans of the tasks read of every tenant over a month (day rows; 0033): its
folded rows are walked in conveyor_rollups_all_days, covering, and summed per (task, queue)
as walked, with no sort of them (before: a SEARCH of conveyor_rollups_all's key by width
and minute, then every row of the month copied into a temp b-tree for the grouping)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from tests.unit.test_sqlite_plans import plan

from conveyor.history.records import TimeRange
from conveyor.store.sqlite.history import _statement
from conveyor.store.sqlite.store import SQLiteStore

T0 = 1_700_000_000.0


def run_statements(path: Path, windows: list[TimeRange]) -> list[tuple[str, dict[str, Any]]]:
    """The statements (and parameters) the store's task_analytics runs for `windows`, on a
    new store at `path` migrated to the newest schema."""
    store = SQLiteStore(f"sqlite:///{path}")
    ran: list[tuple[str, dict[str, Any]]] = []

    async def history_rows(template: str, params: dict[str, Any]) -> list[Any]:
        ran.append((_statement(template), params))
        return []

    async def read() -> None:
        try:
            await store.migrate()
            store._history_rows = history_rows  # type: ignore[method-assign]
            for window in windows:
                await store.task_analytics(window)
        finally:
            await store.close()

    asyncio.run(read())
    return ran


def test_a_month_of_every_tenant_sums_its_day_rows_as_walked(tmp_path: Path) -> None:
    month = [TimeRange(T0 - 30 * 86400, T0), TimeRange(T0 - 30 * 86400, T0, task="t"),
             TimeRange(T0 - 30 * 86400, T0, queue="q")]
    ran = run_statements(tmp_path / "tasks.db", month)
    assert len(ran) == len(month)
    conn = sqlite3.connect(tmp_path / "tasks.db")
    try:
        for sql, params in ran:
            steps = plan(conn, sql, params).split(" | ")
            walk = "SCAN main.conveyor_rollups_all USING COVERING INDEX conveyor_rollups_all_days"
            assert walk in steps, steps
            # grouped as walked: the next step is the pending rows' arm, not a sort
            assert "TEMP B-TREE" not in steps[steps.index(walk) + 1], steps
            assert not any("conveyor_rollups_all USING PRIMARY KEY" in s for s in steps), steps
            # the pending rows (a second or so of them) scanned and sorted: 0038 dropped
            # their index (0031's), which every settle's insert paid for
            assert "SCAN a" in steps, steps
            assert not any("conveyor_attempts_pending_tasks" in s for s in steps), steps
    finally:
        conn.close()


def test_shorter_ranges_and_a_tenants_month_keep_their_statements(tmp_path: Path) -> None:
    """An hour and a day of every tenant (minute and hour rows: not in the partial index)
    and a tenant's month (0031's tenant days index) do not read conveyor_rollups_all_days."""
    windows = [TimeRange(T0 - 3600, T0), TimeRange(T0 - 86400, T0),
               TimeRange(T0 - 30 * 86400, T0, tenant="acme")]
    ran = run_statements(tmp_path / "other.db", windows)
    conn = sqlite3.connect(tmp_path / "other.db")
    try:
        found = [plan(conn, sql, params) for sql, params in ran]
        assert not any("conveyor_rollups_all_days" in f for f in found), found
        assert "conveyor_rollups_tenant_days" in found[2], found
    finally:
        conn.close()


def test_the_running_jobs_are_read_from_their_index_alone(tmp_path: Path) -> None:
    """0033: the workers read's running jobs (every tenant's, one tenant's) and the keyed
    list's running arm read conveyor_jobs_running_ids alone, covering (before: a lookup in
    the table per running job, 4,992 of them at 1.09M attempts)."""
    from tests.unit.test_sqlite_plans import migrated

    from conveyor.job import JobFilter
    from conveyor.store import history_sql as hq
    from conveyor.store.sqlite import listing

    conn = migrated(tmp_path / "running.db")
    try:
        for tenant in (None, "acme"):
            found = plan(conn, _statement(hq.RUNNING_NOW), {"tenant": tenant})
            assert found == ("SCAN main.conveyor_jobs USING COVERING INDEX "
                             "conveyor_jobs_running_ids"), found
        for where in (JobFilter(queue="q", states=("running", "queued")),
                      JobFilter(queue="q", states=("running", "queued"), tenant="acme")):
            sql, params = listing.keyed_statement(where, None, 50)
            steps = plan(conn, sql, params).split(" | ")
            assert "SEARCH running USING COVERING INDEX conveyor_jobs_running_ids (id<?)" \
                in steps, steps
    finally:
        conn.close()
