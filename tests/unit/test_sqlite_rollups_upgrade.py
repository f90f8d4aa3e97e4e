"""Migration 0016 on a store with history: all tenants' rollups start as the sums of the
rollups already folded (per width, minute, task and queue, over every tenant)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from conveyor.store.sqlite.store import SQLiteStore

ROW = ("INSERT INTO conveyor_rollups (width, minute, task, queue, tenant, completed, dead, "
       "duration_sum, b3) VALUES (60, 100, 't', 'q', ?, ?, ?, ?, ?)")


def test_0016_sums_the_rollups_already_folded(tmp_path: Path) -> None:
    path = tmp_path / "upgrade.db"
    store = SQLiteStore(f"sqlite:///{path}")
    newest = store._migrations
    store._migrations = [m for m in newest if m.version < 16]

    async def migrate() -> None:
        await store.migrate()
        with sqlite3.connect(path) as conn:
            conn.executemany(ROW, [("", 2, 1, 1.5, 3), ("acme", 4, 0, 2.0, 4),
                                   ("globex", 1, 1, 0.5, 2)])
        store._migrations = [m for m in newest if m.version <= 16]  # 0016 alone
        assert await store.migrate() == 1
        store._migrations = newest
        await store.migrate()  # and the later ones leave the rollups as they are
        await store.close()

    asyncio.run(migrate())
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT width, minute, task, queue, completed, dead, duration_sum, "
                            "b3 FROM conveyor_rollups_all").fetchall()
    assert rows == [(60, 100, "t", "q", 7, 2, 4.0, 9)]
