"""A settle trip's writes on SQLite. A worker's trip is mostly completions, with some
failures: each kind is written in one statement (queries.COMPLETE_MANY, FAIL_MANY), not one
UPDATE per item, which took about a third of a drain's store-thread CPU
(bench/results/2026-12-06-perf.md). Every other outcome, a kind with one item in the trip,
and any trip that names a job twice (its items must then apply in order) are written item
by item. Jobs are distinct rows, so the order between the kinds does not matter. The
batched statements' counts are written as sums (count_sums.py), not by a trigger per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from ..base import Complete, Fail, Settle
from ..dead_groups import dead_fingerprint
from . import queries as q
from .count_sums import Sums
from .rows import settle_statement

# items per statement: at most 6 parameters each, well under SQLite's 32,766
_CHUNK = 500


def settle_rows(conn: sqlite3.Connection, items: Sequence[Settle], now: float,
                sums: Sums | None = None) -> list[Any]:
    """Each item's RETURNING row (id, state, queue, task, tenant, progress), or None where
    its lease no longer held the job; in the order of `items`. The batched statements'
    count changes go to `sums`, which the caller writes before it commits (without one,
    they are written here)."""
    if sums is None:
        sums = Sums()
        answered = settle_rows(conn, items, now, sums)
        sums.write(conn)
        return answered
    if len(items) < 2 or len({item.lease.job_id for item in items}) != len(items):
        return [conn.execute(*settle_statement(item, now)).fetchone() for item in items]
    rows: list[Any] = [None] * len(items)
    batched: dict[type, list[int]] = {Complete: [], Fail: []}
    for i, item in enumerate(items):
        same = batched.get(type(item))
        if same is not None:
            same.append(i)
    for single in [kind for kind, same in batched.items() if len(same) < 2]:
        del batched[single]
    for i, item in enumerate(items):
        if type(item) not in batched:
            rows[i] = conn.execute(*settle_statement(item, now)).fetchone()
    for kind, indexes in batched.items():
        write = _complete_many if kind is Complete else _fail_many
        for start in range(0, len(indexes), _CHUNK):
            chunk = indexes[start:start + _CHUNK]
            written = {row[0]: row for row in write(conn, [items[i] for i in chunk], now,
                                                          sums)}
            for i in chunk:
                rows[i] = written.get(items[i].lease.job_id)
    return rows


def _complete_many(conn: sqlite3.Connection, done: Sequence[Settle], now: float,
                   sums: Sums) -> list[Any]:
    params: list[Any] = [now]
    for item in done:
        assert isinstance(item, Complete)
        params += (item.lease.job_id, item.lease.token, item.result)
    rows = conn.execute(_many(q.COMPLETE_MANY, 3, len(done)), params).fetchall()
    sums.move([(r[2], r[3], r[4]) for r in rows], "running", "completed", finished_at=now,
              retried=[r[6] > 1 for r in rows])
    return rows


def _fail_many(conn: sqlite3.Connection, failed: Sequence[Settle], now: float,
               sums: Sums) -> list[Any]:
    params: list[Any] = [now]
    for item in failed:
        assert isinstance(item, Fail)
        params += (item.lease.job_id, item.lease.token,
                   orjson.dumps(item.error.to_dict()).decode(),
                   None if item.retry_in is None else now + item.retry_in, item.dead_reason,
                   dead_fingerprint(item.attempt))
    rows = conn.execute(_many(q.FAIL_MANY, 6, len(failed)), params).fetchall()
    for state, counted in (("queued", "queued"), ("scheduled", "retrying")):
        sums.move([(r[2], r[3], r[4]) for r in rows if r[1] == state], "running", counted)
    dead = [r for r in rows if r[1] == "dead"]
    sums.move([(r[2], r[3], r[4]) for r in dead], "running", "dead", finished_at=now,
              retried=[r[6] > 1 for r in dead])
    return rows


def _many(template: str, width: int, count: int) -> str:
    """`template` with `count` VALUES rows of `width` parameters each."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return template.format(rows=", ".join([row] * count))
