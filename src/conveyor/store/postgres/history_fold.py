"""The PostgreSQL store's history fold: pending attempt rows (a settle's only history write,
history.py) moved into conveyor_attempts and added to the minute/hour/day, worker and
error-group rollups, in one statement.

Exactly once, whoever folds: the rows are taken by `FOR UPDATE SKIP LOCKED` (a concurrent
fold skips them) and deleted by ctid with `RETURNING`, and only what this DELETE returned
feeds the attempts insert and the rollup upserts. A row is therefore inserted and counted
by the one transaction that deleted it; if that transaction rolls back, the row stays
pending for the next fold. The rollups are upserted grouped in key order, so concurrent
folds lock rollup rows in one order (no deadlock).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psycopg

from ...history.records import Outcome
from ...history.rollup import BUCKETS, OUTCOMES
from .. import history_sql as hq

log = logging.getLogger("conveyor.store")
Rows = list[tuple[Any, ...]]

_FAILED = "a.outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES if Outcome(o).failed) + ")"


def _head(upsert: str) -> str:
    return upsert.split(" VALUES ")[0]


def _tail(upsert: str) -> str:
    return "ON CONFLICT " + upsert.split(" ON CONFLICT ")[1]


def _fold_statement() -> str:
    sums = ", ".join([f"count(*) FILTER (WHERE a.outcome = '{o}')" for o in OUTCOMES]
                     + ["sum(a.duration)"]
                     + [f"count(*) FILTER (WHERE a.bucket = {i})" for i in range(BUCKETS)])
    at = "floor(a.ended_at / w.width)::int8 * w.width / 60"
    pending = "{schema}.conveyor_attempts_pending"
    return (
        f"WITH a AS (DELETE FROM {pending} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {pending} LIMIT %(limit)s FOR UPDATE SKIP LOCKED)) RETURNING *),\n"
        f"attempts AS (INSERT INTO {{schema}}.conveyor_attempts "
        f"({', '.join(hq.ATTEMPT_COLUMNS)}) SELECT {', '.join(hq.ATTEMPT_COLUMNS)} FROM a),\n"
        f"rollups AS ({_head(hq.UPSERT_ROLLUP)} SELECT w.width, {at}, a.task, a.queue, "
        f"coalesce(a.tenant, ''), {sums} "
        "FROM a CROSS JOIN (VALUES (60::int8), (3600), (86400)) AS w(width) "
        f"GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 {_tail(hq.UPSERT_ROLLUP)}),\n"
        f"workers AS ({_head(hq.UPSERT_WORKER_ROLLUP)} SELECT floor(a.ended_at / 3600)::int8, "
        "a.worker_id, coalesce(a.tenant, ''), max(a.host), max(a.pid), count(*), "
        f"count(*) FILTER (WHERE {_FAILED}), sum(a.duration), sum(coalesce(a.cpu, 0)), "
        "max(a.rss) FROM a WHERE a.worker_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
        f"{_tail(hq.UPSERT_WORKER_ROLLUP)}),\n"
        f"errors AS ({_head(hq.UPSERT_ERROR_ROLLUP)} SELECT w.width, {at}, a.fingerprint, "
        "a.task, a.queue, coalesce(a.tenant, ''), count(*), min(a.ended_at), max(a.ended_at) "
        "FROM a CROSS JOIN (VALUES (3600::int8), (86400)) AS w(width) "
        "WHERE a.fingerprint IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6 "
        f"ORDER BY 1, 2, 3, 4, 5, 6 {_tail(hq.UPSERT_ERROR_ROLLUP)})\n"
        "SELECT count(*) FROM a")


FOLD_HISTORY = _fold_statement()


class HistoryFold:
    """A part of PostgresStore (store.py)."""

    _history_fold_refused = False  # set on the instance when its role may not write

    if TYPE_CHECKING:  # PostgresStore's own
        async def _one(self, template: str, params: dict[str, Any] | None = None,
                       tenant: str | None = None) -> Rows: ...

    async def fold_history(self, limit: int = 10_000) -> int:
        """Move up to `limit` pending attempt rows into the attempts and the rollups; how
        many moved. A role that may not write them (a read-only one) folds nothing: the
        workers' maintenance does it, and this store's reads skip it from then on."""
        if self._history_fold_refused:
            return 0
        try:
            [(moved,)] = await self._one(FOLD_HISTORY, {"limit": limit})
        except psycopg.errors.InsufficientPrivilege as exc:
            self._history_fold_refused = True
            log.info("this role cannot fold the attempt history (%s): reads show what the "
                     "workers' maintenance folded", str(exc).strip())
            return 0
        return int(moved)
