"""The PostgreSQL store's dashboard sessions (migrations/0003_sessions.sql). A part of
PostgresStore (store.py), kept apart for size; its methods run on the store's connections.
The statements are here, beside the only code that runs them; `{now}` is the caller's time,
else the database's clock (queries.render)."""

from __future__ import annotations

from ..base import SessionRecord
from .reads import Sessions as Connections

CREATE_SESSION = """
WITH clock AS (SELECT {now} AS now)
INSERT INTO {schema}.conveyor_sessions
    (id_hash, token_check, created_at, idle_expires_at, expires_at)
SELECT %(id_hash)s, %(token_check)s, clock.now,
       clock.now + least(%(idle)s::float8, %(lifetime)s::float8),
       clock.now + %(lifetime)s::float8
FROM clock
RETURNING id_hash, token_check, created_at, idle_expires_at, expires_at, created_at"""

FIND_SESSION = """
WITH clock AS (SELECT {now} AS now)
SELECT stored.id_hash, stored.token_check, stored.created_at, stored.idle_expires_at,
       stored.expires_at, clock.now
FROM clock JOIN {schema}.conveyor_sessions stored
  ON stored.id_hash = %(id_hash)s
 AND stored.idle_expires_at > clock.now AND stored.expires_at > clock.now"""

EXTEND_SESSION = """
WITH clock AS (SELECT {now} AS now)
UPDATE {schema}.conveyor_sessions stored
SET idle_expires_at = least(clock.now + %(idle)s::float8, stored.expires_at)
FROM clock
WHERE stored.id_hash = %(id_hash)s
  AND stored.idle_expires_at > clock.now AND stored.expires_at > clock.now"""

REVOKE_SESSION = "DELETE FROM {schema}.conveyor_sessions WHERE id_hash = %(id_hash)s"

# idle_expires_at never passes expires_at (a CHECK, and both statements above cap it), so a
# session has expired exactly when its idle deadline has passed: one index serves pruning.
PRUNE_SESSIONS = """
DELETE FROM {schema}.conveyor_sessions WHERE id_hash IN (
    SELECT id_hash FROM {schema}.conveyor_sessions
    WHERE idle_expires_at <= {now}
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"""


class Sessions:
    async def create_session(self: Connections, id_hash: str, token_check: str, idle: float,
                             lifetime: float, now: float | None = None) -> SessionRecord:
        [row] = await self._one(CREATE_SESSION, {
            "id_hash": id_hash, "token_check": token_check, "idle": idle,
            "lifetime": lifetime, "now": now})
        return SessionRecord(*row)

    async def find_session(self: Connections, id_hash: str,
                           now: float | None = None) -> SessionRecord | None:
        rows = await self._one(FIND_SESSION, {"id_hash": id_hash, "now": now})
        return SessionRecord(*rows[0]) if rows else None

    async def extend_session(self: Connections, id_hash: str, idle: float,
                             now: float | None = None) -> bool:
        return await self._count(EXTEND_SESSION, {"id_hash": id_hash, "idle": idle,
                                                  "now": now}) == 1

    async def revoke_session(self: Connections, id_hash: str) -> bool:
        return await self._count(REVOKE_SESSION, {"id_hash": id_hash}) == 1

    async def prune_sessions(self: Connections, now: float | None = None,
                             limit: int = 1000) -> int:
        return await self._count(PRUNE_SESSIONS, {"now": now, "limit": limit})
