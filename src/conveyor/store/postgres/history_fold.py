"""The PostgreSQL store's history fold: pending attempt rows (a settle's only history write,
history.py) moved into conveyor_attempts and added to the minute/hour/day, worker and
error-group rollups (per tenant and queue, and all tenants' per task: 0023), in one
statement.

Exactly once, whoever folds: one fold at a time per pending table (a transaction-scoped
advisory lock; a fold that finds it held moves nothing), the rows deleted by ctid with
`RETURNING`, and only what this DELETE returned feeds the attempts insert and the rollup
upserts. A row is therefore inserted and counted by the one transaction that deleted it
(a row a prune deleted meanwhile is not returned); if that transaction rolls back, the row
stays pending for the next fold. The rollups are upserted grouped in key order, so folds
lock rollup rows in one order (no deadlock).
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import psycopg

from ..history_fold_sql import (
    fine_top_rows,
    fold_statements,
    slow_tops_from,
    worker_keys_select,
    worker_rollups_all,
)
from ..history_reads import FOLD_BATCH
from .connection import LoopPools
from .vacuums import vacuum_at_most_every

log = logging.getLogger("conveyor.store")
# the first key of the fold's advisory lock (the second: the pending table's oid)
FOLD_LOCK_KEY = 0x636F6E76  # "conv"
Rows = list[tuple[Any, ...]]


def _floor(x: str) -> str:
    return f"floor({x})::int8"


_PENDING = "{schema}.conveyor_attempts_pending"
# the fold's advisory lock: (FOLD_LOCK_KEY, the pending table's oid); the schema is letters,
# digits and _ (connection.py): safe inside the literal
_LOCK = f"{FOLD_LOCK_KEY}, CAST(CAST('{_PENDING}' AS regclass) AS oid)::int4"
_ATTEMPTS, _ROLLUPS, _WORKERS, _ERRORS, _ALL_ROLLUPS, _ALL_ERRORS = fold_statements(
    "a", _floor, keys="k", worker_keys=True)
_SLOW_TOPS, _SLOW_TOPS_ALL, _NAMED_TOPS, _NAMED_TOPS_ALL = slow_tops_from("top_rows")

# One statement. One fold at a time per pending table: a transaction-scoped advisory lock
# on the table (tried once, as the scan's one-time filter), not a lock on every row it
# takes (FOR UPDATE SKIP LOCKED wrote a WAL record and dirtied the row's page for each row,
# then the DELETE did again: 0.2 MB of WAL per 4,000 rows). A fold that finds the lock held
# moves nothing (another is folding). The rows taken (by ctid, a TID scan) are deleted with
# RETURNING, and only what this DELETE returned is inserted and counted: a row some other
# transaction deleted meanwhile (a prune) is not returned, so each row is still counted
# once, by the transaction that deleted it. The rollups read `k`, the rows counted once
# per worker key (a few rows), not every row once per rollup.
FOLD_HISTORY = (
    f"WITH a AS (DELETE FROM {_PENDING} WHERE ctid = ANY(ARRAY("
    f"SELECT ctid FROM {_PENDING} WHERE (SELECT pg_try_advisory_xact_lock({_LOCK})) "
    f"LIMIT %(limit)s)) RETURNING *),\n"
    f"attempts AS ({_ATTEMPTS}),\nk AS ({worker_keys_select('a', _floor)}),\n"
    f"rollups AS ({_ROLLUPS}),\nworkers AS ({_WORKERS}),\n"
    f"errors AS ({_ERRORS}),\nall_rollups AS ({_ALL_ROLLUPS}),\n"
    f"all_errors AS ({_ALL_ERRORS}),\nall_workers AS ({worker_rollups_all('k')}),\n"
    f"top_rows AS ({fine_top_rows('a', _floor)}),\n"
    f"slow_tops AS ({_SLOW_TOPS}),\n"
    f"slow_tops_all AS ({_SLOW_TOPS_ALL}),\n"
    f"named_tops AS ({_NAMED_TOPS}),\nnamed_tops_all AS ({_NAMED_TOPS_ALL})\n"
    "SELECT count(*) FROM a")



def fold_of(limit: int) -> str:
    """FOLD_HISTORY with its limit written in: a statement with no parameters, prepared on
    each connection the first time it folds (`prepare=True`) and planned once there, a
    generic plan (the server plans a custom plan only for a statement with parameters). It
    was sent unprepared (psycopg prepares a statement at its fifth use on a connection, and
    folds come about once a second on any of the pool's): parsed and planned at every fold,
    a plan of some 200 nodes, which cost more server time than the fold's work at a drain's
    fold of ~1,000 rows (bench/results/2026-12-08-pgdrain.md)."""
    return FOLD_HISTORY.replace("%(limit)s", str(int(limit)))


# A fold that must not skip (before a read that must see every attempt): wait for the fold
# under way, in the transaction of the fold that follows. That fold's statement then starts
# (and takes its snapshot) after the other's commit, and its try of the lock succeeds: the
# session holds it already.
WAIT_FOR_FOLD = f"SELECT pg_advisory_xact_lock({_LOCK})"
# A fold that may skip tries the lock in a statement of its own first, for the same reason: a
# fold statement that took its snapshot while another fold held the lock, and then found it
# free (that fold committed in between), took the rows that fold had just deleted (still
# there in its snapshot), deleted none of them and moved nothing while rows were pending.
TRY_FOLD = f"SELECT pg_try_advisory_xact_lock({_LOCK})"

# Every fold leaves the rows it took dead in the pending table, and a read of the pending tail
# (every analytics read sums it) walks them until a vacuum: 1.09M folded rows cost such reads
# 60-95 ms to find nothing (bench/results/2026-12-06-errroll.md). Autovacuum may be slower, or
# off (it is on this project's test server). So the store vacuums the table itself after a
# fold that moved anything, at most every VACUUM_PENDING_EVERY seconds; a vacuum that would
# wait for a lock is skipped, and one that finds the table empty gives its pages back.
VACUUM_PENDING_EVERY = 2.0
VACUUM_PENDING = f"VACUUM (SKIP_LOCKED) {_PENDING}"
# The attempts only grow (and are pruned by age): autovacuum visits such a table after 20 %
# more rows, so the newest hour, which the error and slow reads read most, is never marked
# all-visible and each of its index entries costs a heap visit (errors 1h at 1.09M rows: 88 ms
# as a bitmap heap scan, 11 ms as an index-only scan). A vacuum every minute marks the new
# pages; it reads only the pages not yet all-visible.
VACUUM_ATTEMPTS_EVERY = 60.0
VACUUM_ATTEMPTS = "VACUUM (SKIP_LOCKED) {schema}.conveyor_attempts"


class HistoryFold:
    """A part of PostgresStore (store.py)."""

    _history_fold_refused = False  # set on the instance when its role may not write

    if TYPE_CHECKING:  # PostgresStore's own
        pools: LoopPools

        def statement(self, template: str) -> str: ...

        async def _one(self, template: str, params: dict[str, Any] | None = None,
                       tenant: str | None = None) -> Rows: ...

        def _session(self, tenant: str | None = None, atomic: bool = False
                     ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

        async def _run(self, conn: psycopg.AsyncConnection[Any], template: str,
                       params: dict[str, Any] | None = None) -> None: ...

        async def _fetch(self, conn: psycopg.AsyncConnection[Any], template: str,
                         params: dict[str, Any] | None = None) -> Rows: ...

    async def fold_history(self, limit: int = FOLD_BATCH) -> int:
        """Move up to `limit` pending attempt rows into the attempts and the rollups; how
        many moved (0 while another fold is under way). A role that may not write them (a
        read-only one) folds nothing: the workers' maintenance does it, and this store's
        reads skip it from then on."""
        return await self._fold(limit, wait=False)

    async def _fold_pending(self) -> None:
        """Fold every pending row before a read that must see every attempt (job_attempts,
        pruning): each batch waits for a fold under way (maintenance's) to commit rather
        than skip, so the read misses none of the rows that fold took."""
        while await self._fold(FOLD_BATCH, wait=True) >= FOLD_BATCH:
            pass

    async def _fold(self, limit: int, wait: bool) -> int:
        if self._history_fold_refused:
            return 0
        fold = self.statement(fold_of(limit))
        prepare = True if self.pools.url.prepare else None  # not behind PgBouncer's pooling
        try:
            async with self._session(atomic=True) as conn:
                if wait:
                    await self._run(conn, WAIT_FOR_FOLD)
                elif not (await (await conn.execute(self.statement(TRY_FOLD))).fetchall()
                          )[0][0]:
                    return 0  # another fold is under way
                cursor = await conn.execute(fold, prepare=prepare)
                [(moved,)] = await cursor.fetchall()
        except psycopg.errors.InsufficientPrivilege as exc:
            self._history_fold_refused = True
            log.info("this role cannot fold the attempt history (%s): reads show what the "
                     "workers' maintenance folded", str(exc).strip())
            return 0
        if moved:
            await vacuum_at_most_every(self, VACUUM_PENDING, VACUUM_PENDING_EVERY)
            await vacuum_at_most_every(self, VACUUM_ATTEMPTS, VACUUM_ATTEMPTS_EVERY)
        return int(moved)
