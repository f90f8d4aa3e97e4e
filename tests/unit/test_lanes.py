"""The upkeep lane (store/lanes.py): tasks started inside upkeep() carry it; hooks that
maintenance fires (outside_upkeep) do not, so their store calls use the exchange's pool rather
than queue behind each other on upkeep's few connections."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.store.lanes import UPKEEP, outside_upkeep, upkeep

pytestmark = pytest.mark.anyio


async def test_tasks_started_in_the_lane_carry_it_and_fired_hooks_do_not() -> None:
    seen: dict[str, bool] = {}

    async def probe(name: str) -> None:
        seen[name] = UPKEEP.get()

    tasks: list[asyncio.Task[None]] = []

    def fire(name: str) -> None:  # as hooks.fire_all starts an async hook
        tasks.append(asyncio.get_running_loop().create_task(probe(name)))

    with upkeep():
        tasks.append(asyncio.get_running_loop().create_task(probe("maintenance")))
        outside_upkeep(fire, "hook")
        assert UPKEEP.get()  # the caller stays in the lane
    await asyncio.gather(*tasks)
    assert seen == {"maintenance": True, "hook": False}
    assert not UPKEEP.get()
