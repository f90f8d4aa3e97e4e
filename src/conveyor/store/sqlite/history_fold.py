"""The SQLite store's history fold: pending attempt rows (a settle's only history write,
history.py) moved into conveyor_attempts and added to the minute/hour/day, worker and
error-group rollups, in one write transaction up to a rowid watermark, in SQL alone (the
rows never come back to Python).

Exactly once: SQLite has one writer at a time (BEGIN IMMEDIATE), and the watermark read,
the attempts and rollups written and the pending rows up to the watermark deleted all
commit together or not at all; no settle can insert in between. The watermark never
outlives its transaction, so rowids reused after the table empties do not matter.
"""

from __future__ import annotations

import logging

from ...errors import StoreUnavailable
from ..history_fold_sql import fold_statements
from ..history_sql import for_sqlite
from .connection import Connections

log = logging.getLogger("conveyor.store")

ANY_PENDING = "SELECT 1 FROM conveyor_attempts_pending LIMIT 1"
WATERMARK = """
SELECT max(rowid), count(*) FROM (
    SELECT rowid FROM conveyor_attempts_pending ORDER BY rowid LIMIT :limit)"""
FOLD = tuple(for_sqlite(sql) for sql in fold_statements(
    "(SELECT * FROM main.conveyor_attempts_pending WHERE rowid <= %(watermark)s) AS a",
    lambda x: f"CAST({x} AS INTEGER)"))
DROP_PENDING = "DELETE FROM conveyor_attempts_pending WHERE rowid <= :watermark"


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
                watermark, count = conn.execute(WATERMARK, {"limit": limit}).fetchone()
                if count:
                    for sql in (*FOLD, DROP_PENDING):
                        conn.execute(sql, {"watermark": watermark})
        except StoreUnavailable as exc:
            if "readonly" not in str(exc):
                raise
            self._history_fold_refused = True
            log.info("this store cannot fold the attempt history (%s): reads show what the "
                     "workers' maintenance folded", exc)
            return 0
        return int(count)
