"""A settle trip's writes on SQLite. A worker's trip is mostly completions: they are written
in one statement (queries.COMPLETE_MANY), not one UPDATE each, which took about a third of a
drain's store-thread CPU (bench/results/2026-12-06-perf.md). Every other outcome, and any
trip that names a job twice (its items must then apply in order), is written item by item.
Jobs are distinct rows, so the order between the completions and the rest does not matter.
The completions' counts are written as sums (count_sums.py), not by a trigger per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ..base import Complete, Settle
from . import queries as q
from .count_sums import deferred, move
from .rows import settle_statement

# completions per statement: 3 parameters each, well under SQLite's 32,766
_CHUNK = 500


def settle_rows(conn: sqlite3.Connection, items: Sequence[Settle], now: float
                ) -> list[Any]:
    """Each item's RETURNING row (id, state, queue, task, tenant, progress), or None where
    its lease no longer held the job; in the order of `items`."""
    completions = [i for i, item in enumerate(items) if type(item) is Complete]
    ids = {item.lease.job_id for item in items}
    if len(completions) < 2 or len(ids) != len(items):
        return [conn.execute(*settle_statement(item, now)).fetchone() for item in items]
    rows: list[Any] = [None] * len(items)
    for i, item in enumerate(items):
        if type(item) is not Complete:
            rows[i] = conn.execute(*settle_statement(item, now)).fetchone()
    for start in range(0, len(completions), _CHUNK):
        chunk = completions[start:start + _CHUNK]
        params: list[Any] = [now]
        for i in chunk:
            done = items[i]
            assert isinstance(done, Complete)
            params += (done.lease.job_id, done.lease.token, done.result)
        statement = q.COMPLETE_MANY.format(rows=", ".join(["(?, ?, ?)"] * len(chunk)))
        with deferred(conn):
            done_rows = conn.execute(statement, params).fetchall()
            move(conn, [(r[2], r[3], r[4]) for r in done_rows], "running", "completed",
                 finished_at=now, retried=[r[6] > 1 for r in done_rows])
        written = {row[0]: row for row in done_rows}
        for i in chunk:
            rows[i] = written.get(items[i].lease.job_id)
    return rows
