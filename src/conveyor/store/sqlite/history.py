"""The SQLite store's attempt history: rows written inside the settle's own transaction
into the pending table (INSERTs of up to CHUNK rows each; history_fold.py moves them into
the attempts and the rollups), and the statements the shared reads (store/history_reads.py)
run."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

from ...history.rollup import bucket
from .. import history_sql as hq
from ..base import Settle
from ..history_fold_sql import PENDING_COLUMNS
from ..history_reads import SLOW_KINDS, HistoryReads
from ..history_rows import PLAIN_COLUMNS, lost_rows, plain_params
from .connection import Connections
from .history_fold import SQLiteHistoryFold
from .history_tasks import every_tenant_days

_PENDING = ("INSERT INTO conveyor_attempts_pending (" + ", ".join(PENDING_COLUMNS)
            + ") VALUES (" + ", ".join("?" * len(PENDING_COLUMNS)) + ")")
# Rows per INSERT: one statement of many rows binds and steps once, where executemany steps
# once per row (25 rows of a drain's settle: -12 % of the insert's CPU; 100: -17 %, but
# each size's text is a statement of its own in the connection's cache: 25 is the bound).
CHUNK = 25


def _inserts(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The pending insert of `columns` for 0..CHUNK rows, by row count (0: unused)."""
    one = "(" + ", ".join("?" * len(columns)) + ")"
    head = "INSERT INTO conveyor_attempts_pending (" + ", ".join(columns) + ") VALUES "
    return ("", *(head + ", ".join([one] * n) for n in range(1, CHUNK + 1)))


_PENDING_ROWS = _inserts(PENDING_COLUMNS)
# an attempt with no error: 15 values bound, not 20 (the error columns stay NULL)
_PLAIN_ROWS = _inserts(PLAIN_COLUMNS)
_SQLITE: dict[str, str] = {}


def _JOINED(text: str) -> str:
    return f"group_concat({text}, ',')"


def insert_rows(conn: sqlite3.Connection, inserts: tuple[str, ...],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """`rows` by `inserts` (_inserts' statements), CHUNK rows per statement."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        conn.execute(inserts[len(chunk)], list(chain.from_iterable(chunk)))


def write_history(conn: sqlite3.Connection, items: Sequence[Settle],
                  applied: Sequence[bool]) -> None:
    """The attempts that `items` end, in the caller's (the settle's) transaction: pending
    rows only (no index, no rollup: the fold adds those). Attempts with no error go by a
    narrower insert (plain_params): binding
    the values is most of this insert's cost."""
    flat, plain, full = plain_params(items, applied)
    if plain:
        width = len(PLAIN_COLUMNS)
        for start in range(0, plain, CHUNK):  # insert_rows' chunks, from the flat values
            rows = min(CHUNK, plain - start)
            conn.execute(_PLAIN_ROWS[rows], flat[start * width:(start + rows) * width]
                         if plain > CHUNK else flat)
    if full:
        insert_rows(conn, _PENDING_ROWS, full)


def write_lost(conn: sqlite3.Connection, rescued: Sequence[tuple[Any, ...]],
               now: float) -> None:
    """Attempts whose worker died (rescued by maintenance), recorded as lost."""
    attempts = lost_rows(rescued, now)
    if attempts:
        conn.executemany(_PENDING, [(*row, bucket(row[10])) for row in attempts])


# Shared statements SQLite runs pinned to an index: with no statistics its planner takes
# the key's range of every queue (no lookup per row) over conveyor_error_rollups_queue
# (0028: not covering, a lookup in the key per row), 2-3x slower over 30 days; the workers
# read's running jobs by their covering index (0033), not conveyor_jobs_lease (a lookup each)
_PINNED = {
    hq.ERROR_GROUP_ROLLUPS_QUEUE: hq.ERROR_GROUP_ROLLUPS_QUEUE.replace(
        "FROM {schema}.conveyor_error_rollups\n",
        "FROM {schema}.conveyor_error_rollups INDEXED BY conveyor_error_rollups_queue\n", 1),
    hq.RUNNING_NOW: hq.RUNNING_NOW.replace(
        "FROM {schema}.conveyor_jobs\n",
        "FROM {schema}.conveyor_jobs INDEXED BY conveyor_jobs_running_ids\n", 1)}


def _statement(template: str) -> str:
    sql = _SQLITE.get(template)
    if sql is None:
        sql = _SQLITE[template] = hq.for_sqlite(_PINNED.get(template, template))
    return sql


class SQLiteHistory(SQLiteHistoryFold, HistoryReads):
    _task_rollups = (hq.task_rollups(lambda x: f"CAST({x} AS INTEGER)",
                                     tenant_index=" INDEXED BY conveyor_rollups_tenant",
                                     joined=_JOINED),
                     hq.task_rollups(lambda x: f"CAST({x} AS INTEGER)", every_tenant=True,
                                     joined=_JOINED),
                     # a tenant's day rows by their covering index (0031), partial: the
                     # statement names their width, not a parameter's
                     hq.task_rollups(lambda x: f"CAST({x} AS INTEGER)",
                                     tenant_index=" INDEXED BY conveyor_rollups_tenant_days",
                                     joined=_JOINED).replace(
                         "WHERE width = %(width)s AND", "WHERE width = 86400 AND", 1),
                     # every tenant's day rows summed per pair in their index's order (0033)
                     every_tenant_days())
    _queue_rollups = (hq.queue_rollups(lambda x: f"CAST({x} AS INTEGER)"),
                      hq.queue_rollups(lambda x: f"CAST({x} AS INTEGER)", every_tenant=True))
    # history_sql.slow per history_reads.SLOW_KINDS: (one tenant's, all tenants') each
    _slow = tuple(hq.slow(lambda x: f"CAST({x} AS INTEGER)", lateral=False, every_tenant=every,
                          kept=kept, named=named)
                  for kept, named in SLOW_KINDS for every in (False, True))
    db: Connections

    async def _history_rows(self, template: str, params: dict[str, Any]) -> list[Any]:
        with self.db.read() as conn:
            return conn.execute(_statement(template), params).fetchall()

    async def _history_count(self, template: str, params: dict[str, Any]) -> int:
        with self.db.write() as conn:
            return int(conn.execute(_statement(template), params).rowcount)
