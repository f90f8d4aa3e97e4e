"""Migration 0031 on a store with pending attempt rows and day rollups (both stores): SQLite
indexes the rows already pending (conveyor_attempts_pending_tasks) and a tenant's day rows
(conveyor_rollups_tenant_days), PostgreSQL changes nothing; the tasks read of version 30's
rows then sums every one of them, as version 30's read did."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, store_url_for

from conveyor.history.records import TimeRange
from conveyor.history.rollup import bucket
from conveyor.store.base import open_store
from conveyor.store.history_fold_sql import PENDING_COLUMNS
from conveyor.store.history_sql import ROLLUP_COLUMNS

T0 = 1_700_000_000.0
# (task, queue, tenant, ended, duration, outcome) of pending rows written at version 30
ROWS = [("a", "q1", None, T0 - 30, 0.003, "completed"), ("a", "q1", "acme", T0 - 30, 0.5,
                                                          "dead"),
        ("a", "q1", None, T0 - 90, 0.003, "completed"), ("b", "q2", "acme", T0 - 4000, 2.0,
                                                          "retried")]


# the tasks read of ROWS and the day row: a day of every tenant, of acme, 30 days of acme
EXPECTED = [[("a", "q1", 3, 1, 3), ("b", "q2", 1, 1, 1)],
            [("a", "q1", 1, 1, 1), ("b", "q2", 1, 1, 1)],
            [("a", "q1", 1, 1, 1), ("b", "q2", 5, 1, 5)]]


def pending_row(n: int, task: str, queue: str, tenant: str | None, ended: float,
                took: float, outcome: str) -> tuple[Any, ...]:
    values = {"job_id": f"job-{n}", "attempt": 1, "task": task, "queue": queue,
              "tenant": tenant, "started_at": ended - took, "ended_at": ended,
              "duration": took, "outcome": outcome, "bucket": bucket(took)}
    return tuple(values.get(c) for c in PENDING_COLUMNS)


def upgraded(url: str, version: int = 31) -> list[list[Any]]:
    """The tasks read over a day of every tenant, of acme, and over 30 days of acme, at
    `version`, of rows pending (and a day row) at the version before it."""
    execute = raw_execute(url)
    store = open_store(url)
    newest = [m for m in store._migrations if m.version <= version]
    found: list[Any] = []

    async def migrate() -> None:
        store._migrations = [m for m in newest if m.version < version]
        await store.migrate()
        execute(f"INSERT INTO {{schema}}conveyor_attempts_pending ({', '.join(PENDING_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(PENDING_COLUMNS))})",
                [pending_row(n, *row) for n, row in enumerate(ROWS)])
        # a day row of acme's, folded 10 days ago: 4 completed, in bucket 3
        day = {"width": 86400, "minute": int(T0 - 10 * 86400) // 86400 * 1440, "task": "b",
               "queue": "q2", "tenant": "acme", "completed": 4, "duration_sum": 0.02, "b3": 4}
        execute(f"INSERT INTO {{schema}}conveyor_rollups ({', '.join(ROLLUP_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(ROLLUP_COLUMNS))})",
                [tuple(day.get(c, 0) for c in ROLLUP_COLUMNS)])
        store._migrations = newest
        assert await store.migrate() == 1  # `version` alone
        for tenant, span in ((None, 86400), ("acme", 86400), ("acme", 30 * 86400)):
            found.append(sorted((s.task, s.queue, s.total, s.failed, sum(s.series))
                                for s in await store.task_analytics(
                                    TimeRange(T0 - span, T0 + 60, tenant=tenant))))
        await store.close()

    asyncio.run(migrate())
    return found


@pytest.mark.parametrize("kind", BOTH)
def test_0031_keeps_the_tasks_read_of_the_rows_already_pending(kind: str,
                                                               tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_pendtasks") as url:
        assert upgraded(url) == EXPECTED
        if kind == "sqlite":
            [entries] = raw_execute(url)(
                "SELECT count(*) FROM conveyor_attempts_pending "
                "INDEXED BY conveyor_attempts_pending_tasks WHERE task > ''", None)
            assert entries[0] == len(ROWS)
