"""Error groups read exactly (issue 15, migration 0023): over an hour (the failed attempts),
a day (hour rollups) and a month (day rollups), of every tenant and of one, with attempts
folded and attempts still pending in the same range: the same groups, counts, first and last
seen, tasks, newest message, sample job and dead jobs as a Python count of the attempts. All
tenants' long ranges read conveyor_error_rollups_all (a row per width, minute, group and
task, however many tenants and queues), kept by the fold and pruned with the rollups; and a
group's dead jobs are read a page at a time, after an id."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.store.base import Fail, Store

from .support import T0, claim_one, enqueue, error, rows_in

pytestmark = pytest.mark.anyio

FPS = ("a" * 16, "b" * 16, "c" * 16)
TENANTS = (None, "acme", "globex")
HOUR, DAY = TimeRange(T0 - 3600, T0 + 60), TimeRange(T0 - 86400, T0 + 60)
MONTH = TimeRange(T0 - 30 * 86400, T0 + 60)


@dataclass
class Failed:
    job_id: str
    fingerprint: str
    task: str
    tenant: str | None
    ended_at: float
    message: str


async def fail_jobs(store: Store, count: int, seed: int) -> list[Failed]:
    """`count` jobs that die in one failed attempt each, spread over groups, tasks, queues,
    tenants and the last day (a few two days ago), each ended at its own time."""
    out = []
    for n in range(count):
        k = n * 7 + seed
        fp, task, tenant = FPS[k % 3 if k % 5 else 0], f"task{k % 4}", TENANTS[k % 3]
        ended = T0 - 2 * 86400 - k if k % 11 == 0 else T0 - 30 - (k * 1733) % 86000 - seed
        job_id = await enqueue(store, now=T0 - 3 * 86400, max_attempts=1, task=task,
                               queue=f"q{k % 2}", tenant=tenant)
        job = await claim_one(store, now=T0 - 3 * 86400)
        message = f"failure {seed}-{n}"
        attempt = AttemptRecord(task=task, queue=job.queue, tenant=tenant, number=1,
                                started_at=ended - 0.25, ended_at=ended, worker_id="w1",
                                host="host-a", pid=1, cpu=0.1, rss=1000, fingerprint=fp,
                                error_message=message, error_traceback=None)
        assert await store.settle([Fail(job.lease, error(1, message), None, attempt=attempt)],
                                  now=T0 - 3 * 86400) == [True]
        out.append(Failed(job_id, fp, task, tenant, ended, message))
    return out


def expected(failed: list[Failed], window: TimeRange, width: int | None
             ) -> list[tuple[object, ...]]:
    """What error_groups gives: the range from its first whole `width` (None: as given)."""
    start = window.start if width is None else window.start // width * width
    shown = [f for f in failed if start <= f.ended_at < window.end
             and (window.tenant is None or f.tenant == window.tenant)]
    groups: dict[str, list[Failed]] = {}
    for f in shown:
        groups.setdefault(f.fingerprint, []).append(f)
    out = []
    for fp, rows in groups.items():
        newest = max(rows, key=lambda f: f.ended_at)
        dead = sum(1 for f in failed if f.fingerprint == fp
                   and (window.tenant is None or f.tenant == window.tenant))
        out.append((fp, len(rows), min(f.ended_at for f in rows), newest.ended_at,
                    tuple(sorted({f.task for f in rows})), newest.job_id, newest.message, dead))
    return sorted(out, key=lambda g: (-int(g[1]), -float(g[3])))  # type: ignore[call-overload]


async def read(store: Store, window: TimeRange) -> list[tuple[object, ...]]:
    return [(g.fingerprint, g.count, g.first_seen, g.last_seen, g.tasks, g.sample_job,
             g.message, g.dead_jobs) for g in await store.error_groups(window)]


async def test_error_groups_are_exact_over_folded_and_pending_rows(store: Store) -> None:
    failed = await fail_jobs(store, 30, seed=1)
    while await store.fold_history(1000):
        pass
    failed += await fail_jobs(store, 24, seed=2)   # pending: not folded yet
    for tenant in (None, *TENANTS[1:]):
        for window, width in ((HOUR, None), (DAY, 3600), (MONTH, 86400)):
            scoped = TimeRange(window.start, window.end, tenant=tenant)
            want = expected(failed, scoped, width)
            assert want, (tenant, window)
            assert await read(store, scoped) == want, (tenant, window)
    while await store.fold_history(1000):
        pass
    for tenant in (None, "acme"):
        for window, width in ((HOUR, None), (DAY, 3600), (MONTH, 86400)):
            scoped = TimeRange(window.start, window.end, tenant=tenant)
            assert await read(store, scoped) == expected(failed, scoped, width)


async def test_all_tenants_error_rollups_are_kept_summed_and_pruned(store: Store) -> None:
    failed = await fail_jobs(store, 30, seed=3)
    while await store.fold_history(1000):
        pass
    keys = {(width, int(f.ended_at // width), f.fingerprint, f.task)
            for f in failed for width in (3600, 86400)}
    assert await rows_in(store, "conveyor_error_rollups_all") == len(keys)
    assert await store.prune_history(T0 + 86400, T0 + 86400) >= 0
    assert await rows_in(store, "conveyor_error_rollups_all") == 0, "pruned with the rollups"


async def test_a_groups_dead_jobs_are_read_a_page_after_an_id(store: Store) -> None:
    failed = await fail_jobs(store, 40, seed=4)
    for tenant in (None, "acme"):
        ids = sorted(f.job_id for f in failed if f.fingerprint == FPS[0]
                     and (tenant is None or f.tenant == tenant))
        assert len(ids) > 2
        pages, after = [], None
        while page := await store.group_dead_jobs(FPS[0], tenant, limit=2, after=after):
            assert len(page) <= 2
            pages += page
            after = page[-1]
        assert pages == ids
        assert await store.group_dead_jobs(FPS[0], tenant) == ids
