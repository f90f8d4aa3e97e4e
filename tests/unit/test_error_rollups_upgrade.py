"""Migration 0023 on a store with history (both stores): all tenants' error rollups start as
the sums of the error rollups already folded (per width, minute, group and task, over every
queue and tenant: count summed, first seen the smallest, last seen the largest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, store_url_for

from conveyor.store.base import open_store

COLUMNS = "width, minute, fingerprint, task, queue, tenant, failures, first_seen, last_seen"
ROWS = [(3600, 60, "f1", "t", "q1", "", 2, 3600.5, 3650.0),
        (3600, 60, "f1", "t", "q2", "acme", 3, 3601.0, 3700.0),
        (3600, 60, "f1", "u", "q1", "acme", 1, 3602.0, 3602.0),
        (86400, 0, "f1", "t", "q1", "", 5, 3600.5, 3700.0)]
WANT = [(3600, 60, "f1", "t", 5, 3600.5, 3700.0), (3600, 60, "f1", "u", 1, 3602.0, 3602.0),
        (86400, 0, "f1", "t", 5, 3600.5, 3700.0)]


def upgraded(store: Any, execute: Callable[[str, list[tuple[Any, ...]] | None], list[Any]]
             ) -> list[tuple[Any, ...]]:
    newest = [m for m in store._migrations if m.version <= 23]  # up to 0023

    async def migrate() -> None:
        store._migrations = [m for m in newest if m.version < 23]
        await store.migrate()
        execute(f"INSERT INTO {{schema}}conveyor_error_rollups ({COLUMNS}) VALUES "
                f"({', '.join(['%s'] * 9)})", ROWS)
        store._migrations = [m for m in newest if m.version <= 23]
        assert await store.migrate() == 1  # 0023 alone
        await store.close()

    asyncio.run(migrate())
    return [tuple(r) for r in execute(
        "SELECT width, minute, fingerprint, task, failures, first_seen, last_seen FROM "
        "{schema}conveyor_error_rollups_all ORDER BY 1, 2, 3, 4", None)]


@pytest.mark.parametrize("kind", BOTH)
def test_0023_sums_the_error_rollups_already_folded(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_errroll") as url:
        assert upgraded(open_store(url), raw_execute(url)) == WANT
