"""Migration 0034 (both stores): a worker row an older release wrote (no claimed_until) is
believed for 60 s after its heartbeat, as before; a heartbeat from this release says until
when its claimed-ahead counts hold: its time plus the lease it extends its jobs by."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.stores import BOTH, raw_execute, store_url_for

from conveyor.job import NewJob, WorkerInfo, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import open_store

VERSION = 34
T = 1_700_000_000.0
OLD_ROW = ("INSERT INTO {schema}conveyor_workers (id, host, pid, queues, concurrency, "
           "started_at, heartbeat_at, running, claimed, claimed_queues) "
           "VALUES ('old', 'h', 1, 'q', 3, %s, %s, 1, 2, '{\"q\": 2}')")


@pytest.mark.parametrize("kind", BOTH)
def test_0034_keeps_an_old_rows_counts_and_dates_a_new_heartbeats(
        kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_claimed34") as url:
        raw = raw_execute(url)
        prefix = "" if kind == "sqlite" else f'"{url.split("?schema=")[1]}".'

        async def run() -> None:
            store = open_store(url)
            newest = [m for m in store._migrations if m.version <= VERSION]
            store._migrations = [m for m in newest if m.version < VERSION]
            await store.migrate()
            await store.set_limit(Limit("queue", "q", concurrency=10), now=T)
            await store.enqueue_many([NewJob(id=new_id(), payload=b"{}", queue="q", task="t")
                                      for _ in range(3)], now=T)
            claimed = await store.claim(["q"], "old", 3, 100.0, now=T)
            raw(OLD_ROW.replace("{schema}", prefix), [(T, T)])
            store._migrations = newest
            assert await store.migrate() == 1  # 0034 alone

            async def running(at: float) -> int:
                [usage] = await store.limits(now=at)
                return usage.running

            assert await running(T + 40) == 1  # 3 claimed, 2 ahead: believed for 60 s
            assert await running(T + 61) == 3
            info = WorkerInfo("old", "h", 1, ("q",), 3, claimed=2, claimed_queues={"q": 2})
            await store.heartbeat(info, [c.lease for c in claimed], 30.0, now=T + 62)
            until = raw(f"SELECT claimed_until FROM {prefix}conveyor_workers", None)
            assert [float(r[0]) for r in until] == [T + 92]
            assert await running(T + 91) == 1
            await store.close()

        asyncio.run(run())
