"""The PostgreSQL store's catalogue of names (the task and queue names a search may match,
for autocomplete) and the cron schedules' run-time state (paused or not, migration 0012). A
part of PostgresStore (store.py), kept apart for size; the statements are here, beside the
only code that runs them."""

from __future__ import annotations

from typing import Any, Protocol

from ..base import NAMES_DAYS, NAMES_RECENT, Names, names_of
from .queries import CLOCK

Rows = list[tuple[Any, ...]]

# Every name read is bounded: the day rollups of the last NAMES_DAYS days (a range of the
# primary key: width, minute), and the task and queue of the newest NAMES_RECENT jobs (a
# backward walk of the primary key from the newest id; for a tenant, under its row policy).
ROLLED_NAMES = """
SELECT DISTINCT task, queue FROM {schema}.conveyor_rollups
WHERE width = 86400 AND minute >= %(since)s
  AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
LIMIT 5000"""
RECENT_NAMES = """
SELECT DISTINCT task, queue FROM (
    SELECT task, queue FROM {schema}.conveyor_jobs ORDER BY id DESC LIMIT %(recent)s) AS recent"""
# There is no tenant index here (one would cost every enqueue): a tenant's names are those
# of its jobs among the newest TENANT_WINDOW jobs, a walk that stops there.
TENANT_WINDOW = 20_000
RECENT_TENANT_NAMES = """
SELECT DISTINCT task, queue FROM (
    SELECT task, queue, tenant FROM {schema}.conveyor_jobs ORDER BY id DESC LIMIT %(window)s
) AS recent WHERE tenant = %(tenant)s"""
QUEUE_NAMES = "SELECT name FROM {schema}.conveyor_queues LIMIT 5000"

PAUSED_SCHEDULES = "SELECT name FROM {schema}.conveyor_cron WHERE paused"
SET_SCHEDULE_PAUSED = """
INSERT INTO {schema}.conveyor_cron (name, paused, updated_at)
VALUES (%(name)s, %(paused)s, {now})
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at"""


class Sessions(Protocol):
    async def _one(self, template: str, params: dict[str, Any] | None = None,
                   tenant: str | None = None) -> Rows: ...


class Catalog:
    async def job_names(self: Sessions, tenant: str | None = None,
                        now: float | None = None) -> Names:
        [(clock,)] = await self._one(CLOCK, {"now": now})
        params: dict[str, Any] = {"tenant": tenant, "recent": NAMES_RECENT,
                                  "window": TENANT_WINDOW,
                                  "since": int(clock // 60) - NAMES_DAYS * 1440}
        pairs = await self._one(ROLLED_NAMES, params)
        pairs += await self._one(RECENT_NAMES if tenant is None else RECENT_TENANT_NAMES,
                                 params, tenant)
        queues = [] if tenant is not None else [r[0] for r in await self._one(QUEUE_NAMES)]
        return names_of(pairs, queues)

    async def paused_schedules(self: Sessions) -> set[str]:
        return {r[0] for r in await self._one(PAUSED_SCHEDULES)}

    async def set_schedule_paused(self: Sessions, name: str, paused: bool,
                                  now: float | None = None) -> None:
        await self._one(SET_SCHEDULE_PAUSED + " RETURNING name",
                        {"name": name, "paused": paused, "now": now})
