"""The SQLite store's attempt history: rows written inside the settle's own transaction
straight into conveyor_attempts (one executemany; history_fold.py adds them to the rollups
later, from a watermark), and the statements the shared reads (store/history_reads.py) run."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...history.rollup import bucket
from .. import history_sql as hq
from ..base import Settle
from ..history_fold_sql import PENDING_COLUMNS
from ..history_reads import HistoryReads
from ..history_rows import attempt_rows, lost_rows
from .connection import Connections
from .history_fold import PRUNE_FIXUP, UNFOLDED, SQLiteHistoryFold

# the columns of a pending row, bucket included (migration 0017): what the fold counts
INSERT = ("INSERT INTO conveyor_attempts (" + ", ".join(PENDING_COLUMNS)
          + ") VALUES (" + ", ".join("?" * len(PENDING_COLUMNS)) + ")")
_SQLITE: dict[str, str] = {}
# history_sql.PRUNE_ATTEMPTS, of the rows the rollups count only (at or below the watermark)
PRUNE_COUNTED = """
DELETE FROM conveyor_attempts WHERE id IN (
    SELECT id FROM conveyor_attempts WHERE ended_at < :before
      AND id <= (SELECT upto FROM conveyor_attempts_folded) LIMIT :limit)"""


def write_history(conn: sqlite3.Connection, items: Sequence[Settle],
                  applied: Sequence[bool]) -> None:
    """The attempts that `items` end, in the caller's (the settle's) transaction: attempt
    rows with their bucket, no rollup (the fold adds those, history_fold.py)."""
    attempts = attempt_rows(items, applied)
    if attempts:
        conn.executemany(INSERT, [(*row, bucket(row[10])) for row in attempts])


def write_lost(conn: sqlite3.Connection, rescued: Sequence[tuple[Any, ...]],
               now: float) -> None:
    """Attempts whose worker died (rescued by maintenance), recorded as lost."""
    attempts = lost_rows(rescued, now)
    if attempts:
        conn.executemany(INSERT, [(*row, bucket(row[10])) for row in attempts])


def _statement(template: str) -> str:
    sql = _SQLITE.get(template)
    if sql is None:
        sql = _SQLITE[template] = hq.for_sqlite(template)
    return sql


# Not in the rollups yet: the attempts past the fold's watermark, and an older worker's
# pending rows (history_fold.py)
_UNCOUNTED = ("(SELECT ended_at, task, queue, tenant, outcome, bucket, duration FROM "
              f"{UNFOLDED} UNION ALL SELECT ended_at, task, queue, tenant, outcome, bucket, "
              "duration FROM main.conveyor_attempts_pending)")


def _integer(x: str) -> str:  # a dialect's floor (history_sql.task_rollups)
    return f"CAST({x} AS INTEGER)"


class SQLiteHistory(SQLiteHistoryFold, HistoryReads):
    _task_rollups = (hq.task_rollups(_integer, False, _UNCOUNTED),
                     hq.task_rollups(_integer, True, _UNCOUNTED))
    db: Connections

    async def _history_rows(self, template: str, params: dict[str, Any]) -> list[Any]:
        with self.db.read() as conn:
            return conn.execute(_statement(template), params).fetchall()

    async def _history_count(self, template: str, params: dict[str, Any]) -> int:
        with self.db.write() as conn:
            if template is hq.PRUNE_ATTEMPTS:  # counted rows only, then the watermark down
                count = int(conn.execute(PRUNE_COUNTED, params).rowcount)
                conn.execute(PRUNE_FIXUP)
                return count
            return int(conn.execute(_statement(template), params).rowcount)
