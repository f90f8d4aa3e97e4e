"""The slowest attempts read from the tops the fold keeps per 10 minutes (0026), against a
brute force over the attempts still stored: folds in several batches (a part's kept top
raised, kept, or tied on duration with a newer end), history pruning part of a 10-minute
part and then more of it (the prune's LIMIT), attempts folded late into parts already
pruned from and into parts above, with tenants, ties and ranges whose edges cut parts.
The oldest parts hold the slowest attempts, so a kept top of an attempt since pruned
would raise the cut above attempts that belong in the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conveyor.history.records import TimeRange
from conveyor.store.base import Store

from .test_store_slow_attempts import BASE, Made, expected, settle

pytestmark = pytest.mark.anyio

PART = 600.0
TENANTS = (None, "acme", "globex")
LIMITS = (1, 3, 7, 20, 100)


def plan() -> list[tuple[str | None, str, str, float, float]]:
    """Four attempts in each of 24 parts from BASE: durations fall with age (two parts
    share each), a part's slowest its first (so a prune inside a part deletes its top),
    two equal durations at different ends."""
    return [(TENANTS[(i + j) % 3], "demo.task", "default",
             BASE + PART * i + 37.0 * j + 1.5, (24 - i) // 2 + (1.0, 0.0, 0.5, 0.0)[j])
            for i in range(24) for j in range(4)]


def windows() -> list[TimeRange]:
    cuts = [(BASE - 86400, BASE + 86400), (BASE, BASE + 3600),
            (BASE + PART * 5 + 20, BASE + PART * 9 + 75),  # edges inside parts 5 and 9
            (BASE + PART * 5 + 40, BASE + PART * 5 + 120),  # inside one part
            (BASE + PART * 3, BASE + PART * 20), (BASE + PART * 9, BASE + PART * 24)]
    return [TimeRange(s, e, tenant=t) for s, e in cuts for t in (None, "acme", "globex")]


async def stored(store: Store, made: list[Made]) -> list[Made]:
    """The attempts of `made` not pruned (one attempt per job)."""
    return [m for m in made if await store.job_attempts(m.job_id)]


async def check(store: Store, made: list[Made], step: str) -> None:
    alive = await stored(store, made)
    for window in windows():
        for limit in LIMITS:
            found = await store.slow_attempts(window, limit=limit)
            assert [(a.job_id, a.duration) for a in found] == expected(alive, window, limit), (
                step, window, limit)


async def fold(store: Store) -> None:
    while await store.fold_history(1000):
        pass


async def folds_and_prunes(store: Store, attempts: list[Any], late: list[Any],
                           check: Callable[[Store, list[Made], str], Awaitable[None]]
                           ) -> None:
    """The history every kept-tops test reads through, checked after each step: `attempts`
    folded in three batches (tops raised, kept, tied), pruned inside part 5 then up to it,
    `late` ones folded (into pruned parts and above), pruned again inside part 10 and past."""
    made: list[Made] = []
    for batch in (attempts[1::3], attempts[2::3], attempts[0::3]):  # tops raised, kept, tied
        made += await settle(store, batch)
        await fold(store)
    await check(store, made, "folded")

    before = BASE + PART * 5 + 50  # inside part 5
    await store.prune_history(before, BASE - 86400, limit=3)  # some of the older attempts
    await check(store, made, "pruned in part")
    while await store.prune_history(before, BASE - 86400, limit=3):
        pass
    await check(store, made, "pruned")

    made += await settle(store, late)
    await fold(store)
    await check(store, made, "folded late")

    await store.prune_history(BASE + PART * 10 + 5, BASE - 86400, limit=2)
    await check(store, made, "pruned again, in part")
    while await store.prune_history(BASE + PART * 10 + 5, BASE - 86400, limit=50):
        pass
    await check(store, made, "pruned again")


async def test_the_kept_tops_read_as_the_attempts_after_folds_and_prunes(store: Store) -> None:
    late = [("acme", "demo.task", "default", BASE + PART * 3 + 9.0, 40.0),  # a pruned part
            ("acme", "demo.task", "default", BASE + PART * 5 + 49.0, 39.0),  # the boundary
            (None, "demo.task", "default", BASE + PART * 10 + 2.0, 8.0),  # ties part 10's top
            ("globex", "demo.task", "default", BASE + PART * 12 + 3.0, 38.0)]
    await folds_and_prunes(store, plan(), late, check)


async def test_a_read_with_no_attempt_left(store: Store) -> None:
    made = await settle(store, plan()[:8])
    await fold(store)
    while await store.prune_history(BASE + 86400, BASE - 86400):
        pass
    for window in windows():
        assert await store.slow_attempts(window, limit=5) == [], window
    made += await settle(store, plan()[40:44])
    await fold(store)
    await check(store, made, "refilled")
