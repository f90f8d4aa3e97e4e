"""The claim on SQLite, and settle and claim in one transaction (Store.settle_and_claim).

settle_and_claim writes the outcomes and claims in one BEGIN IMMEDIATE transaction (one
commit, one hop to the store thread), so the slots a settle frees under a concurrency cap are
taken again by the commit that frees them. The claim runs under a savepoint: when it fails,
only it is undone and the outcomes are still committed (the answer carries the failure).
A claim that answers to a limit and comes back short also reads whether a concurrency cap it
answers to is full (CAP_FULL, in the same transaction): then the answer says `cut_short`.

Without a given `now`, a claim reads the clock once it holds the write lock, as PostgreSQL
reads clock_timestamp() after the limits' lock. The claims' times then follow their commit
order, which a rate's window needs: a claim forgets the starts that left the window by its
own clock (limits.FORGET_STARTS), so a claim that read the clock before waiting for the lock,
and committed after one that forgot by a later clock, counted its window without the starts
just forgotten and started more than the rate (50/s: 54 in a second, 2 workers).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from ... import _rng
from ...job import ClaimedJob, JobEvent
from ..base import ClaimAsk, Exchange, Settle
from . import queries as q
from .claims import claim_rows
from .count_sums import Sums
from .history import write_history
from .settling import settle_rows

# Is a concurrency cap this claim answers to full (its queues', any task's)? The jobs just
# claimed count: the same transaction.
CAP_FULL = """
SELECT EXISTS (
    SELECT 1 FROM conveyor_limits AS lim
    WHERE lim.concurrency IS NOT NULL
      AND (lim.kind = 'task' OR lim.kind = 'queue'
           AND (:queues IS NULL OR lim.name IN (SELECT value FROM json_each(:queues))))
      AND lim.concurrency <= (
          SELECT count(*) FROM conveyor_jobs AS job INDEXED BY conveyor_jobs_lease
          WHERE job.state = 'running' AND job.lease_expires_at > :now
            AND CASE WHEN lim.kind = 'queue' THEN job.queue ELSE job.task END = lim.name))"""


class Exchanging:
    """SQLiteStore's claim and settle_and_claim."""

    def _claim_names(self: Any, queues: Sequence[str] | None) -> list[str]:
        """The queues to claim from, paused ones left out (outside the write lock: an idle
        poll takes no lock)."""
        with self.db.read() as conn:
            return _names(conn, queues)

    def _claim_in(self: Any, conn: sqlite3.Connection, queues: Sequence[str] | None,
                  names: list[str], ask: ClaimAsk, now: float,
                  limited: bool, sums: Sums) -> tuple[list[Any], bool]:
        """In the caller's write transaction: the claimed rows, and whether a full
        concurrency cap cut the claim short; an unlimited claim's count changes go to
        `sums` (count_sums.py), which the caller writes."""
        params = {"token": _rng.getrandbits(62), "now": now, "lease_for": ask.lease_for,
                  "worker_id": ask.worker_id, "host": self._host}
        if not names:
            rows: list[Any] = []
        elif limited:
            rows = self._claim_limited(conn, names, params, ask.limit)
        else:
            rows = claim_rows(conn, names, params, ask.limit, sums)
        cut_short = False
        if limited and len(rows) < ask.limit:
            cut_short = bool(conn.execute(CAP_FULL, {
                "now": now, "queues": orjson.dumps(list(queues)).decode() if queues else None,
            }).fetchone()[0])
        return rows, cut_short

    def _claimed(self: Any, rows: list[Any], feed: bool | None = None) -> list[ClaimedJob]:
        """Publish the claimed jobs' start (after the commit); the jobs in claim order.
        `feed`: whether the event feed has subscribers, if the caller knows."""
        if rows and (self.wake.has_subscribers() if feed is None else feed):
            self.wake.publish([JobEvent(r[0], "running", r[2], r[1], r[7] or None)
                               for r in rows])
        if len(rows) > 1:  # in claim order (priority, run_at, id): flat keys built in one
            # pass, each with its row's index (never compared: ids differ), sorted as
            # list.sort(key=...) sorts its keys, without a call per job
            order = sorted([(-r[9], r[12] or 0.0, r[0], i) for i, r in enumerate(rows)])
            rows = [rows[key[3]] for key in order]
        return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or None, r[8], r[9],
                           r[10], r[11], r[12], r[13]) for r in rows]

    def _claim_flagged(self: Any, ask: ClaimAsk,
                       now: float | None) -> tuple[list[ClaimedJob], bool]:
        """Store.claim, with whether a full cap cut it short."""
        names = self._claim_names(ask.queues)
        if not names or ask.limit <= 0:
            return [], False
        limited = self._limits_touch(names)
        with self.db.write() as conn:
            sums = Sums()
            rows, cut_short = self._claim_in(conn, ask.queues, names, ask, self._now(now),
                                             limited, sums)
            sums.write(conn)
        return self._claimed(rows), cut_short

    async def settle_and_claim(self: Any, items: Sequence[Settle], ask: ClaimAsk,
                               now: float | None = None) -> Exchange:
        if not items:
            try:
                jobs, cut_short = self._claim_flagged(ask, now)
            except Exception as exc:
                return Exchange([], claim_failed=exc)
            return Exchange([], jobs, cut_short)
        failure: Exception | None = None
        rows: list[Any] = []
        cut_short = False
        with self.db.write() as conn:
            now = self._now(now)  # the clock under the write lock (see the module's doc)
            sums = Sums()  # the trip's count changes, netted per key and written once
            settled = settle_rows(conn, items, now, sums)  # settling.py: completions at once
            applied = [row is not None for row in settled]  # for the history and the answer
            write_history(conn, items, applied)
            self._unpark_settled(conn, items)  # keys.py
            if ask.limit > 0:
                conn.execute("SAVEPOINT claim")
                try:  # the claim's counts join `sums` at its last step (claims.py)
                    # its queues read in this transaction, not in a read transaction of
                    # their own before it (~20,000 instructions a trip under callgrind):
                    # and a pause committed before this transaction's lock is obeyed
                    names = _names(conn, ask.queues)
                    limited = bool(names) and self._limits_touch(names)  # a read: 1/s
                    rows, cut_short = self._claim_in(conn, ask.queues, names, ask, now,
                                                     limited, sums)
                except Exception as exc:  # undo the claim only: the outcomes stay
                    conn.execute("ROLLBACK TO claim")
                    failure, rows, cut_short = exc, [], False
                conn.execute("RELEASE claim")
            sums.write(conn)
        feed = self.wake.has_subscribers()  # once a trip, for its settles and its claims
        if feed:
            self._publish(settled)
        return Exchange(applied, self._claimed(rows, feed),
                        cut_short, failure)


def _names(conn: sqlite3.Connection, queues: Sequence[str] | None) -> list[str]:
    """The queues to claim from (`queues`, or every queue with queued jobs), paused ones
    left out."""
    paused = {r[0] for r in conn.execute(q.PAUSED_QUEUES)}
    names = list(queues) if queues else [r[0] for r in conn.execute(q.QUEUED_QUEUES)]
    return [n for n in names if n not in paused] if paused else names
