"""Migration 0026 on a store with history (both stores): the tops of each 10-minute part,
per tenant and of every tenant, are filled from the attempts already folded (the slowest
by duration, then the newest end), the prune's mark starts below every part, and the
slowest-attempts read from them equals a brute force over the attempts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, store_url_for

from conveyor.history.records import TimeRange
from conveyor.store.base import open_store

COLUMNS = "job_id, attempt, task, queue, tenant, started_at, ended_at, duration, outcome"
BASE = 2_833_333 * 600.0  # a 10-minute part's start
# 12 parts, 5 attempts each; ties of duration inside a part (the newest end is the top)
ROWS = [(f"job-{i}-{j}", 1, "t", "q", (None, "acme", "globex")[(i + j) % 3],
         BASE + 600 * i + 100 * j, BASE + 600 * i + 100 * j + 10, float((i * 7 + j * 3) % 5),
         "completed") for i in range(12) for j in range(5)]


def tops(tenant_of: Callable[[Any], Any]) -> set[tuple[Any, ...]]:
    best: dict[tuple[Any, ...], tuple[float, float]] = {}
    for r in ROWS:
        key = (tenant_of(r[4]), int((r[6]) // 600))
        best[key] = max(best.get(key, (-1.0, -1.0)), (r[7], r[6]))
    return {(*k, *v) for k, v in best.items()}


def want(window: TimeRange, limit: int) -> list[tuple[str, float]]:
    kept = [r for r in ROWS if window.start <= r[6] < window.end
            and window.tenant in (None, r[4])]
    kept.sort(key=lambda r: (r[7], r[6], r[0]), reverse=True)
    return [(r[0], r[7]) for r in kept[:limit]]


WINDOWS = [TimeRange(BASE - 86400, BASE + 86400), TimeRange(BASE + 650, BASE + 600 * 9 + 5),
           TimeRange(BASE + 650, BASE + 600 * 9 + 5, tenant="acme"),
           TimeRange(BASE - 86400, BASE + 86400, tenant="globex")]


def migrated_alone(make: Callable[[], Any],
                   execute: Callable[[str, list[tuple[Any, ...]] | None], list[Any]],
                   version: int, rows: list[tuple[Any, ...]], windows: list[TimeRange],
                   want: Callable[[TimeRange, int], list[tuple[str, float]]]) -> None:
    """A store migrated up to just before `version`, holding `rows` as folded attempts, then
    migrated by `version` alone: its slow reads over `windows` are `want`'s."""
    async def migrate() -> None:
        store = make()
        newest = [m for m in store._migrations if m.version <= version]
        store._migrations = [m for m in newest if m.version < version]
        await store.migrate()
        execute(f"INSERT INTO {{schema}}conveyor_attempts ({COLUMNS}) VALUES "
                f"({', '.join(['%s'] * 9)})", rows)
        store._migrations = newest
        assert await store.migrate() == 1  # `version` alone
        for window in windows:
            for limit in (1, 4, 13, 100):
                found = await store.slow_attempts(window, limit=limit)
                assert [(a.job_id, a.duration) for a in found] == want(window, limit)
        await store.close()

    asyncio.run(migrate())


def upgraded(make: Callable[[], Any],
             execute: Callable[[str, list[tuple[Any, ...]] | None], list[Any]]) -> None:
    migrated_alone(make, execute, 26, ROWS, WINDOWS, want)
    assert {tuple(r) for r in execute(
        "SELECT tenant, part, duration, ended_at FROM {schema}conveyor_slow_tops", None)} \
        == tops(lambda t: t or "")
    assert {(None, *r) for r in execute(
        "SELECT part, duration, ended_at FROM {schema}conveyor_slow_tops_all", None)} \
        == tops(lambda t: None)
    assert [tuple(r) for r in execute(
        "SELECT part FROM {schema}conveyor_slow_tops_pruned", None)] == [(-1,)]


@pytest.mark.parametrize("kind", BOTH)
def test_0026_keeps_the_tops_of_the_attempts_folded(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_slowtop") as url:
        upgraded(lambda: open_store(url), raw_execute(url))
