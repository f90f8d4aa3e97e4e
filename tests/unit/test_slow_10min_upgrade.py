"""Migration 0025 on a store with history (both stores): the duration index of every attempt
(conveyor_attempts_slow) is gone, the 10-minute one (conveyor_attempts_slow_10min) holds the
attempts already folded, and the slowest-attempts read finds them through it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, schema_of, store_url_for

from conveyor.history.records import TimeRange
from conveyor.store.base import open_store

COLUMNS = "job_id, attempt, task, queue, tenant, started_at, ended_at, duration, outcome"
HOUR = 3600.0
ROWS = [(f"job-{n}", 1, "t", "q", "acme" if n % 2 else None, n * 997.0, n * 997.0 + n % 7,
         float(n % 7), "completed") for n in range(1, 40)]


def want(window: TimeRange, limit: int) -> list[tuple[str, float]]:
    kept = [r for r in ROWS if window.start <= r[6] < window.end
            and window.tenant in (None, r[4])]
    kept.sort(key=lambda r: (r[7], r[6], r[0]), reverse=True)
    return [(r[0], r[7]) for r in kept[:limit]]


WINDOWS = [TimeRange(0, 40 * 997.0 + HOUR), TimeRange(1500.0, 5 * HOUR + 100.0),
           TimeRange(1500.0, 5 * HOUR + 100.0, tenant="acme")]


def upgraded(make: Callable[[], Any],
             execute: Callable[[str, list[tuple[Any, ...]] | None], list[Any]],
             indexes: str) -> None:
    async def migrate() -> None:
        store = make()
        newest = [m for m in store._migrations if m.version <= 25]  # up to 0025
        store._migrations = [m for m in newest if m.version < 25]
        later = [m for m in make()._migrations if m.version <= 26]  # the read needs 0026
        await store.migrate()
        execute(f"INSERT INTO {{schema}}conveyor_attempts ({COLUMNS}) VALUES "
                f"({', '.join(['%s'] * 9)})", ROWS)
        store._migrations = newest
        assert await store.migrate() == 1  # 0025 alone
        store._migrations = later
        assert await store.migrate() == 1  # 0026 (the tops the slow read starts from)
        for window in WINDOWS:
            for limit in (3, 50):
                found = await store.slow_attempts(window, limit=limit)
                assert [(a.job_id, a.duration) for a in found] == want(window, limit)
        await store.close()

    asyncio.run(migrate())
    names = {row[0] for row in execute(indexes, None)}
    assert "conveyor_attempts_slow_10min" in names
    assert "conveyor_attempts_slow" not in names


@pytest.mark.parametrize("kind", BOTH)
def test_0025_replaces_the_duration_index(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_slow10") as url:
        if kind == "sqlite":
            indexes = ("SELECT name FROM sqlite_master WHERE type = 'index' "
                       "AND tbl_name = 'conveyor_attempts'")
        else:
            indexes = (f"SELECT indexname FROM pg_indexes WHERE schemaname = "
                       f"'{schema_of(url)}' AND tablename = 'conveyor_attempts'")
        upgraded(lambda: open_store(url), raw_execute(url), indexes)
