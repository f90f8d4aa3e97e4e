"""Migration 0028 on a store with history (both stores): all tenants' worker hours start as
the sums of the worker rollups already folded (per hour and worker, over every tenant:
counts, busy time and CPU summed, host, pid and peak RSS the largest), and the workers read
of every tenant over a day, from them, gives the figures of those rollups summed per worker
(what the read of version 27 summed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, store_url_for

from conveyor.history.records import TimeRange
from conveyor.store.base import open_store

COLUMNS = "hour, worker_id, tenant, host, pid, attempts, failures, busy, cpu, peak_rss"
HOUR = 472_222  # an hour's number (hours since the epoch)
ROWS = [(HOUR, "w1", "", "h1", 10, 3, 1, 1.5, 0.25, 1000),
        (HOUR, "w1", "acme", "h1", 10, 2, 0, 0.5, 0.5, 3000),
        (HOUR, "w2", "acme", "h2", 20, 4, 2, 2.0, 1.0, None),
        (HOUR + 1, "w1", "globex", "h1", 10, 1, 1, 0.25, 0.0, 2000)]
WANT = [(HOUR, "w1", "h1", 10, 5, 1, 2.0, 0.75, 3000), (HOUR, "w2", "h2", 20, 4, 2, 2.0, 1.0, None),
        (HOUR + 1, "w1", "h1", 10, 1, 1, 0.25, 0.0, 2000)]
DAY = TimeRange(HOUR * 3600 - 12 * 3600, HOUR * 3600 + 12 * 3600)


def figures(workers: Any) -> list[tuple[Any, ...]]:
    return sorted((w.worker_id, w.host, w.pid, w.attempts, w.failures, w.busy, w.cpu,
                   w.peak_rss) for w in workers)


def upgraded(url: str) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """(worker_rollups_all's rows, the workers read of every tenant over DAY)."""
    execute = raw_execute(url)
    store = open_store(url)
    newest = [m for m in store._migrations if m.version <= 28]
    found: list[Any] = []

    async def migrate() -> None:
        store._migrations = [m for m in newest if m.version < 28]
        await store.migrate()
        execute(f"INSERT INTO {{schema}}conveyor_worker_rollups ({COLUMNS}) VALUES "
                f"({', '.join(['%s'] * 10)})", ROWS)
        store._migrations = newest
        assert await store.migrate() == 1  # 0028 alone
        found.append(figures(await store.worker_analytics(DAY, now=DAY.end)))
        await store.close()

    asyncio.run(migrate())
    return [tuple(r) for r in execute(
        "SELECT hour, worker_id, host, pid, attempts, failures, busy, cpu, peak_rss FROM "
        "{schema}conveyor_worker_rollups_all ORDER BY 1, 2", None)], found[0]


@pytest.mark.parametrize("kind", BOTH)
def test_0028_sums_the_worker_rollups_already_folded(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_rollidx") as url:
        rows, read = upgraded(url)
        assert rows == WANT
        assert read == [("w1", "h1", 10, 6, 2, 2.25, 0.75, 3000),
                                   ("w2", "h2", 20, 4, 2, 2.0, 1.0, None)]
