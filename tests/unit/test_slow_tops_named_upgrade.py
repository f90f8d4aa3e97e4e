"""Migration 0027 on a store with history (both stores): the tops of each 10-minute part
per task and per queue, per tenant and of every tenant, are filled from the attempts
already folded (the slowest by duration, then the newest end), and the slowest-attempts
read of a task or a queue from them equals a brute force over the attempts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, raw_execute, store_url_for

from conveyor.history.records import TimeRange
from conveyor.store.base import open_store

from .test_slow_tops_upgrade import migrated_alone

COLUMNS = "job_id, attempt, task, queue, tenant, started_at, ended_at, duration, outcome"
BASE = 2_833_333 * 600.0  # a 10-minute part's start
# 12 parts, 5 attempts each, two tasks and queues not in step; ties of duration inside a
# part (the newest end is the top)
ROWS = [(f"job-{i}-{j}", 1, ("t1", "t2")[(i + j) % 2], ("q1", "q2")[(i + j // 2) % 2],
         (None, "acme", "globex")[(i + j) % 3], BASE + 600 * i + 100 * j,
         BASE + 600 * i + 100 * j + 10, float((i * 7 + j * 3) % 5), "completed")
        for i in range(12) for j in range(5)]


def tops(key: Callable[[Any], tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    best: dict[tuple[Any, ...], tuple[float, float]] = {}
    for r in ROWS:
        for kind, name in (("task", r[2]), ("queue", r[3])):
            k = (kind, name, *key(r), int(r[6] // 600))
            best[k] = max(best.get(k, (-1.0, -1.0)), (r[7], r[6]))
    return {(*k, *v) for k, v in best.items()}


def want(window: TimeRange, limit: int) -> list[tuple[str, float]]:
    kept = [r for r in ROWS if window.start <= r[6] < window.end
            and window.tenant in (None, r[4]) and window.task in (None, r[2])
            and window.queue in (None, r[3])]
    kept.sort(key=lambda r: (r[7], r[6], r[0]), reverse=True)
    return [(r[0], r[7]) for r in kept[:limit]]


WINDOWS = [TimeRange(BASE - 86400, BASE + 86400, task="t1"),
           TimeRange(BASE + 650, BASE + 600 * 9 + 5, queue="q2"),
           TimeRange(BASE + 650, BASE + 600 * 9 + 5, tenant="acme", task="t2"),
           TimeRange(BASE - 86400, BASE + 86400, tenant="globex", queue="q1")]


def upgraded(make: Callable[[], Any],
             execute: Callable[[str, list[tuple[Any, ...]] | None], list[Any]]) -> None:
    migrated_alone(make, execute, 27, ROWS, WINDOWS, want)
    assert {tuple(r) for r in execute(
        "SELECT kind, name, tenant, part, duration, ended_at "
        "FROM {schema}conveyor_slow_tops_named", None)} == tops(lambda r: (r[4] or "",))
    assert {tuple(r) for r in execute(
        "SELECT kind, name, part, duration, ended_at "
        "FROM {schema}conveyor_slow_tops_named_all", None)} == tops(lambda r: ())


@pytest.mark.parametrize("kind", BOTH)
def test_0027_keeps_the_tops_of_each_task_and_queue(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_slownamed") as url:
        upgraded(lambda: open_store(url), raw_execute(url))
