"""Migration 0033 on a store with day rollups of every tenant and pending attempt rows (both
stores): SQLite indexes the day rows already folded (conveyor_rollups_all_days), PostgreSQL
changes nothing; the tasks read of every tenant over a month then sums every one of them,
as version 32's statement (history_sql.task_rollups of every tenant) does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, store_url_for
from tests.unit.test_pending_tasks_upgrade import pending_row

from conveyor.history.records import TimeRange
from conveyor.store.base import open_store
from conveyor.store.history_fold_sql import PENDING_COLUMNS
from conveyor.store.history_reads import _points
from conveyor.store.history_rows import task_summaries
from conveyor.store.history_sql import ALL_ROLLUP_COLUMNS

T0 = 1_700_000_000.0
DAY = int(T0) // 86400 * 1440  # the minute of T0's day
# every tenant's rollup rows written at version 32: (width, minute, task, queue, completed,
# dead, duration_sum, b3, b9)
FOLDED = [(86400, DAY - 10 * 1440, "a", "q1", 4, 0, 0.02, 4, 0),
          (86400, DAY - 10 * 1440, "b", "q2", 1, 2, 3.5, 1, 2),
          (86400, DAY - 1440, "a", "q1", 2, 1, 0.7, 2, 1),
          (86400, DAY - 40 * 1440, "a", "q1", 9, 0, 0.09, 9, 0),  # before the month
          (3600, DAY - 10 * 1440, "a", "q1", 4, 0, 0.02, 4, 0)]   # an hour row: not read
# pending rows (task, queue, tenant, ended, duration, outcome)
PENDING = [("a", "q1", None, T0 - 30, 0.003, "completed"),
           ("a", "q1", "acme", T0 - 30, 0.5, "dead"),
           ("c", "q3", "acme", T0 - 4000, 2.0, "retried")]


def upgraded(url: str) -> tuple[list[Any], list[Any]]:
    """The tasks read of every tenant over 30 days at version 33, by version 32's statement
    and by the read's own."""
    execute = raw_execute(url)
    store = open_store(url)
    newest = [m for m in store._migrations if m.version <= 33]
    month = TimeRange(T0 - 30 * 86400, T0 + 60)
    found: list[Any] = []

    def seen(summaries: list[Any]) -> list[Any]:
        return sorted((s.task, s.queue, tuple(s.counts.items()), s.p50, s.p99,
                       None if s.mean is None else round(s.mean, 9), s.series, s.failures)
                      for s in summaries)

    async def version_32s() -> list[Any]:
        params, points = _points(month, 30)
        return seen(task_summaries(
            await store._task_rows(store._task_rollups[1], params), points))

    async def migrate() -> None:
        store._migrations = [m for m in newest if m.version < 33]
        await store.migrate()
        names = ("width", "minute", "task", "queue", "completed", "dead", "duration_sum",
                 "b3", "b9")
        execute(f"INSERT INTO {{schema}}conveyor_rollups_all ({', '.join(ALL_ROLLUP_COLUMNS)})"
                f" VALUES ({', '.join(['%s'] * len(ALL_ROLLUP_COLUMNS))})",
                [tuple(dict(zip(names, row, strict=True)).get(c, 0) for c in ALL_ROLLUP_COLUMNS)
                 for row in FOLDED])
        execute(f"INSERT INTO {{schema}}conveyor_attempts_pending ({', '.join(PENDING_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(PENDING_COLUMNS))})",
                [pending_row(n, *row) for n, row in enumerate(PENDING)])
        store._migrations = newest
        assert await store.migrate() == 1  # 0033 alone
        found.append(await version_32s())
        found.append(seen(await store.task_analytics(month)))
        await store.close()

    asyncio.run(migrate())
    return found[0], found[1]


@pytest.mark.parametrize("kind", BOTH)
def test_0033_keeps_the_month_of_every_tenant(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_taskpairs") as url:
        before, after = upgraded(url)
        assert after == before
        totals = {(task, queue): sum(n for _, n in counts) for task, queue, counts, *_ in after}
        assert totals == {("a", "q1"): 4 + 2 + 1 + 2, ("b", "q2"): 3, ("c", "q3"): 1}
        if kind == "sqlite":
            [entries] = raw_execute(url)(
                "SELECT count(*) FROM conveyor_rollups_all "
                "INDEXED BY conveyor_rollups_all_days WHERE width = 86400", None)
            assert entries[0] == 4  # the day rows folded before 0033
