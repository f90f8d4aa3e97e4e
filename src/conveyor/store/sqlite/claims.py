"""An unlimited claim on SQLite: one UPDATE ... RETURNING over one queue's index, or over the
best candidates of several queues, its count changes written as sums (count_sums.py, every
row goes from queued to running) rather than by a trigger per claimed job: the statements'
_SUMMED forms flip each claimed row's count_mark, for which the trigger stands aside."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from . import queries as q
from .count_sums import Sums
from .rows import best_candidates


def claim_rows(conn: sqlite3.Connection, names: Sequence[str], params: dict[str, Any],
               limit: int, sums: Sums) -> list[Any]:
    """The claimed jobs' rows (queries.CLAIM_ONE_QUEUE's columns), in the caller's write
    transaction; their count changes go to `sums`, which the caller writes. Adding them is
    the claim's last step: a claim that fails (its savepoint undone) has added nothing."""
    if len(names) == 1:
        statement = q.CLAIM_ONE_QUEUE_SUMMED
        values = {**params, "queue": names[0], "limit": limit}
    else:
        ids = best_candidates(conn, names, params["now"], limit)
        if not ids:
            return []
        statement, values = q.CLAIM_IDS_SUMMED, {**params, "ids": orjson.dumps(ids).decode()}
    rows = conn.execute(statement, values).fetchall()
    sums.move([(r[2], r[1], r[7]) for r in rows], "queued", "running")
    return rows
