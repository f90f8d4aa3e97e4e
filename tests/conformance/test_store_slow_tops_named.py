"""The slowest attempts of a task or a queue (with or without a tenant), read from the tops
the fold keeps per 10 minutes and task, or queue (0027), against a brute force over the
attempts still stored: folds in several batches, history pruning part of a 10-minute part
and then more of it, attempts folded late into parts already pruned from and into parts
above, with ties and ranges whose edges cut parts. Each part's slowest attempt is of one
task and queue and its next of the other, so a filtered read that took the part's top of
every task (0026's) for its own would raise the cut above attempts that belong in the
answer; the oldest parts hold the slowest attempts, so would a kept top since pruned."""

from __future__ import annotations

import pytest

from conveyor.history.records import TimeRange
from conveyor.store.base import Store

from .test_store_slow_attempts import BASE, Made, expected, settle
from .test_store_slow_tops import fold, folds_and_prunes, stored

pytestmark = pytest.mark.anyio

PART = 600.0
TENANTS = (None, "acme", "globex")
TASKS = ("a.task", "b.task")
QUEUES = ("q1", "q2")
LIMITS = (1, 3, 7, 20, 100)


def plan() -> list[tuple[str | None, str, str, float, float]]:
    """Four attempts in each of 24 parts from BASE: durations fall with age (two parts
    share each), a part's slowest its first, its tasks and queues alternating by part and
    by attempt (task and queue not in step: each of the four pairs occurs), two equal
    durations at different ends."""
    return [(TENANTS[(i + j) % 3], TASKS[(i + j) % 2], QUEUES[(i + j // 2) % 2],
             BASE + PART * i + 37.0 * j + 1.5, (24 - i) // 2 + (1.0, 0.0, 0.5, 0.0)[j])
            for i in range(24) for j in range(4)]


def windows() -> list[TimeRange]:
    cuts = [(BASE - 86400, BASE + 86400), (BASE, BASE + 3600),
            (BASE + PART * 5 + 20, BASE + PART * 9 + 75),  # edges inside parts 5 and 9
            (BASE + PART * 5 + 40, BASE + PART * 5 + 120),  # inside one part
            (BASE + PART * 3, BASE + PART * 20), (BASE + PART * 9, BASE + PART * 24)]
    scopes = [{"task": t} for t in TASKS] + [{"queue": q} for q in QUEUES] + [
        {"task": "a.task", "tenant": "acme"}, {"task": "b.task", "tenant": "globex"},
        {"queue": "q1", "tenant": "globex"}, {"queue": "q2", "tenant": "acme"},
        {"task": "a.task", "queue": "q2"}, {"task": "nothing"}, {"queue": "q1", "tenant": ""}]
    return [TimeRange(s, e, **scope) for s, e in cuts for scope in scopes]  # type: ignore[arg-type]


async def check(store: Store, made: list[Made], step: str) -> None:
    alive = await stored(store, made)
    for window in windows():
        for limit in LIMITS:
            found = await store.slow_attempts(window, limit=limit)
            assert [(a.job_id, a.duration) for a in found] == expected(alive, window, limit), (
                step, window, limit)


async def test_the_named_tops_read_as_the_attempts_after_folds_and_prunes(store: Store
                                                                          ) -> None:
    late = [("acme", "a.task", "q2", BASE + PART * 3 + 9.0, 40.0),  # a pruned part
            ("acme", "b.task", "q1", BASE + PART * 5 + 49.0, 39.0),  # the boundary
            (None, "a.task", "q1", BASE + PART * 10 + 2.0, 8.0),  # ties part 10's top
            ("globex", "b.task", "q2", BASE + PART * 12 + 3.0, 38.0)]
    await folds_and_prunes(store, plan(), late, check)


async def test_equal_durations_of_one_task_over_many_parts(store: Store) -> None:
    """One duration everywhere: the cut is the pair (duration, end), the newest win."""
    made = await settle(store, [(TENANTS[i % 3], TASKS[i % 2], QUEUES[i // 2 % 2],
                                 BASE + PART * i + 7.0, 2.0) for i in range(30)])
    await fold(store)
    for scope in ({"task": "a.task"}, {"queue": "q2", "tenant": "acme"}):
        window = TimeRange(BASE - 86400, BASE + 86400, **scope)  # type: ignore[arg-type]
        for limit in range(0, 18):
            found = await store.slow_attempts(window, limit=limit)
            assert [(a.job_id, a.duration) for a in found] == expected(made, window, limit)
