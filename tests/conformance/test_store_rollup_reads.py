"""The analytics reads of 0028 (issue 15, issue 16) read exactly: the workers of every tenant
over a day or a month from all tenants' worker hours (a row per hour and worker, kept by
the fold, pruned with the worker rollups), the same figures as each tenant's summed and as a
Python count of the attempts, folded or pending; and a queue's error groups over a day or a
month (of every tenant, and of one) the same as a Python count."""

from __future__ import annotations

import pytest

from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.store.base import Complete, Fail, Store

from .support import T0, claim_one, enqueue, error, rows_in
from .test_store_error_rollups import DAY, MONTH, Failed, expected, fail_jobs, read

pytestmark = pytest.mark.anyio

TENANTS = (None, "acme", "globex")


async def fold(store: Store) -> None:
    while await store.fold_history(1000):
        pass


async def settle_spread(store: Store, count: int, seed: int) -> list[tuple[object, ...]]:
    """`count` attempts over the last two days, over 3 workers and TENANTS, one in four
    failed: (worker, tenant, ended, failed, duration, cpu, rss) each."""
    out: list[tuple[object, ...]] = []
    for n in range(count):
        k = n * 5 + seed
        worker, tenant = f"w{k % 3}", TENANTS[k % 3 if k % 4 else 1]
        ended, took, failed = T0 - 30 - (k * 3917) % (2 * 86400), 0.25 + k % 7, k % 4 == 0
        await enqueue(store, now=T0 - 3 * 86400, max_attempts=1, tenant=tenant)
        job = await claim_one(store, now=T0 - 3 * 86400, worker_id=worker)
        attempt = AttemptRecord(task=job.task, queue=job.queue, tenant=tenant, number=1,
                                started_at=ended - took, ended_at=ended, worker_id=worker,
                                host=f"host-{worker}", pid=100 + k % 3, cpu=0.5 * (k % 3),
                                rss=1000 * (k % 9), fingerprint="f" * 16 if failed else None,
                                error_message="boom" if failed else None,
                                error_traceback=None)
        item = (Fail(job.lease, error(1), None, attempt=attempt) if failed
                else Complete(job.lease, attempt=attempt))
        assert await store.settle([item], now=T0 - 3 * 86400) == [True]
        out.append((worker, tenant, ended, failed, took, 0.5 * (k % 3), 1000 * (k % 9)))
    return out


def counted(rows: list[tuple[object, ...]], window: TimeRange) -> dict[str, tuple[object, ...]]:
    """Per worker: attempts, failures, busy, cpu, peak rss of the attempts ended from the
    range's first whole hour (the hour rollups' read)."""
    start = window.start // 3600 * 3600
    out: dict[str, list[float]] = {}
    for worker, tenant, ended, failed, took, cpu, rss in rows:
        if start <= ended < window.end and window.tenant in (None, tenant):  # type: ignore[operator]
            w = out.setdefault(str(worker), [0, 0, 0.0, 0.0, 0])
            w[0] += 1
            w[1] += int(bool(failed))
            w[2] += float(took)  # type: ignore[arg-type]
            w[3] += float(cpu)  # type: ignore[arg-type]
            w[4] = max(w[4], float(rss))  # type: ignore[arg-type]
    return {k: (int(v[0]), int(v[1]), pytest.approx(v[2]), pytest.approx(v[3]), int(v[4]))
            for k, v in out.items()}


async def workers_read(store: Store, window: TimeRange) -> dict[str, tuple[object, ...]]:
    return {w.worker_id: (w.attempts, w.failures, w.busy, w.cpu, w.peak_rss)
            for w in await store.worker_analytics(window, now=T0)}


async def test_every_tenants_worker_hours_are_each_tenants_summed(store: Store) -> None:
    rows = await settle_spread(store, 30, seed=1)
    await fold(store)
    rows += await settle_spread(store, 12, seed=2)  # pending: not folded yet
    for window in (DAY, MONTH, TimeRange(T0 - 6 * 3600 - 5, T0 + 60)):
        for tenant in TENANTS:
            scoped = TimeRange(window.start, window.end, tenant=tenant)
            want = counted(rows, scoped)
            assert want, (window, tenant)
            assert await workers_read(store, scoped) == want, (window, tenant)
    await fold(store)
    hours = {(int(float(r[2]) // 3600), r[0]) for r in rows}  # type: ignore[arg-type]
    assert await rows_in(store, "conveyor_worker_rollups_all") == len(hours)
    assert await workers_read(store, MONTH) == counted(rows, MONTH)
    assert await store.prune_history(T0 + 86400, T0 + 86400) >= 0
    assert await rows_in(store, "conveyor_worker_rollups_all") == 0, "pruned with the rollups"


def queue_of(failed: list[Failed], seed: int) -> dict[str, str]:
    """fail_jobs' queue of each job (q0 or q1, by its place and seed)."""
    return {f.job_id: f"q{(n * 7 + seed) % 2}" for n, f in enumerate(failed)}


async def test_a_queues_error_groups_over_a_day_and_a_month(store: Store) -> None:
    failed = await fail_jobs(store, 30, seed=1)
    queues = queue_of(failed, 1)
    await fold(store)
    pending = await fail_jobs(store, 24, seed=2)   # pending: not folded yet
    queues.update(queue_of(pending, 2))
    failed += pending
    for queue in ("q0", "q1"):
        for tenant in TENANTS:
            for window, width in ((DAY, 3600), (MONTH, 86400)):
                scoped = TimeRange(window.start, window.end, tenant=tenant, queue=queue)
                want = expected([f for f in failed if queues[f.job_id] == queue],
                                TimeRange(window.start, window.end, tenant=tenant), width)
                # a group's dead jobs are of every queue (kept per group and tenant)
                dead = {g[0]: g[7] for g in expected(
                    failed, TimeRange(window.start, window.end, tenant=tenant), width)}
                want = [(*g[:7], dead[g[0]]) for g in want]
                assert want, (queue, tenant, window)
                assert await read(store, scoped) == want, (queue, tenant, window)
