"""The SQLite store's history fold: pending attempt rows (a settle's only history write,
history.py) moved into conveyor_attempts and added to the minute/hour/day, worker and
error-group rollups, in one write transaction up to a rowid watermark.

Exactly once: SQLite has one writer at a time (BEGIN IMMEDIATE), and the rows read, the
attempts and rollups written and the pending rows up to the watermark deleted all commit
together or not at all. Rows a settle adds meanwhile wait for the next fold (their rowid is
above the watermark: pending rows are only ever appended, so rowids only grow).
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import StoreUnavailable
from .. import history_sql as hq
from ..history_rows import error_rollups, rollups_of, worker_rollups
from .connection import Connections

log = logging.getLogger("conveyor.store")

_COLUMNS = ", ".join(hq.ATTEMPT_COLUMNS)
ANY_PENDING = "SELECT 1 FROM conveyor_attempts_pending LIMIT 1"
TAKE_PENDING = (f"SELECT rowid, {_COLUMNS} FROM conveyor_attempts_pending "
                "ORDER BY rowid LIMIT ?")
DROP_PENDING = "DELETE FROM conveyor_attempts_pending WHERE rowid <= ?"
INSERT_ATTEMPT = (f"INSERT INTO conveyor_attempts ({_COLUMNS}) VALUES ("
                  + ", ".join("?" * len(hq.ATTEMPT_COLUMNS)) + ")")


def _positional(template: str, columns: tuple[str, ...]) -> str:
    sql = hq.for_sqlite(template)
    for column in columns:  # positional: the rows are tuples
        sql = sql.replace(f":{column},", "?,").replace(f":{column})", "?)")
    return sql


UPSERT_ROLLUP = _positional(hq.UPSERT_ROLLUP, hq.ROLLUP_COLUMNS)
UPSERT_WORKERS = _positional(hq.UPSERT_WORKER_ROLLUP, hq.WORKER_ROLLUP_COLUMNS)
UPSERT_ERRORS = _positional(hq.UPSERT_ERROR_ROLLUP, hq.ERROR_ROLLUP_COLUMNS)


class SQLiteHistoryFold:
    """A part of SQLiteStore (store.py)."""

    db: Connections
    _history_fold_refused = False  # set on the instance when its file may not be written

    async def fold_history(self, limit: int = 10_000) -> int:
        """Move up to `limit` pending attempt rows into the attempts and the rollups; how
        many moved. Looks first on a read connection, so an idle fold takes no write lock."""
        if self._history_fold_refused:
            return 0
        with self.db.read() as conn:
            if conn.execute(ANY_PENDING).fetchone() is None:
                return 0
        try:
            with self.db.write() as conn:
                rows = conn.execute(TAKE_PENDING, (limit,)).fetchall()
                if rows:
                    self._move(conn, rows)
        except StoreUnavailable as exc:
            if "readonly" not in str(exc):
                raise
            self._history_fold_refused = True
            log.info("this store cannot fold the attempt history (%s): reads show what the "
                     "workers' maintenance folded", exc)
            return 0
        return len(rows)

    @staticmethod
    def _move(conn: Any, rows: list[Any]) -> None:
        attempts = [row[1:] for row in rows]
        conn.executemany(INSERT_ATTEMPT, attempts)
        conn.executemany(UPSERT_ROLLUP, [row.params() for row in rollups_of(attempts)])
        conn.executemany(UPSERT_WORKERS, worker_rollups(attempts))
        conn.executemany(UPSERT_ERRORS, error_rollups(attempts))
        conn.execute(DROP_PENDING, (rows[-1][0],))
