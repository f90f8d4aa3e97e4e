"""Migration 0017 on a store with history: the attempts folded before it stay counted once
(the watermark starts at their highest id), and the pending rows a version-16 settle left are
moved into the attempts and counted by the new fold, once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from conveyor.history.records import TimeRange
from conveyor.history.rollup import bucket
from conveyor.store.history_fold_sql import PENDING_COLUMNS
from conveyor.store.history_rows import ATTEMPT_COLUMNS
from conveyor.store.sqlite.store import SQLiteStore

T0 = 1_700_000_000.0


def attempt(job: str, ended: float, outcome: str = "completed") -> tuple[object, ...]:
    return (job, 1, "t", "q", None, "w", "h", 1, ended - 0.5, ended, 0.5, outcome,
            None, None, None, None, None, 0.1, 1000)


def test_0017_counts_pending_rows_once_and_folded_ones_never_again(tmp_path: Path) -> None:
    path = tmp_path / "upgrade.db"
    store = SQLiteStore(f"sqlite:///{path}")
    newest = store._migrations
    store._migrations = [m for m in newest if m.version < 17]

    async def run() -> None:
        await store.migrate()
        before = [attempt(f"old-{i}", T0 + i) for i in range(3)]
        pending = [attempt(f"new-{i}", T0 + 10 + i, "dead") for i in range(2)]
        with sqlite3.connect(path) as conn:  # as a version-16 fold and settle left them
            conn.executemany(f"INSERT INTO conveyor_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})", before)
            conn.execute("INSERT INTO conveyor_rollups_all (width, minute, task, queue, "
                         "completed, duration_sum, b9) VALUES (60, ?, 't', 'q', 3, 1.5, 3)",
                         (int(T0 // 60),))
            conn.executemany(
                f"INSERT INTO conveyor_attempts_pending ({', '.join(PENDING_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(PENDING_COLUMNS))})",
                [(*row, bucket(row[10])) for row in pending])
        store._migrations = newest
        assert await store.migrate() == len(newest) - 16
        window = TimeRange(T0 - 60, T0 + 60)
        assert await store.fold_history() == 2
        assert await store.fold_history() == 0
        [summary] = await store.task_analytics(window)
        assert (summary.counts["completed"], summary.counts["dead"]) == (3, 2)
        await store.close()

    asyncio.run(run())
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM conveyor_attempts_pending").fetchone() == (0,)
        stored = conn.execute(f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM conveyor_attempts "
                              "ORDER BY id").fetchall()
    assert [r[0] for r in stored] == ["old-0", "old-1", "old-2", "new-0", "new-1"]
