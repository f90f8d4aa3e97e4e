"""The slowest attempts of a range (slow_attempts) against a brute-force expectation: attempts
spread over several hours, folded and pending, of several tenants, tasks and queues, with
tied durations (and ties of duration and end). For any range (an hour, part of one, hours
with partial first and last ones, a range inside one 10 minutes, a month, a range with no
attempt) and any scope, the read is the range's attempts in scope ordered by duration, then
the newest end first, then job id and attempt (both descending), cut at the limit. (The
stores read by 10-minute parts down to a cut: the slowest ones sit just outside a range's
first and last parts, and with limits below the number of parts the cut skips most.)"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.store.base import Complete, Store

from .support import LEASE, new_job

pytestmark = pytest.mark.anyio

HOUR = 3600.0
BASE = 472_222 * HOUR  # an hour's start (support.T0 is 800 s into this hour)
DURATIONS = (0.5, 1.0, 2.0, 3.0, 8.0)


@dataclass(frozen=True)
class Made:
    job_id: str
    tenant: str | None
    task: str
    queue: str
    ended: float
    duration: float


def plan(tied: bool) -> list[tuple[str | None, str, str, float, float]]:
    """(tenant, task, queue, ended, duration) of each attempt: hours -1..4 from BASE, ends on
    quarter seconds (exact sums), and the slowest ones just outside the edges of EDGE.
    `tied`: durations of a few values (many ties) and two attempts with the same end and
    duration; else every duration its own."""
    out = []
    for i in range(72):
        ended = BASE + (i % 6 - 1) * HOUR + (i * 997) % 3600 + 0.25 * (i % 4)
        took = DURATIONS[i * 7 % 5] if tied else 0.25 * (1 + i * 37 % 200)
        out.append(([None, "acme", "globex"][i % 3], ["demo.task", "other.task"][i // 3 % 2],
                    ["default", "q2"][i // 2 % 2], ended, took))
    edges = [("acme", "demo.task", "default", BASE + 999.75, 70.0),  # before EDGE's start
             (None, "other.task", "q2", BASE + 3 * HOUR + 500.0, 65.0),  # at EDGE's end
             ("globex", "demo.task", "q2", BASE + 3 * HOUR + 550.0, 60.0)]  # past EDGE's end
    if tied:  # the same end and duration, both folded (plan()[::2] is folded)
        twin = ("acme", "demo.task", "default", BASE + 1800.0, 3.0)
        edges = [twin, edges[0], twin, edges[1], edges[2]]
    return out + edges


async def settle(store: Store, attempts: list[tuple[str | None, str, str, float, float]]
                 ) -> list[Made]:
    """Each of `attempts` as a job run once (completed), its attempt as planned."""
    jobs = [new_job(tenant=tenant, task=task, queue=queue, max_attempts=1)
            for tenant, task, queue, _, _ in attempts]
    await store.enqueue_many(jobs, now=BASE - 2 * HOUR)
    claimed = {j.id: j for j in await store.claim(None, "worker-1", len(jobs), LEASE,
                                                   now=BASE - 2 * HOUR)}
    items, made = [], []
    for new, (tenant, task, queue, ended, took) in zip(jobs, attempts, strict=True):
        job = claimed[new.id]
        items.append(Complete(job.lease, attempt=AttemptRecord(
            task=task, queue=queue, tenant=tenant, number=job.attempt,
            started_at=ended - took, ended_at=ended, worker_id="worker-1", host="host-a",
            pid=1, cpu=None, rss=None)))
        made.append(Made(job.id, tenant, task, queue, ended, took))
    assert await store.settle(items, now=BASE - 2 * HOUR + 1) == [True] * len(items)
    return made


def expected(made: list[Made], window: TimeRange, limit: int) -> list[tuple[str, float]]:
    kept = [m for m in made if window.start <= m.ended < window.end
            and (window.tenant is None or m.tenant == window.tenant)
            and (window.task is None or m.task == window.task)
            and (window.queue is None or m.queue == window.queue)]
    kept.sort(key=lambda m: (m.duration, m.ended, m.job_id), reverse=True)
    return [(m.job_id, m.duration) for m in kept[:limit]]


EDGE = (BASE + 1000.0, BASE + 3 * HOUR + 500.0)  # partial first and last hours and parts
RANGES = [
    TimeRange(BASE - 2 * HOUR, BASE + 6 * HOUR),
    TimeRange(BASE, BASE + HOUR),
    TimeRange(*EDGE),
    TimeRange(BASE + HOUR + 100.0, BASE + HOUR + 2000.0),
    TimeRange(BASE + 1000.0, BASE + 1150.0),  # inside one part, its slowest just before
    TimeRange(BASE + 6 * HOUR - 30 * 86400, BASE + 6 * HOUR),
    TimeRange(BASE + 10 * HOUR, BASE + 11 * HOUR),   # no attempt
    TimeRange(*EDGE, tenant="acme"),
    TimeRange(*EDGE, tenant="globex", task="demo.task"),
    TimeRange(*EDGE, queue="q2"),
    TimeRange(BASE - 2 * HOUR, BASE + 6 * HOUR, tenant="nobody"),
]


async def check(store: Store, tied: bool, limits: tuple[int, ...]) -> None:
    attempts = plan(tied)
    made = await settle(store, attempts[::2])
    while await store.fold_history(1000):
        pass
    made += await settle(store, attempts[1::2])  # left pending: read beside the folded ones
    for limit in limits:
        for window in RANGES:
            found = await store.slow_attempts(window, limit=limit)
            assert [(a.job_id, a.duration) for a in found] == expected(made, window, limit), (
                window, limit)


async def test_the_slowest_attempts_of_any_range_and_scope(store: Store) -> None:
    await check(store, tied=False, limits=(1, 5, 20, 100))


async def test_ties_go_newest_end_first_then_by_job(store: Store) -> None:
    """Equal durations: the newest end first, then the job id and attempt, descending (so
    the order does not depend on the plan, nor on whether a row is folded yet)."""
    await check(store, tied=True, limits=(1, 5, 20, 100))


async def test_equal_durations_over_many_parts_go_newest_first(store: Store) -> None:
    """One attempt per 10 minutes, all of one duration: the slowest are the newest, so the
    cut (the limit-th highest of the parts' tops, by duration then end) must order the
    parts' tops as the read does, and keep every part down to it."""
    attempts = [(None, "demo.task", "default", BASE + 600.0 * i + 7.0, 1.0) for i in range(30)]
    made = await settle(store, attempts[::2])
    while await store.fold_history(1000):
        pass
    made += await settle(store, attempts[1::2])
    while await store.fold_history(1000):
        pass
    window = TimeRange(BASE - HOUR, BASE + 30 * 600.0)
    for limit in (0, 1, 5, 16, 20, 29, 30, 40):
        found = await store.slow_attempts(window, limit=limit)
        assert [(a.job_id, a.duration) for a in found] == expected(made, window, limit), limit
