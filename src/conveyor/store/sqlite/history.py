"""The SQLite store's attempt history: rows written inside the settle's own transaction
(one executemany for the attempts, one upsert per distinct rollup key of the batch), and
the statements the shared reads (store/history_reads.py) run."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .. import history_sql as hq
from ..base import Settle
from ..history_reads import HistoryReads
from ..history_rows import (
    error_rollups,
    history_rows,
    lost_rows,
    rollups_of,
    worker_rollups,
)
from .connection import Connections

_ATTEMPT = ("INSERT INTO conveyor_attempts (" + ", ".join(hq.ATTEMPT_COLUMNS) + ") VALUES ("
            + ", ".join("?" * len(hq.ATTEMPT_COLUMNS)) + ")")
_ROLLUP = hq.for_sqlite(hq.UPSERT_ROLLUP)
for _column in hq.ROLLUP_COLUMNS:  # positional: the rows are tuples
    _ROLLUP = _ROLLUP.replace(f":{_column},", "?,").replace(f":{_column})", "?)")
_WORKERS = hq.for_sqlite(hq.UPSERT_WORKER_ROLLUP)
for _column in hq.WORKER_ROLLUP_COLUMNS:
    _WORKERS = _WORKERS.replace(f":{_column},", "?,").replace(f":{_column})", "?)")
_ERRORS = hq.for_sqlite(hq.UPSERT_ERROR_ROLLUP)
for _column in hq.ERROR_ROLLUP_COLUMNS:
    _ERRORS = _ERRORS.replace(f":{_column},", "?,").replace(f":{_column})", "?)")
_SQLITE: dict[str, str] = {}


def write_history(conn: sqlite3.Connection, items: Sequence[Settle],
                  applied: Sequence[bool]) -> None:
    """The attempts that `items` end, in the caller's (the settle's) transaction."""
    attempts, rollups = history_rows(items, applied)
    if attempts:
        conn.executemany(_ATTEMPT, attempts)
        conn.executemany(_ROLLUP, [row.params() for row in rollups])
        conn.executemany(_WORKERS, worker_rollups(attempts))
        conn.executemany(_ERRORS, error_rollups(attempts))


def write_lost(conn: sqlite3.Connection, rescued: Sequence[tuple[Any, ...]],
               now: float) -> None:
    """Attempts whose worker died (rescued by maintenance), recorded as lost."""
    attempts = lost_rows(rescued, now)
    if attempts:
        conn.executemany(_ATTEMPT, attempts)
        conn.executemany(_ROLLUP, [row.params() for row in rollups_of(attempts)])
        conn.executemany(_WORKERS, worker_rollups(attempts))
        conn.executemany(_ERRORS, error_rollups(attempts))


def _statement(template: str) -> str:
    sql = _SQLITE.get(template)
    if sql is None:
        sql = _SQLITE[template] = hq.for_sqlite(template)
    return sql


class SQLiteHistory(HistoryReads):
    db: Connections

    async def _history_rows(self, template: str, params: dict[str, Any]) -> list[Any]:
        with self.db.read() as conn:
            return conn.execute(_statement(template), params).fetchall()

    async def _history_count(self, template: str, params: dict[str, Any]) -> int:
        with self.db.write() as conn:
            return int(conn.execute(_statement(template), params).rowcount)
