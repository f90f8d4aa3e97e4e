"""Enqueue on SQLite: insert the jobs, count them (counters.py) and publish their first events
in one write transaction, then wake the workers. Keyed jobs go through keys.py.

A single enqueue is the common call and its Python is a share of its cost next to a commit
(bench/enqueue_cost.py): one job takes a path of its own (one execute, no lists built, no
generator checks). The wake-up still reads the folder after the commit, not reusing the
listing the event check read inside the transaction: a worker that binds in between would
otherwise miss the job's wake-up (its first poll ran before the commit) and wait a poll.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import ConfigError
from ...job import EnqueueResult, JobEvent, JobState, NewJob
from ..base import SCHEDULED_HINT
from . import queries as q
from .connection import Connections
from .rows import insert_row
from .wake import WakeChannel

log = logging.getLogger("conveyor.store.sqlite")


class _InsertOneByOne(Exception):
    """Roll the batch back and insert row by row, to learn which rows already exist."""


class Enqueues:
    """SQLiteStore's producing side (a mixin: the store holds db, wake, enqueue_wait)."""

    db: Connections
    wake: WakeChannel
    enqueue_wait: float | None

    _enqueue_keyed: Callable[[Sequence[NewJob], float], list[EnqueueResult]]  # keys.py
    _count_inserted: Callable[[sqlite3.Connection, Sequence[NewJob],
                               Sequence[EnqueueResult]], None]  # counters.py

    async def enqueue_many(self, jobs: Sequence[NewJob], now: float | None = None,
                           tx: Any = None) -> list[EnqueueResult]:
        if tx is not None:
            raise ConfigError("transactional enqueue (connection=...) needs the PostgreSQL store")
        now = time.time() if now is None else now
        if len(jobs) == 1:
            job = jobs[0]
            if job.limit_key is not None:
                return self._enqueue_keyed(jobs, now)
            if job.idempotency_key is None:
                return [self._enqueue_one(job, now)]
        elif any(job.limit_key is not None for job in jobs):
            return self._enqueue_keyed(jobs, now)  # keys.py: strategies, the keys' rows
        built = [insert_row(job, now) for job in jobs]
        rows, results = [b[0] for b in built], [b[1] for b in built]
        try:
            with self.db.write(promise=True, wait=self.enqueue_wait) as conn:
                if any(job.idempotency_key is not None for job in jobs):
                    raise _InsertOneByOne
                before = conn.total_changes
                conn.executemany(q.INSERT_JOB, rows)
                if conn.total_changes - before != len(rows):
                    raise _InsertOneByOne  # an id that already exists: roll back, look closer
                self._enqueued(conn, jobs, results)
        except _InsertOneByOne:
            results = self._insert_each(jobs, rows, results, now)
        queues = {job.queue for job in jobs}
        if any(r.state == JobState.SCHEDULED for r in results):
            queues.add(SCHEDULED_HINT)
        self.wake.notify(queues)
        return results

    def _enqueue_one(self, job: NewJob, now: float) -> EnqueueResult:
        """One job without a key of either kind: what enqueue_many does, for one row."""
        row, result = insert_row(job, now)
        try:
            with self.db.write(promise=True, wait=self.enqueue_wait) as conn:
                if conn.execute(q.INSERT_JOB, row).rowcount != 1:
                    raise _InsertOneByOne  # its id exists: roll back, answer that job
                self._enqueued(conn, (job,), (result,))
        except _InsertOneByOne:
            [result] = self._insert_each((job,), [row], [result], now)
        self.wake.notify({job.queue, SCHEDULED_HINT} if result.state is JobState.SCHEDULED
                         else {job.queue})
        return result

    def _insert_each(self, jobs: Sequence[NewJob], rows: list[tuple[Any, ...]],
                     results: list[EnqueueResult], now: float) -> list[EnqueueResult]:
        with self.db.write(promise=True, wait=self.enqueue_wait) as conn:
            results = [self._insert_one(conn, row, res, now)
                       for row, res in zip(rows, results, strict=True)]
            self._enqueued(conn, jobs, results)
        return results

    def _enqueued(self, conn: sqlite3.Connection, jobs: Sequence[NewJob],
                  results: Sequence[EnqueueResult]) -> None:
        """Count the new jobs (counters.py), then publish `queued`/`scheduled` while the write
        lock is still held: no worker can claim them (and publish `running`) before their
        first event is on its way. A commit that then fails leaves an event for a job that is
        not there; events are a live feed, never the record (rare: a disk error at COMMIT).
        Nor may the feed fail the enqueue: a socket error is logged, the jobs stored."""
        self._count_inserted(conn, jobs, results)
        if not self.wake.has_subscribers():
            return
        try:
            self.wake.publish([JobEvent(r.id, r.state, j.queue, j.task, j.tenant)
                               for j, r in zip(jobs, results, strict=True) if not r.duplicate])
        except OSError as exc:
            log.warning("could not publish enqueue events: %s", exc)

    @staticmethod
    def _insert_one(conn: sqlite3.Connection, row: tuple[Any, ...], result: EnqueueResult,
                    now: float) -> EnqueueResult:
        """Insert one row; if its key (or its id) is taken, report the job that holds it."""
        key, tenant = row[9], row[6]
        if key is not None:
            conn.execute(q.FREE_EXPIRED_KEY, (tenant, key, now))
        if conn.execute(q.INSERT_JOB, row).rowcount == 1:
            return result
        found = conn.execute(q.FIND_BY_ID, (row[0],)).fetchone()
        if found is None and key is not None:
            found = conn.execute(q.FIND_BY_KEY, (tenant, key)).fetchone()
        return EnqueueResult(found[0], True, JobState(found[1]), found[2], found[3])
