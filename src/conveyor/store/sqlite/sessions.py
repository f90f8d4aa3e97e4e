"""The SQLite store's dashboard sessions (migrations/0003_sessions.sql). A part of SQLiteStore
(store.py), kept apart for size; its methods run on the store's connections. The statements
are here, beside the only code that runs them."""

from __future__ import annotations

from typing import Protocol

from ..base import SessionRecord
from .connection import Connections

CREATE_SESSION = """
INSERT INTO conveyor_sessions (id_hash, token_check, created_at, idle_expires_at, expires_at)
VALUES (:id_hash, :token_check, :now, min(:now + :idle, :now + :lifetime), :now + :lifetime)
RETURNING id_hash, token_check, created_at, idle_expires_at, expires_at"""

FIND_SESSION = """
SELECT id_hash, token_check, created_at, idle_expires_at, expires_at FROM conveyor_sessions
WHERE id_hash = :id_hash AND idle_expires_at > :now AND expires_at > :now"""

EXTEND_SESSION = """
UPDATE conveyor_sessions SET idle_expires_at = min(:now + :idle, expires_at)
WHERE id_hash = :id_hash AND idle_expires_at > :now AND expires_at > :now"""

REVOKE_SESSION = "DELETE FROM conveyor_sessions WHERE id_hash = :id_hash"

# idle_expires_at never passes expires_at (both statements above cap it), so a session has
# expired exactly when its idle deadline has passed: one index serves pruning.
ANY_SESSION_EXPIRED = "SELECT 1 FROM conveyor_sessions WHERE idle_expires_at <= :now LIMIT 1"

PRUNE_SESSIONS = """
DELETE FROM conveyor_sessions WHERE id_hash IN (
    SELECT id_hash FROM conveyor_sessions WHERE idle_expires_at <= :now LIMIT :limit)"""


def _record(row: tuple[str, str, float, float, float], checked_at: float) -> SessionRecord:
    return SessionRecord(row[0], row[1], row[2], row[3], row[4], checked_at)


class Database(Protocol):
    """What the sessions need of the store: its connections and its clock."""

    db: Connections

    def _now(self, now: float | None) -> float: ...


class Sessions:
    async def create_session(self: Database, id_hash: str, token_check: str, idle: float,
                             lifetime: float, now: float | None = None) -> SessionRecord:
        at = self._now(now)
        with self.db.write() as conn:
            row = conn.execute(CREATE_SESSION, {
                "id_hash": id_hash, "token_check": token_check, "now": at, "idle": idle,
                "lifetime": lifetime}).fetchone()
        return _record(row, at)

    async def find_session(self: Database, id_hash: str,
                           now: float | None = None) -> SessionRecord | None:
        at = self._now(now)
        with self.db.read() as conn:
            row = conn.execute(FIND_SESSION, {"id_hash": id_hash, "now": at}).fetchone()
        return None if row is None else _record(row, at)

    async def extend_session(self: Database, id_hash: str, idle: float,
                             now: float | None = None) -> bool:
        with self.db.write() as conn:
            return conn.execute(EXTEND_SESSION, {"id_hash": id_hash, "idle": idle,
                                                 "now": self._now(now)}).rowcount == 1

    async def revoke_session(self: Database, id_hash: str) -> bool:
        with self.db.write() as conn:
            return conn.execute(REVOKE_SESSION, {"id_hash": id_hash}).rowcount == 1

    async def prune_sessions(self: Database, now: float | None = None,
                             limit: int = 1000) -> int:
        params = {"now": self._now(now), "limit": limit}
        with self.db.read() as conn:  # idle maintenance takes no write lock
            if conn.execute(ANY_SESSION_EXPIRED, params).fetchone() is None:
                return 0
        with self.db.write() as conn:
            return int(conn.execute(PRUNE_SESSIONS, params).rowcount)
