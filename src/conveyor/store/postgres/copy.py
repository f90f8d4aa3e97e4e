"""Bulk enqueue by COPY: the fastest way into PostgreSQL for a blocking caller's plain batch.

Rows stream to the server as the caller produces them (the app prepares each job inside the
loop), and the server fills heap pages many rows at a time. Text format, not binary: the
server inserts its buffered rows every 64 kB of input text, so it works on the first part of
a batch while Python encodes the rest; in binary format it counts no bytes and buffers up to
1,000 rows, which for a batch of 1,000 means all the work after the last row (a quarter
slower end to end). Then one statement sends the wake-ups and the event feed and reads the
clock, and the transaction commits: all the jobs or none.

A plain batch is new jobs due now, with no idempotency key, correlation id, parent, schedule,
TTL, tenant or limit key of their own (what `plain` checks as the rows go by). Anything else,
a table where row-level security binds the store's role (COPY refuses), or an id already stored (a
duplicate), goes through INSERT_JOBS instead, with the same result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import psycopg

from ...job import EnqueueResult, JobState, NewJob
from . import queries as q
from .cursor import BEHIND

Render = Callable[[str], str]
_FEED_IDS = 100  # ids per feed item: under NOTIFY's 8,000 bytes whatever the names
                 # (queries.grouped_feed)


class NotPlain(Exception):
    """A job in the stream needs INSERT_JOBS; the stream is abandoned before it commits."""


def copy_jobs(conn: psycopg.Connection[Any], render: Render, jobs: Iterable[NewJob],
              taken: list[NewJob], now: float | None, wake: str,
              events: str | None) -> list[EnqueueResult]:
    """COPY `jobs` in one transaction on an idle autocommit connection, appending each to
    `taken` as it goes (so a caller that has to fall back still has them all). Raises
    NotPlain, or psycopg's error, with nothing stored."""
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(render(q.COPY_PLAIN if now is None else q.COPY_PLAIN_AT)) as copy:
            for chunk in _lines(jobs, taken, now):
                copy.write(chunk)
        queues = sorted({BEHIND + job.queue if job.priority else job.queue for job in taken})
        cursor.execute(render(q.AFTER_COPY), {
            "now": now, "channel": wake, "queues": queues, "events": events,
            "feed": feed_items(taken) if events else []})
        row = cursor.fetchone()
    assert row is not None
    clock = row[0]
    return [EnqueueResult(job.id, False, JobState.QUEUED, clock, clock) for job in taken]


_CHUNK = 64  # rows per write: the server starts on the first rows while the rest are made
# The server inserts its buffered rows (heap pages, then each row's index entries) every
# 64 kB of input text. A plain row is about 120 characters, so for a batch of 1,000 it would
# insert twice, at row 546 and at the end, and half its work would wait for the last row.
# Spaces after an integer field are ignored by its input function, so padding each row to
# about 250 characters has it insert every ~250 rows, while Python encodes the rest: 15 %
# faster end to end for 1,000 jobs (bench/pg_bulk.py), for ~0.1 ms of extra parsing.
_PAD = " " * 130
_SPECIAL = re.compile(r"[\\\t\n\r]")
_NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _lines(jobs: Iterable[NewJob], taken: list[NewJob], now: float | None) -> Iterator[str]:
    """The rows in COPY's text format, a chunk at a time, appending each job to `taken` as it
    goes; NotPlain at the first job that is not plain (rows.plain, inlined: this loop runs
    once per job of every bulk enqueue). psycopg's write_row would adapt each value through
    its dumper (a third of the client's time here); these columns are few and known: ids are
    UUIDs, names are escaped only if they hold a special character, the payload goes as
    bytea hex."""
    tail = "\n" if now is None else f"\t{now!r}\t{now!r}\n"
    heads: dict[tuple[str, str], str] = {}
    batch: str | None = None  # the last batch id found free of special characters
    paths: str | None = None  # the last job's sensitive paths, and as COPY text
    paths_field = _NULL
    rows: list[str] = []
    for job in jobs:
        taken.append(job)
        if (job.idempotency_key or job.correlation_id is not None or job.run_at is not None
                or job.delay or job.parent_id is not None or job.tenant
                or job.ttl is not None or job.limit_key is not None):
            raise NotPlain(job.id)
        head = heads.get((job.task, job.queue))
        if head is None:
            head = heads[job.task, job.queue] = f"\t{_text(job.task)}\t{_text(job.queue)}\tqueued\t"
        if _SPECIAL.search(job.id) or (job.batch_id is not batch and _special(job.batch_id)):
            raise NotPlain(job.id)  # not an id this app made: let INSERT_JOBS take it
        batch = job.batch_id
        if job.sensitive is not paths:  # a task's jobs share one string: escaped once
            paths = job.sensitive
            paths_field = _NULL if paths is None else _text(paths)
        unique_for = _NULL if job.unique_for is None else repr(float(job.unique_for))
        rows.append(f"{job.id}{head}{job.priority:d}\t\\\\x{job.payload.hex()}\t{unique_for}\t"
                    f"{job.max_attempts:d}{_PAD}\t{job.batch_id or _NULL}\t{paths_field}{tail}")
        if len(rows) == _CHUNK:
            yield "".join(rows)
            rows.clear()
    if rows:
        yield "".join(rows)


def _special(value: str | None) -> bool:
    return value is not None and _SPECIAL.search(value) is not None


def _text(value: str) -> str:
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def feed_items(jobs: list[NewJob]) -> list[str]:
    """The event feed's payloads for newly queued jobs: [[ids], state, queue, task, tenant,
    progress] items (events.decode_events), one payload per group of up to 100 ids."""
    groups: dict[tuple[str, str], list[str]] = {}
    for job in jobs:
        groups.setdefault((job.queue, job.task), []).append(job.id)
    return [orjson.dumps([[ids[i:i + _FEED_IDS], "queued", queue, task, None, None]]).decode()
            for (queue, task), ids in groups.items() for i in range(0, len(ids), _FEED_IDS)]
