"""The PostgreSQL store's attempt history: rows written inside the settle's own transaction
(pipelined with it: no extra round trip before the commit), and the statements the shared
reads (store/history_reads.py) run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import psycopg

from ...history.rollup import BUCKETS, OUTCOMES
from .. import history_sql as hq
from ..base import Settle
from ..history_reads import HistoryReads
from ..history_rows import (
    error_rollups,
    history_rows,
    lost_rows,
    rollups_of,
    worker_rollups,
)

Rows = list[tuple[Any, ...]]


class _Statements(Protocol):
    def statement(self, template: str) -> str: ...


async def write_history(store: _Statements, conn: psycopg.AsyncConnection[Any],
                        items: Sequence[Settle], applied: Sequence[bool]) -> None:
    """The attempts that `items` end, in the caller's (the settle's) transaction."""
    attempts, rollups = history_rows(items, applied)
    await _write(store, conn, attempts, [row.params() for row in rollups])


async def write_lost(store: _Statements, conn: psycopg.AsyncConnection[Any],
                     rescued: Rows) -> None:
    """Attempts whose worker died (rescued by maintenance), recorded as lost. `rescued`:
    the rescue's rows (feed columns, then attempt, worker_id, worker_host, started_at, at)."""
    for at, group in _by_time(rescued).items():
        attempts = lost_rows([(r[0], r[6], r[3], r[2], r[4], r[7], r[8], r[9])
                              for r in group], at)
        await _write(store, conn, attempts, [row.params() for row in rollups_of(attempts)])


def _by_time(rows: Rows) -> dict[float, Rows]:
    out: dict[float, Rows] = {}
    for row in rows:
        out.setdefault(float(row[10]), []).append(row)
    return out


async def _write(store: _Statements, conn: psycopg.AsyncConnection[Any],
                 attempts: list[tuple[Any, ...]], rollups: list[tuple[Any, ...]]) -> None:
    """Two statements whatever the batch's size, each with one parameter: the rows as one
    JSON array of arrays (orjson writes it in C; the server takes it apart), which costs
    the client far less than a parameter per row or per column."""
    if not attempts:
        return
    await conn.execute(store.statement(INSERT_ATTEMPTS), {"rows": orjson.dumps(attempts)
                                                          .decode()})
    await conn.execute(store.statement(UPSERT_ROLLUPS), {"rows": orjson.dumps(rollups)
                                                         .decode()})
    await conn.execute(store.statement(UPSERT_WORKER_ROLLUPS), {
        "rows": orjson.dumps(worker_rollups(attempts)).decode()})
    errors = error_rollups(attempts)
    if errors:
        await conn.execute(store.statement(UPSERT_ERROR_ROLLUPS), {
            "rows": orjson.dumps(errors).decode()})


def _elements(types: Sequence[str]) -> str:
    return ("SELECT " + ", ".join(f"(e->>{i})::{t}" for i, t in enumerate(types))
            + " FROM json_array_elements(%(rows)s::json) AS e")


_ATTEMPT_TYPES = ("text", "int4", "text", "text", "text", "text", "text", "int4", "float8",
                  "float8", "float8", "text", "text", "text", "text", "text", "text", "float8",
                  "int8")
_ROLLUP_TYPES = ("int8", "int8", "text", "text", "text", *("int8",) * len(OUTCOMES), "float8",
                 *("int8",) * BUCKETS)
INSERT_ATTEMPTS = (f"INSERT INTO {{schema}}.conveyor_attempts ({', '.join(hq.ATTEMPT_COLUMNS)}) "
                   + _elements(_ATTEMPT_TYPES))
# rollups_of gives each key once and in key order: one update per row, locks in one order
UPSERT_ROLLUPS = hq.UPSERT_ROLLUP.split(" VALUES ")[0] + " " + _elements(_ROLLUP_TYPES) + (
    " ON CONFLICT " + hq.UPSERT_ROLLUP.split(" ON CONFLICT ")[1])


_WORKER_TYPES = ("int8", "text", "text", "text", "int4", "int8", "int8", "float8", "float8",
                 "int8")
UPSERT_WORKER_ROLLUPS = (hq.UPSERT_WORKER_ROLLUP.split(" VALUES ")[0] + " "
                         + _elements(_WORKER_TYPES) + " ON CONFLICT "
                         + hq.UPSERT_WORKER_ROLLUP.split(" ON CONFLICT ")[1])


_ERROR_TYPES = ("int8", "int8", "text", "text", "text", "text", "int8", "float8", "float8")
UPSERT_ERROR_ROLLUPS = (hq.UPSERT_ERROR_ROLLUP.split(" VALUES ")[0] + " "
                        + _elements(_ERROR_TYPES) + " ON CONFLICT "
                        + hq.UPSERT_ERROR_ROLLUP.split(" ON CONFLICT ")[1])


# Every group's attempt at its last-seen time, in one statement (errors index lookups)
GROUPS_NEWEST = """
SELECT DISTINCT ON (a.fingerprint) a.fingerprint, a.error_type, a.error_message, a.job_id
FROM unnest(%(fingerprints)s::text[], %(lasts)s::float8[]) AS g(fingerprint, last)
JOIN {schema}.conveyor_attempts AS a ON a.fingerprint = g.fingerprint AND a.ended_at = g.last
WHERE (%(tenant)s::text IS NULL OR a.tenant = %(tenant)s)
ORDER BY a.fingerprint"""


class PostgresHistory(HistoryReads):
    if TYPE_CHECKING:  # PostgresStore's own
        async def _one(self, template: str, params: dict[str, Any] | None = None,
                       tenant: str | None = None) -> Rows: ...

        async def _count(self, template: str, params: dict[str, Any]) -> int: ...

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
        return {row[0]: row for row in rows}
