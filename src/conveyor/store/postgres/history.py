"""The PostgreSQL store's attempt history: the attempt rows of a settle go into the pending
table inside the settle's own statements (each kind's UPDATE carries the rows of its items
as one more CTE: no statement, transaction or round trip of their own; history_fold.py
moves them into the attempts and the rollups); the rescue's lost attempts; and the
statements the shared reads (store/history_reads.py) run."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import psycopg

from ...history.rollup import bucket
from .. import history_sql as hq
from ..base import Settle
from ..history_fold_sql import PENDING_COLUMNS
from ..history_reads import SLOW_KINDS, HistoryReads
from ..history_rows import lost_rows, pending_rows
from .counters import NO_JIT
from .history_fold import HistoryFold

Rows = list[tuple[Any, ...]]


class _Statements(Protocol):
    def statement(self, template: str) -> str: ...


def settled_rows(items: Sequence[Settle]) -> str | None:
    """The attempt rows that `items` (one settle kind's) end, as the `rows` parameter of
    that kind's statement with_history; None when no item carries a record."""
    rows = pending_rows(items)
    return orjson.dumps(rows).decode() if rows else None


def with_history(settle: str) -> str:
    """`settle` (a queries.with_feed statement: `WITH changed AS (UPDATE ... RETURNING
    job.id ...), feed AS (...) SELECT ...`) that also inserts the pending attempt rows of
    the jobs it changed: only the items that applied (a stale item's lease had moved on, its
    attempt is another worker's to record), written or not with the settle itself."""
    head, select, tail = settle.rpartition("\nSELECT ")
    assert head.startswith("WITH changed AS ("), settle
    return head + _HISTORY + select + tail


async def write_lost(store: _Statements, conn: psycopg.AsyncConnection[Any],
                     rescued: Rows) -> None:
    """Attempts whose worker died (rescued by maintenance), recorded as lost. `rescued`:
    the rescue's rows (feed columns, then attempt, worker_id, worker_host, started_at, at)."""
    rows = []
    for at, group in _by_time(rescued).items():
        rows += lost_rows([(r[0], r[6], r[3], r[2], r[4], r[7], r[8], r[9]) for r in group], at)
    if rows:
        await conn.execute(store.statement(RECORD_LOST), {
            "rows": orjson.dumps([(*row, bucket(row[10])) for row in rows]).decode()})


def _by_time(rows: Rows) -> dict[float, Rows]:
    out: dict[float, Rows] = {}
    for row in rows:
        out.setdefault(float(row[10]), []).append(row)
    return out


_ATTEMPT_TYPES = ("text", "int4", "text", "text", "text", "text", "text", "int4", "float8",
                  "float8", "float8", "text", "text", "text", "text", "text", "text", "float8",
                  "int8", "int4")
_PARSED = ("WITH parsed AS (SELECT " + ", ".join(
    f"(e->>{i})::{t} AS {c}" for i, (c, t) in enumerate(zip(PENDING_COLUMNS, _ATTEMPT_TYPES,
                                                           strict=True)))
    + " FROM jsonb_array_elements(%(rows)s::jsonb) AS e)\n")
_INTO_PENDING = ("INSERT INTO {schema}.conveyor_attempts_pending ("
                 + ", ".join(PENDING_COLUMNS) + ")\n")

# The settled attempts, into the pending rows only (history_fold.py moves them on): those
# of the jobs the settle's own UPDATE returned (`changed`, in memory: no index lookup).
# jsonb, not json: `->>` on json re-parses the element per column.
_HISTORY = (",\n" + _PARSED.removeprefix("WITH ").rstrip("\n") + ",\nhistory AS ("
            + _INTO_PENDING + "SELECT * FROM parsed WHERE job_id IN (SELECT id FROM changed))")
RECORD_LOST = _PARSED + _INTO_PENDING + "SELECT * FROM parsed"


# Every group's attempt at its last-seen time, in one statement (errors index lookups)
GROUPS_NEWEST = """
SELECT DISTINCT ON (a.fingerprint) a.fingerprint, a.error_type, a.error_message, a.job_id
FROM unnest(%(fingerprints)s::text[], %(lasts)s::float8[]) AS g(fingerprint, last)
JOIN {schema}.conveyor_attempts AS a ON a.fingerprint = g.fingerprint AND a.ended_at = g.last
WHERE (%(tenant)s::text IS NULL OR a.tenant = %(tenant)s)
ORDER BY a.fingerprint"""


# Sent first in the tasks read's transaction (PostgresHistory._task_rows): its groupings by
# hashing, not sorting. set_config(..., true): this transaction only.
NO_SORT = "SELECT set_config('enable_sort', 'off', true)"


class PostgresHistory(HistoryFold, HistoryReads):
    _task_rollups = (hq.task_rollups(lambda x: f"floor({x})::int8"),
                     hq.task_rollups(lambda x: f"floor({x})::int8", every_tenant=True),
                     hq.task_rollups(lambda x: f"floor({x})::int8"),
                     hq.task_rollups(lambda x: f"floor({x})::int8", every_tenant=True))
    _queue_rollups = (hq.queue_rollups(lambda x: f"floor({x})::int8"),
                      hq.queue_rollups(lambda x: f"floor({x})::int8", every_tenant=True))
    # history_sql.slow per history_reads.SLOW_KINDS: (one tenant's, all tenants') each
    _slow = tuple(hq.slow(lambda x: f"floor({x})::int8", lateral=True, every_tenant=every,
                          kept=kept, named=named)
                  for kept, named in SLOW_KINDS for every in (False, True))
    if TYPE_CHECKING:  # PostgresStore's own
        async def _one(self, template: str, params: dict[str, Any] | None = None,
                       tenant: str | None = None) -> Rows: ...

        async def _count(self, template: str, params: dict[str, Any]) -> int: ...

        def _session(self, tenant: str | None = None, atomic: bool = False
                     ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

        async def _fetch(self, conn: psycopg.AsyncConnection[Any], template: str,
                         params: dict[str, Any] | None = None) -> Rows: ...

    async def _slow_rows(self, params: dict[str, Any]) -> Rows:
        """The slow read with no JIT compilation (counters.NO_JIT, this transaction only):
        the planner guesses 1,000 parts for a generate_series whose ends are not constants,
        so a tenant's read passes jit_above_cost however short the range: 1-5 ms of
        execution behind 220-350 ms of compiling (slowidx's hourly read, 200,000 attempts,
        tests/postgres/test_explain_analytics.py's)."""
        async with self._session(None, atomic=True) as conn:
            await self._fetch(conn, NO_JIT, {})
            return await self._fetch(conn, self._slow_statement(params), params)

    async def _task_rows(self, template: str, params: dict[str, Any]) -> Rows:
        """The tasks read with no sort (NO_SORT, this transaction only): the planner guesses
        that a range of the pending rows keeps a few of them (their table churns: its
        statistics are of some moment's rows) and groups them by sorting, by five keys,
        text ones collated: 20,000 pending rows cost 30-50 ms so, a hash a third of that."""
        async with self._session(None, atomic=True) as conn:
            await self._fetch(conn, NO_SORT, {})
            return await self._fetch(conn, template, params)

    async def _history_rows(self, template: str, params: dict[str, Any]) -> Rows:
        return await self._one(template, params)

    async def _history_count(self, template: str, params: dict[str, Any]) -> int:
        return await self._count(template, params)

    async def _newest(self, groups: list[tuple[str, float]],
                      tenant: str | None) -> dict[str, tuple[Any, ...]]:
        if not groups:
            return {}
        rows = await self._one(GROUPS_NEWEST, {"fingerprints": [g[0] for g in groups],
                                               "lasts": [g[1] for g in groups],
                                               "tenant": tenant})
        return await self._pending_newest(groups, {row[0]: row for row in rows}, tenant)
