"""Counts written as sums (migration 0019). The count triggers of 0011 fire once per updated
row; a claim (queued -> running), a trip's completions (running -> completed) or its failures
(running -> queued, retrying or dead, as each returned row tells) move many jobs in one
statement, each row from a known state to another, so the store runs that statement with the
triggers standing aside (`deferred`) and writes what they would have written, summed per key:
the counts of all tenants and each tenant's and, for finished jobs, their minute.
Everything happens inside the caller's write transaction, as the triggers' writes did.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

_DEFER = "INSERT INTO conveyor_count_deferred (one) VALUES (1)"
_RESUME = "DELETE FROM conveyor_count_deferred"

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


@contextmanager
def deferred(conn: sqlite3.Connection) -> Iterator[None]:
    """The update triggers stand aside for what runs inside (this transaction only: the row
    that tells them so is gone before it commits, and a rollback removes it too)."""
    conn.execute(_DEFER)
    try:
        yield
    finally:
        conn.execute(_RESUME)


def move(conn: sqlite3.Connection, moved: Iterable[tuple[str, str, str]], old: str,
         new: str, finished_at: float | None = None,
         retried: Iterable[bool] | None = None) -> None:
    """Count jobs `moved` ((queue, task, tenant) each, tenant '' for none) from counted
    state `old` to counted state `new` (the caller maps a scheduled job with an attempt to
    'retrying', as 0011's triggers do), as 0011's triggers would;
    with `finished_at`, each also counts as finished in that minute, `retried` (one flag per
    job: attempt > 1) telling which bucket.

    The jobs are counted once each, by Counter in C (a trip's jobs share a few keys); the
    sums per key are then added up over those few distinct keys, not per job."""
    jobs = list(moved)
    if not jobs:
        return
    each = Counter(jobs)  # (queue, task, tenant): n
    keys: dict[tuple[str, str], int] = {}
    for (queue, task, _), n in each.items():
        keys[queue, task] = keys.get((queue, task), 0) + n
    conn.executemany(_LEAVE, [(n, queue, task, old) for (queue, task), n in keys.items()])
    conn.executemany(_ENTER, [(queue, task, new, n) for (queue, task), n in keys.items()])
    tenants = [(key, n) for key, n in each.items() if key[2]]
    if tenants:
        conn.executemany(_TENANT_LEAVE, [(n, tenant, queue, task, old)
                                         for (queue, task, tenant), n in tenants])
        conn.executemany(_TENANT_ENTER, [(tenant, queue, task, new, n)
                                         for (queue, task, tenant), n in tenants])
    if finished_at is None:
        return
    flags = list(retried) if retried is not None else [False] * len(jobs)
    finished: dict[tuple[str, int], int] = {}
    tenant_finished: dict[tuple[str, str, int], int] = {}
    for ((queue, _, tenant), flag), n in Counter(zip(jobs, flags, strict=True)).items():
        finished[queue, int(flag)] = finished.get((queue, int(flag)), 0) + n
        if tenant:
            key = (tenant, queue, int(flag))
            tenant_finished[key] = tenant_finished.get(key, 0) + n
    conn.executemany(_FINISHED, [(finished_at, queue, new, flag, n)
                                 for (queue, flag), n in finished.items()])
    if tenant_finished:
        conn.executemany(_TENANT_FINISHED, [(tenant, finished_at, queue, new, flag, n)
                                            for (tenant, queue, flag), n
                                            in tenant_finished.items()])
