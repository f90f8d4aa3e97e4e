"""The SQLite store's history fold: the attempt rows a settle wrote straight into
conveyor_attempts (history.py) added to the minute/hour/day, worker and error-group rollups,
from a watermark (conveyor_attempts_folded, migration 0017: the highest id counted) up to
`limit` rows on, in one write transaction, in SQL alone (the rows never come back to Python).

Exactly once: SQLite has one writer at a time (BEGIN IMMEDIATE); the watermark read, the
rollups written and the watermark moved commit together or not at all, and no settle can
insert in between. Rows whose `bucket` is NULL were counted before 0017 (or by an older
worker's fold, which inserts them counted): skipped. Pending rows an older worker still
writes (conveyor_attempts_pending) are moved into conveyor_attempts first, in the same
transaction, and counted with the rest. Pruning deletes counted rows only, then lowers the
watermark to the highest id left (PRUNE_FIXUP), so an id SQLite hands out again after the
table's top rows went is still above the watermark.
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import StoreUnavailable
from ..history_fold_sql import PENDING_COLUMNS, fold_statements
from ..history_sql import for_sqlite
from .connection import Connections

log = logging.getLogger("conveyor.store")

UNFOLDED = ("main.conveyor_attempts WHERE id > (SELECT upto FROM main.conveyor_attempts_folded)"
            " AND bucket IS NOT NULL")
# Anything for the fold: rows past the watermark (to count, or to pass over), or an older
# worker's pending rows
ANY_UNFOLDED = ("SELECT EXISTS (SELECT 1 FROM main.conveyor_attempts WHERE id > "
                "(SELECT upto FROM main.conveyor_attempts_folded)) "
                "OR EXISTS (SELECT 1 FROM main.conveyor_attempts_pending)")
# An older worker's pending rows, moved in (bucket and all: counted below, as new rows)
PENDING_WATERMARK = """
SELECT max(rowid) FROM (
    SELECT rowid FROM conveyor_attempts_pending ORDER BY rowid LIMIT :limit)"""
MOVE_PENDING = (
    f"INSERT INTO conveyor_attempts ({', '.join(PENDING_COLUMNS)}) "
    f"SELECT {', '.join(PENDING_COLUMNS)} FROM conveyor_attempts_pending "
    "WHERE rowid <= :watermark ORDER BY rowid")
DROP_PENDING = "DELETE FROM conveyor_attempts_pending WHERE rowid <= :watermark"
WATERMARK = """
SELECT (SELECT upto FROM conveyor_attempts_folded), max(id), count(*) FROM (
    SELECT id FROM conveyor_attempts
    WHERE id > (SELECT upto FROM conveyor_attempts_folded) ORDER BY id LIMIT :limit)"""
ROLLUPS = tuple(for_sqlite(sql) for sql in fold_statements(
    "(SELECT * FROM main.conveyor_attempts WHERE id > %(low)s AND id <= %(high)s "
    "AND bucket IS NOT NULL) AS a", lambda x: f"CAST({x} AS INTEGER)")[1:])
MOVE_WATERMARK = "UPDATE conveyor_attempts_folded SET upto = :high"
# After pruning (counted rows only): the watermark down to the highest id left
PRUNE_FIXUP = """
UPDATE conveyor_attempts_folded
SET upto = (SELECT coalesce(max(id), 0) FROM conveyor_attempts)
WHERE upto > (SELECT coalesce(max(id), 0) FROM conveyor_attempts)"""


def fold(conn: Any, limit: int) -> int:
    """In the caller's write transaction: move up to `limit` pending rows in, then count up
    to `limit` rows past the watermark; how many were counted."""
    [pending] = conn.execute(PENDING_WATERMARK, {"limit": limit}).fetchone()
    if pending is not None:
        conn.execute(MOVE_PENDING, {"watermark": pending})
        conn.execute(DROP_PENDING, {"watermark": pending})
    low, high, count = conn.execute(WATERMARK, {"limit": limit}).fetchone()
    if count:
        for sql in ROLLUPS:
            conn.execute(sql, {"low": low, "high": high})
        conn.execute(MOVE_WATERMARK, {"high": high})
    return int(count)


class SQLiteHistoryFold:
    """A part of SQLiteStore (store.py)."""

    db: Connections
    _history_fold_refused = False  # set on the instance when its file may not be written

    async def fold_history(self, limit: int = 10_000) -> int:
        """Add up to `limit` attempt rows past the watermark to the rollups; how many. Looks
        first on a read connection, so an idle fold takes no write lock."""
        if self._history_fold_refused:
            return 0
        with self.db.read() as conn:
            if not conn.execute(ANY_UNFOLDED).fetchone()[0]:
                return 0
        try:
            with self.db.write() as conn:
                return fold(conn, limit)
        except StoreUnavailable as exc:
            if "readonly" not in str(exc):
                raise
            self._history_fold_refused = True
            log.info("this store cannot fold the attempt history (%s): reads show what the "
                     "workers' maintenance folded", exc)
            return 0
