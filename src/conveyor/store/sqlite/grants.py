"""Cap grants on SQLite (limits/grants.py): renewing a worker's grants in one write
transaction (the lock every claim of a capped queue takes too), and how a claim counts a
cap's use with grants (USED)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ...limits.claiming import CAPS_FRESH, LimitedNames
from ...limits.grants import HOLDER_AHEAD, Grant, GrantAsk, GrantRow, decide
from .connection import Connections

_MATCH = "CASE WHEN lim.kind = 'queue' THEN job.queue ELSE job.task END = lim.name"
_LIVE = "g.kind = lim.kind AND g.name = lim.name AND g.expires_at > :now"

# A queue's or task's concurrency cap as a claim by :worker_id counts it (the `running` of
# its LimitUsage, so that cap - used is its room): for a holder of a live grant, the cap less
# its room to claim ahead (HOLDER_AHEAD times its share, less what it holds); for any other
# claimer, every live grant's booked slots and the jobs claimed by workers without one.
USED = ("""CASE WHEN lim.concurrency IS NULL OR lim.kind = 'key' THEN 0 ELSE coalesce(
    (SELECT lim.concurrency - max(0, """ + str(HOLDER_AHEAD) + """ * g.share - (
         SELECT count(*) FROM conveyor_jobs AS job INDEXED BY conveyor_jobs_lease
         WHERE job.state = 'running' AND job.lease_expires_at > :now
           AND job.worker_id = :worker_id AND """ + _MATCH + """))
     FROM conveyor_cap_grants AS g WHERE """ + _LIVE + """ AND g.worker_id = :worker_id),
    (SELECT coalesce(sum(g.slots), 0) FROM conveyor_cap_grants AS g WHERE """ + _LIVE + """)
    + (SELECT count(*) FROM conveyor_jobs AS job INDEXED BY conveyor_jobs_lease
       WHERE job.state = 'running' AND job.lease_expires_at > :now AND """ + _MATCH + """
         AND coalesce(job.worker_id, '') NOT IN (
             SELECT g.worker_id FROM conveyor_cap_grants AS g WHERE """ + _LIVE + """))) END""")

# The caps of a worker's :queues and :tasks (NULL: every queue, every task).
CAPPED = """
SELECT kind, name, concurrency FROM conveyor_limits
WHERE concurrency IS NOT NULL
  AND (kind = 'task' AND (:tasks IS NULL OR name IN (SELECT value FROM json_each(:tasks)))
       OR kind = 'queue'
       AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues))))
ORDER BY kind, name"""
OTHERS = """
SELECT worker_id, slots, wanted FROM conveyor_cap_grants AS g
WHERE kind = :kind AND name = :name AND expires_at > :now AND worker_id <> :worker_id"""
# The cap's jobs claimed by workers without a live grant (this one left out), and this one's.
CLAIMED = """
SELECT coalesce(sum(coalesce(job.worker_id, '') <> :worker_id AND coalesce(job.worker_id, '')
                    NOT IN (SELECT g.worker_id FROM conveyor_cap_grants AS g
                            WHERE g.kind = :kind AND g.name = :name AND g.expires_at > :now)),
                0),
       coalesce(sum(job.worker_id = :worker_id), 0)
