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
from ..history_fold_sql import (
    FINE_COLUMNS,
    WORKER_KEY,
    WORKER_KEY_COLUMNS,
    fine_tops_from_keys,
    fold_statements,
    slow_tops_statements,
    worker_keys_upsert,
    worker_rollups_all,
)
from ..history_sql import for_sqlite
from .connection import Connections

log = logging.getLogger("conveyor.store")

ANY_PENDING = "SELECT 1 FROM conveyor_attempts_pending LIMIT 1"
WATERMARK = """
SELECT max(rowid), count(*) FROM (
    SELECT rowid FROM conveyor_attempts_pending ORDER BY rowid LIMIT :limit)"""
_SOURCE = "(SELECT * FROM main.conveyor_attempts_pending WHERE rowid <= %(watermark)s) AS a"
_FLOOR = lambda x: f"CAST({x} AS INTEGER)"  # noqa: E731
# The pending rows counted once per (minute, task, queue, tenant, outcome, bucket, worker,
# error group) into a table of this connection's own (temp: never written to the file,
# gone with the connection; its rows go in the fold's transaction and are deleted before
# it commits), so the two task rollups (per tenant, all tenants), the worker and the error
# rollups read those few rows instead of grouping every pending row four times. Counted by
# an upsert on the key (worker_keys_upsert): no declared types, the values stay as the
# SELECT made them. A new name whenever the table's shape changes: a connection from
# before keeps its table.
KEYS = "temp.conveyor_fold_keys_tops"
CREATE_KEYS = (f"CREATE TEMP TABLE IF NOT EXISTS conveyor_fold_keys_tops "
               f"({', '.join(WORKER_KEY_COLUMNS)}, UNIQUE ({', '.join(WORKER_KEY)}))")
FILL_KEYS = for_sqlite(worker_keys_upsert(_SOURCE, _FLOOR, KEYS))
CLEAR_KEYS = f"DELETE FROM {KEYS}"
# The pending rows' tops per (tenant, 10-minute part, task, queue), grouped once into a
# table of this connection's own as KEYS, so the four upserts of the slow tops kept (0026
# per tenant and of every tenant, 0027 per task and queue) read those few rows instead of
# grouping every pending row four times (history_fold_sql.slow_tops_statements). Grouped
# from KEYS' rows (each with its key's slowest row), not from the pending rows: a second
# pass over every pending row (a sort of them all) was ~22 % of the fold's instructions
# (bench/results/2026-12-11-sqhist.md)
FINE = "temp.conveyor_fold_slow_tops"
CREATE_FINE = (f"CREATE TEMP TABLE IF NOT EXISTS conveyor_fold_slow_tops "
               f"({', '.join(FINE_COLUMNS)})")
CLEAR_FINE = f"DELETE FROM {FINE}"
FOLD = tuple(for_sqlite(sql) for sql in (
    *fold_statements(_SOURCE, _FLOOR, keys=KEYS, worker_keys=True), worker_rollups_all(KEYS),
    fine_tops_from_keys(KEYS, FINE), *slow_tops_statements(FINE)))
DROP_PENDING = "DELETE FROM conveyor_attempts_pending WHERE rowid <= :watermark"
# When the watermark's read found fewer rows than its limit, every pending row is at or below
# it (no settle can add one inside this transaction): a DELETE with no WHERE empties the
# table by its pages (SQLite's truncate optimization; no trigger on the table) instead of
# row by row: 0.21 -> 0.03 µs/row of a 2,000-row fold
DROP_ALL_PENDING = "DELETE FROM conveyor_attempts_pending"


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
                    conn.execute(CREATE_KEYS)
                    conn.execute(CLEAR_KEYS)  # empty already: a failed fold rolled back
                    conn.execute(CREATE_FINE)
                    conn.execute(CLEAR_FINE)
                    conn.execute(FILL_KEYS, {"watermark": watermark})
                    for sql in FOLD:
                        conn.execute(sql, {"watermark": watermark})
                    if count < limit:
                        conn.execute(DROP_ALL_PENDING)
                    else:
                        conn.execute(DROP_PENDING, {"watermark": watermark})
                    conn.execute(CLEAR_KEYS)
                    conn.execute(CLEAR_FINE)
        except StoreUnavailable as exc:
            if "readonly" not in str(exc):
                raise
            self._history_fold_refused = True
            log.info("this store cannot fold the attempt history (%s): reads show what the "
                     "workers' maintenance folded", exc)
            return 0
        return int(count)
