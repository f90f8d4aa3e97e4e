"""Maintenance prunes expired dashboard sessions with the finished jobs (web/sessions.py)."""

from __future__ import annotations

import pytest

from conveyor import Conveyor, FakeClock
from conveyor.worker.worker import Worker

from .conftest import T0

pytestmark = pytest.mark.anyio


async def test_maintenance_prunes_expired_sessions(app: Conveyor, worker: Worker,
                                                   clock: FakeClock) -> None:
    store = app.store
    for index in range(1500):  # more than one bounded round
        await store.create_session(f"short-{index}", "check", 60.0, 600.0, now=T0)
    await store.create_session("long", "check", 600.0, 3600.0, now=T0)
    clock.advance(120)
    assert worker.maintenance is not None
    await worker.maintenance.run_once()
    assert await store.prune_sessions(now=T0 + 120) == 0  # nothing expired is left
    assert await store.revoke_session("short-0") is False  # deleted, not only expired
    assert await store.find_session("long", now=T0 + 120) is not None
