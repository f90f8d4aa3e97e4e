"""The SQLite store's catalogue of names (the task and queue names a search may match, for
autocomplete) and the cron schedules' run-time state (paused or not, migration 0012). A part
of SQLiteStore (store.py), kept apart for size; the statements are here, beside the only
code that runs them."""

from __future__ import annotations

from typing import Any, Protocol

from ..base import NAMES_DAYS, NAMES_RECENT, Names, names_of
from .connection import Connections

# Every name read is bounded: the day rollups of the last NAMES_DAYS days (a range of the
# primary key: width, minute), and the task and queue of the newest NAMES_RECENT jobs (a walk
# of the primary key, or of conveyor_jobs_tenant for a tenant, from the newest id; that
# index is partial, so the statement repeats its `tenant != ''`).
ROLLED_NAMES = """
SELECT DISTINCT task, queue FROM conveyor_rollups
WHERE width = 86400 AND minute >= :since AND (:tenant IS NULL OR tenant = :tenant)
LIMIT 5000"""
RECENT_NAMES = """
SELECT DISTINCT task, queue FROM (
    SELECT task, queue FROM conveyor_jobs ORDER BY id DESC LIMIT :recent)"""
RECENT_TENANT_NAMES = """
SELECT DISTINCT task, queue FROM (
    SELECT task, queue FROM conveyor_jobs WHERE tenant = :tenant AND tenant != ''
    ORDER BY id DESC LIMIT :recent)"""
PAUSED_QUEUE_NAMES = "SELECT name FROM conveyor_queues LIMIT 5000"

PAUSED_SCHEDULES = "SELECT name FROM conveyor_cron WHERE paused = 1"
SET_SCHEDULE_PAUSED = """
INSERT INTO conveyor_cron (name, paused, updated_at) VALUES (:name, :paused, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at"""


class Database(Protocol):
    db: Connections

    def _now(self, now: float | None) -> float: ...


class Catalog:
    async def job_names(self: Database, tenant: str | None = None,
                        now: float | None = None) -> Names:
        params: dict[str, Any] = {"tenant": tenant, "recent": NAMES_RECENT,
                                  "since": int(self._now(now) // 60) - NAMES_DAYS * 1440}
        with self.db.read() as conn:
            pairs = conn.execute(ROLLED_NAMES, params).fetchall()
            pairs += conn.execute(RECENT_NAMES if tenant is None else RECENT_TENANT_NAMES,
                                  params).fetchall()
            queues = [] if tenant is not None else [
                r[0] for r in conn.execute(PAUSED_QUEUE_NAMES)]
        return names_of(pairs, queues)

    async def paused_schedules(self: Database) -> set[str]:
        with self.db.read() as conn:
            return {r[0] for r in conn.execute(PAUSED_SCHEDULES)}

    async def set_schedule_paused(self: Database, name: str, paused: bool,
                                  now: float | None = None) -> None:
        with self.db.write() as conn:
            conn.execute(SET_SCHEDULE_PAUSED, {"name": name, "paused": int(paused),
                                               "now": self._now(now)})
