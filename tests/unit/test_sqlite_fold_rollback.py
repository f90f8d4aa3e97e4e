"""A SQLite fold that fails part-way (a crash between the settle and the fold's commit)
loses no attempt row and counts none twice: its transaction rolls back whole (the attempts
inserted, the rollups, the slow tops and its connection's temp tables of keys and tops),
the pending rows stay, and the next fold moves each of them once, the slow tops included
(grouped from the keys' rows: each key's slowest row)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from tests.unit.test_pending_tasks_upgrade import pending_row

from conveyor.errors import StoreUnavailable
from conveyor.store.base import open_store
from conveyor.store.history_fold_sql import PENDING_COLUMNS
from conveyor.store.sqlite import history_fold

T0 = 1_700_000_000.0
# two keys of one 10-minute part (outcomes apart), the slowest in the second; another part
ROWS = [("a", "q1", None, T0 - 30, 0.5, "completed"), ("a", "q1", None, T0 - 20, 2.0, "dead"),
        ("a", "q1", None, T0 - 10, 2.0, "completed"), ("a", "q1", None, T0 - 4000, 0.1,
                                                         "completed")]


def test_a_failed_fold_leaves_every_row_pending_and_the_next_moves_each_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fold.db"
    store = open_store(f"sqlite:///{path}")

    def count(sql: str) -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute(sql).fetchone()[0])

    async def run() -> None:
        await store.migrate()
        with sqlite3.connect(path) as conn:
            conn.executemany(
                f"INSERT INTO conveyor_attempts_pending ({', '.join(PENDING_COLUMNS)}) "
                f"VALUES ({', '.join(['?'] * len(PENDING_COLUMNS))})",
                [pending_row(n, *row) for n, row in enumerate(ROWS)])
        good = history_fold.FOLD
        # the last of the fold's statements fails: everything before it was written
        monkeypatch.setattr(history_fold, "FOLD", (*good, "SELECT no_such_function()"))
        with pytest.raises((StoreUnavailable, sqlite3.Error)):
            await store.fold_history(10_000)
        assert count("SELECT count(*) FROM conveyor_attempts_pending") == len(ROWS)
        assert count("SELECT count(*) FROM conveyor_attempts") == 0
        assert count("SELECT count(*) FROM conveyor_rollups") == 0
        assert count("SELECT count(*) FROM conveyor_slow_tops") == 0
        monkeypatch.setattr(history_fold, "FOLD", good)
        assert await store.fold_history(10_000) == len(ROWS)
        assert await store.fold_history(10_000) == 0
        assert count("SELECT count(*) FROM conveyor_attempts") == len(ROWS)
        assert count("SELECT sum(completed + dead) FROM conveyor_rollups "
                     "WHERE width = 60") == len(ROWS)
        # each part's slowest: of the two 2.0 s rows (two keys), one, with its own end
        with sqlite3.connect(path) as conn:
            kept = conn.execute("SELECT part, duration, ended_at FROM conveyor_slow_tops "
                                "ORDER BY part").fetchall()
        assert [(p, d) for p, d, _ in kept] == [(int(T0 - 4000) // 600, 0.1),
                                                 (int(T0 - 30) // 600, 2.0)]
        assert kept[1][2] in (T0 - 20, T0 - 10)
        await store.close()

    asyncio.run(run())