FROM conveyor_jobs AS job INDEXED BY conveyor_jobs_lease
WHERE job.state = 'running' AND job.lease_expires_at > :now
  AND CASE WHEN :kind = 'queue' THEN job.queue ELSE job.task END = :name"""
BOOK = """
INSERT INTO conveyor_cap_grants (kind, name, worker_id, slots, share, wanted, expires_at)
VALUES (:kind, :name, :worker_id, :slots, :share, :wanted, :expires_at)
ON CONFLICT (kind, name, worker_id) DO UPDATE
SET slots = excluded.slots, share = excluded.share, wanted = excluded.wanted,
    expires_at = excluded.expires_at"""
FORGET_EXPIRED = """
DELETE FROM conveyor_cap_grants WHERE kind = :kind AND name = :name AND expires_at <= :now"""
MINE = "SELECT kind, name FROM conveyor_cap_grants WHERE worker_id = :worker_id"
DROP_ONE = """
DELETE FROM conveyor_cap_grants WHERE kind = :kind AND name = :name AND worker_id = :worker_id"""
DROP_WORKER = "DELETE FROM conveyor_cap_grants WHERE worker_id = ?"
# Each live grant, with the jobs its worker runs under the cap (claimed ones that are not
# prefetched: the worker's heartbeat reports its prefetched jobs by queue).
GRANT_USES = """
SELECT g.kind, g.name, g.worker_id, g.slots FROM conveyor_cap_grants AS g
WHERE g.expires_at > :now ORDER BY g.kind, g.name, g.worker_id"""


class CapGrants:
    """SQLiteStore's grants."""

    db: Connections
    _limited: LimitedNames
    _read_limited: Callable[[float], None]  # limits.py

    async def renew_grants(self, worker_id: str, queues: Sequence[str] | None, wanted: int,
                           asks: Sequence[GrantAsk], lease_for: float,
                           now: float | None = None,
                           tasks: Sequence[str] | None = None,
                           wants: Mapping[tuple[str, str], int] | None = None
                           ) -> list[Grant]:
        """Book this worker's grant under each cap it claims under (limits/grants.decide),
        drop those whose cap is gone; its grants as booked. A worker holding no grant
        while no cap concerns it reads nothing but the limited names, which the claims read
        anyway (claiming.LimitedNames: one read a second for both, at most CAPS_FRESH old)."""
        if not asks:
            self._read_limited(CAPS_FRESH)
            if not self._limited.caps(queues, tasks):
                return []
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "queues": None if queues is None else orjson.dumps(list(queues)).decode(),
            "tasks": None if tasks is None else orjson.dumps(list(tasks)).decode()}
        with self.db.read() as conn:
            capped = conn.execute(CAPPED, params).fetchall()
        if not capped and not asks:
            return []  # no cap, no grant: no write lock
        with self.db.write() as conn:
            now = time.time() if now is None else now
            return _renew(conn, {**params, "now": now}, wanted, asks, lease_for, wants or {})

    def _drop_grants(self, conn: sqlite3.Connection, worker_id: str) -> None:
        conn.execute(DROP_WORKER, (worker_id,))


def _renew(conn: sqlite3.Connection, params: dict[str, Any], default_wanted: int,
           asks: Sequence[GrantAsk], lease_for: float,
           wants: Mapping[tuple[str, str], int]) -> list[Grant]:
    """In the write transaction: read the caps again (under the lock) and book each."""
    capped = conn.execute(CAPPED, params).fetchall()
    told = {(a.kind, a.name): a for a in asks}
    grants = []
    for kind, name, cap in capped:
        at = {**params, "kind": kind, "name": name}
        wanted = wants.get((kind, name), default_wanted)
        conn.execute(FORGET_EXPIRED, at)
        outside, mine = conn.execute(CLAIMED, at).fetchone()
        ask = told.get((kind, name)) or GrantAsk(kind, name, mine, mine)
        others = [GrantRow(*r) for r in conn.execute(OTHERS, at)]
        slots, booked, fair = decide(cap, outside, others, params["worker_id"], wanted, ask)
        expires_at = params["now"] + lease_for
        conn.execute(BOOK, {**at, "slots": booked, "share": slots, "wanted": wanted,
                            "expires_at": expires_at})
        grants.append(Grant(kind, name, cap, slots, booked, fair, expires_at))
    kept = {(g.kind, g.name) for g in grants}
    for kind, name in conn.execute(MINE, params).fetchall():
        if (kind, name) not in kept:
            conn.execute(DROP_ONE, {**params, "kind": kind, "name": name})
    return grants
