"""Counts written as sums (migration 0019). The count triggers of 0011 fire once per updated
row; a claim (queued -> running), a trip's completions (running -> completed) or its failures
(running -> queued, retrying or dead, as each returned row tells) move many jobs in one
statement, each row from a known state to another, so the store runs that statement with the
trigger standing aside and writes what it would have written, summed per key: the counts of
all tenants and each tenant's and, for finished jobs, their minute. Everything happens
inside the caller's write transaction, as the trigger's writes did.

The trigger stands aside for a row whose count_mark the statement flipped (migration 0036:
queries' *_SUMMED claims, COMPLETE_MANY, FAIL_MANY), and for nothing else: no flag to set
before the statement or to clear after it, nothing left behind if the writer dies, and every
other statement, in this transaction or any other, counted by the trigger.

A transaction's moves are summed in a Sums and written once, before it commits: a trip's
claim (queued -> running) and its settle (running -> completed) write one upsert per key of
their net change, and a key whose jobs came and went in equal numbers (a steady drain's
'running') none. A trip writes 2 to 3 count statements, not 5 (7 with tenants)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable

_LEAVE = "UPDATE conveyor_counts SET n = n - ? WHERE queue = ? AND task = ? AND state = ?"
_ENTER = """
INSERT INTO conveyor_counts (queue, task, state, n) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, task, state) DO UPDATE SET n = n + excluded.n"""
_TENANT_LEAVE = """
UPDATE conveyor_tenant_counts SET n = n - ?
WHERE tenant = ? AND queue = ? AND task = ? AND state = ?"""
_TENANT_ENTER = """
INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = n + excluded.n"""
_FINISHED = """
INSERT INTO conveyor_finished (minute, queue, state, retried, n)
VALUES (CAST(?1 / 60 AS INTEGER), ?2, ?3, ?4, ?5)
ON CONFLICT (minute, queue, state, retried) DO UPDATE SET n = n + excluded.n"""
_TENANT_FINISHED = """
INSERT INTO conveyor_tenant_finished (tenant, minute, queue, state, retried, n)
VALUES (?1, CAST(?2 / 60 AS INTEGER), ?3, ?4, ?5, ?6)
ON CONFLICT (tenant, minute, queue, state, retried) DO UPDATE SET n = n + excluded.n"""


class Sums:
    """One write transaction's count changes, summed per key (move), written by write()."""

    __slots__ = ("counts", "finished", "tenant_finished", "tenants")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}  # (queue, task, state): change
        self.tenants: dict[tuple[str, str, str, str], int] = {}  # (tenant, queue, ...)
        self.finished: dict[tuple[float, str, str, int], int] = {}  # (at, queue, ...)
        self.tenant_finished: dict[tuple[str, float, str, str, int], int] = {}

    def move(self, moved: Iterable[tuple[str, str, str]], old: str, new: str,
             finished_at: float | None = None, retried: Iterable[bool] | None = None) -> None:
        """Count jobs `moved` ((queue, task, tenant) each, tenant '' for none) from counted
        state `old` to counted state `new` (the caller maps a scheduled job with an attempt
        to 'retrying', as 0011's triggers do), as 0011's triggers would; with
        `finished_at`, each also counts as finished in that minute, `retried` (one flag per
        job: attempt > 1) telling which bucket.

        The jobs are counted once each, by Counter in C (a trip's jobs share a few keys);
        the sums per key are then added up over those few distinct keys, not per job."""
        jobs = list(moved)
        if not jobs:
            return
        counts, tenants = self.counts, self.tenants
        for (queue, task, tenant), n in Counter(jobs).items():
            key = (queue, task, old)
            counts[key] = counts.get(key, 0) - n
            key = (queue, task, new)
            counts[key] = counts.get(key, 0) + n
            if tenant:
                at = (tenant, queue, task, old)
                tenants[at] = tenants.get(at, 0) - n
                at = (tenant, queue, task, new)
                tenants[at] = tenants.get(at, 0) + n
        if finished_at is None:
            return
        finished, tenant_finished = self.finished, self.tenant_finished
        flags = list(retried) if retried is not None else [False] * len(jobs)
        for ((queue, _, tenant), flag), n in Counter(zip(jobs, flags, strict=True)).items():
            minute = (finished_at, queue, new, int(flag))
            finished[minute] = finished.get(minute, 0) + n
            if tenant:
                kept = (tenant, finished_at, queue, new, int(flag))
                tenant_finished[kept] = tenant_finished.get(kept, 0) + n

    def write(self, conn: sqlite3.Connection) -> None:
        """The summed changes written, in the caller's write transaction: a key's net
        decrease as the trigger's decrement (an UPDATE of its row), its net increase as its
        upsert, a key that netted to nothing not at all."""
        for leave, enter, kept in ((_LEAVE, _ENTER, self.counts),
                                   (_TENANT_LEAVE, _TENANT_ENTER, self.tenants)):
            if not kept:
                continue
            left = [(-n, *key) for key, n in kept.items() if n < 0]
            if left:
                conn.executemany(leave, left)
            entered = [(*key, n) for key, n in kept.items() if n > 0]
            if entered:
                conn.executemany(enter, entered)
        if self.finished:
            conn.executemany(_FINISHED, [(*key, n) for key, n in self.finished.items()])
        if self.tenant_finished:
            conn.executemany(_TENANT_FINISHED,
                             [(*key, n) for key, n in self.tenant_finished.items()])


def move(conn: sqlite3.Connection, moved: Iterable[tuple[str, str, str]], old: str,
         new: str, finished_at: float | None = None,
         retried: Iterable[bool] | None = None) -> None:
    """Sums.move's changes alone, written at once."""
    sums = Sums()
    sums.move(moved, old, new, finished_at, retried)
    sums.write(conn)
