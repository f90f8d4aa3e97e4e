"""The attempt history's pending rows: a settle writes its attempts there only (no attempts
row, no rollup, in the settle's own trip); fold_history moves them into the attempts and
the rollups exactly once, in bounded batches, however many folders run at once, and the
rollups it writes are the Python fold (history_rows) of every attempt stored; a job's
attempts and pruning fold first; the analytics read the pending rows beside the folded ones
without writing: task_analytics all of them, the others (charts, errors, workers, slow
attempts, a group's dead jobs) at most PENDING_READ, so reads are exact while maintenance
keeps up and bounded when it falls behind; history retention is unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from conveyor.history.fingerprint import fingerprint
from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.job import ClaimedJob
from conveyor.store import history_reads
from conveyor.store import history_rows as hr
from conveyor.store.base import Complete, Fail, Settle, Store
from conveyor.store.history_sql import ROLLUP_COLUMNS

from .conftest import StoreSetup
from .support import LEASE, T0, claim_one, enqueue, error, new_job, rows_in, worker_info

pytestmark = pytest.mark.anyio

ALL = TimeRange(T0 - 3600, T0 + 3600)
PENDING, ATTEMPTS = "conveyor_attempts_pending", "conveyor_attempts"
ROLLUP_TABLES = ("conveyor_rollups", "conveyor_worker_rollups", "conveyor_error_rollups")
FP = fingerprint("ValueError", "boom", "tasks.py:charge")


def record(job: ClaimedJob, took: float = 0.5, at: float = T0) -> AttemptRecord:
    return AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant, number=job.attempt,
                         started_at=at, ended_at=at + took, worker_id="worker-1",
                         host="host-a", pid=4242, cpu=took / 2, rss=1000,
                         fingerprint=None)


def _sqlite(store: Store) -> bool:
    return store.__class__.__name__ == "SQLiteStore"


async def uncounted(store: Store) -> int:
    """Attempt rows the rollups do not count yet (pending: the fold's to move)."""
    return await rows_in(store, PENDING)


async def counted(store: Store) -> int:
    """Attempt rows stored and counted in the rollups."""
    return await rows_in(store, ATTEMPTS)


async def settle_many(store: Store, count: int, at: float = T0) -> list[str]:
    """`count` jobs run once: one in five failed (dead), the others completed."""
    await store.enqueue_many([new_job(max_attempts=1) for _ in range(count)], now=at)
    jobs = await store.claim(None, "worker-1", count, LEASE, now=at)
    assert len(jobs) == count
    items: list[Settle] = []
    for i, job in enumerate(jobs):
        attempt = record(job, at=at)
        if i % 5 == 0:
            attempt.fingerprint = FP
            items.append(Fail(job.lease, error(1), None, attempt=attempt))
        else:
            items.append(Complete(job.lease, attempt=attempt))
    assert await store.settle(items, now=at + 1) == [True] * count
    return [job.id for job in jobs]


async def fold_all(store: Store) -> int:
    total = 0
    while moved := await store.fold_history(1000):
        total += moved
    return total


async def rollup_total(store: Store) -> int:
    return sum(s.total for s in await store.task_analytics(ALL))


async def test_a_settle_writes_uncounted_rows_only(store: Store) -> None:
    await settle_many(store, 10)
    assert (await uncounted(store), await counted(store)) == (10, 0)
    for table in ROLLUP_TABLES:
        assert await rows_in(store, table) == 0, table


async def test_a_refused_settle_leaves_nothing_pending(store: Store) -> None:
    await enqueue(store)
    job = await claim_one(store)
    stale = job.lease._replace(token=job.token + 1)
    assert await store.settle([Complete(stale, attempt=record(job))], now=T0 + 1) == [False]
    assert await uncounted(store) == 0 and await rows_in(store, ATTEMPTS) == 0


async def test_fold_moves_each_pending_row_once(store: Store) -> None:
    await settle_many(store, 12)
    assert await store.fold_history(5) == 5     # bounded by its limit
    assert (await uncounted(store), await counted(store)) == (7, 5)
    assert await fold_all(store) == 7
    assert await store.fold_history(1000) == 0  # nothing left: nothing added twice
    assert (await uncounted(store), await counted(store)) == (0, 12)
    assert await rows_in(store, ATTEMPTS) == 12
    [summary] = await store.task_analytics(ALL)
    assert summary.counts["completed"] == 9 and summary.counts["dead"] == 3
    [worker] = [w for w in await store.worker_analytics(ALL) if w.worker_id == "worker-1"]
    assert (worker.attempts, worker.failures) == (12, 3)
    month = TimeRange(T0 - 25 * 86400, T0 + 3600)  # read from the error day rollups
    [group] = await store.error_groups(month)
    assert (group.fingerprint, group.count) == (FP, 3)


async def test_reads_see_attempts_not_yet_folded(store: Store) -> None:
    ids = await settle_many(store, 5)
    assert await uncounted(store) == 5
    [attempt] = await store.job_attempts(ids[1])
    assert attempt.outcome == "completed"
    assert await uncounted(store) == 0, "the read folded first"
    await settle_many(store, 5, at=T0 + 2)  # more pending, read by each kind of read
    assert await rollup_total(store) == 10
    await settle_many(store, 5, at=T0 + 3)
    [group] = await store.error_groups(ALL)
    assert group.count == 3 and group.dead_jobs == 3
    await settle_many(store, 5, at=T0 + 4)
    assert len(await store.group_dead_jobs(FP)) == 4
    await settle_many(store, 5, at=T0 + 5)
    assert len(await store.slow_attempts(ALL, limit=100)) == 25
    await settle_many(store, 5, at=T0 + 6)
    [worker] = [w for w in await store.worker_analytics(ALL) if w.worker_id == "worker-1"]
    assert worker.attempts == 30
    assert await rollup_total(store) == 30
    assert (await counted(store), await uncounted(store)) == (5, 25), "reads, not folds"


async def test_task_analytics_sums_pending_rows_without_folding(store: Store) -> None:
    await settle_many(store, 10)
    assert await fold_all(store) == 10
    await settle_many(store, 5, at=T0 + 120)    # pending, two minutes on
    await settle_many(store, 5, at=T0 + 7200)   # pending, past the hour read below
    windows = [(ALL, 120), (TimeRange(T0 - 86400, T0 + 3600), 30),   # minute, hour
               (TimeRange(T0 - 30 * 86400, T0 + 3600), 30)]          # and day rollups
    unfolded = [await store.task_analytics(w, points) for w, points in windows]
    assert await uncounted(store) == 10, "a read, not a fold"
    [summary] = unfolded[0]
    assert (summary.counts["completed"], summary.counts["dead"]) == (12, 3)
    assert sum(summary.series) == 15 and summary.series[60] == 10 and summary.series[62] == 5
    assert await fold_all(store) == 10
    assert [await store.task_analytics(w, points) for w, points in windows] == unfolded


async def test_all_tenants_figures_are_kept_apart_summed(store: Store) -> None:
    """task_analytics without a tenant reads all tenants' own rollups (0016): one row per
    width, minute, task and queue, however many tenants; the same sums as each tenant's."""
    for tenant, count in (("acme", 3), ("globex", 2), (None, 1)):
        await store.enqueue_many([new_job(tenant=tenant, max_attempts=1)
                                  for _ in range(count)], now=T0)
        jobs = await store.claim(None, "worker-1", count, LEASE, now=T0)
        assert await store.settle([Complete(j.lease, attempt=record(j)) for j in jobs],
                                  now=T0 + 1) == [True] * count
    await fold_all(store)
    assert await rows_in(store, "conveyor_rollups_all") == 3  # minute, hour, day
    assert await rows_in(store, "conveyor_rollups") == 9      # and per tenant
    await settle_many(store, 4, at=T0 + 60)                    # pending, untenanted
    days = TimeRange(T0 - 30 * 86400, T0 + 3600)
    for window in (ALL, TimeRange(T0 - 86400, T0 + 3600), days):
        [every] = await store.task_analytics(window)
        assert (every.total, every.counts["completed"], every.counts["dead"]) == (10, 9, 1)
        for tenant, total in (("acme", 3), ("globex", 2)):
            [own] = await store.task_analytics(TimeRange(window.start, window.end, tenant=tenant))
            assert own.total == total
    assert await store.prune_history(T0 + 7 * 86400, T0 + 7 * 86400) >= 0
    assert await rows_in(store, "conveyor_rollups_all") == 0, "pruned with the rollups"



async def test_queue_analytics_is_task_analytics_summed_per_queue(store: Store) -> None:
    """queue_analytics (the charts' read): per queue, every task summed, the same counts and
    points as task_analytics, folded or pending, all tenants or one."""
    for tenant, task, queue, count in (("acme", "a", "q1", 3), ("acme", "b", "q1", 2),
                                       ("globex", "a", "q2", 4), (None, "b", "q2", 1)):
        await store.enqueue_many([new_job(task=task, queue=queue, tenant=tenant,
                                          max_attempts=1) for _ in range(count)], now=T0)
        jobs = await store.claim([queue], "worker-1", count, LEASE, now=T0)
        items: list[Settle] = [Complete(j.lease, attempt=record(j)) for j in jobs[1:]]
        items.append(Fail(jobs[0].lease, error(1), None, attempt=record(jobs[0])))
        assert await store.settle(items, now=T0 + 1) == [True] * count
    await fold_all(store)
    await settle_many(store, 5, at=T0 + 120)   # pending, on the default queue
    windows = [(ALL, 120), (TimeRange(T0 - 86400, T0 + 3600), 30),
               (TimeRange(T0 - 30 * 86400, T0 + 3600), 30),
               (TimeRange(T0 - 3600, T0 + 3600, tenant="acme"), 120)]
    for window, points in windows:
        per_task = await store.task_analytics(window, points)
        per_queue = await store.queue_analytics(window, points)
        assert [s.queue for s in per_queue] == sorted({s.queue for s in per_task})
        for summary in per_queue:
            same = [s for s in per_task if s.queue == summary.queue]
            assert summary.task == "" and summary.total == sum(s.total for s in same)
            assert summary.counts == {o: sum(s.counts[o] for s in same) for o in summary.counts}
            assert list(summary.series) == [sum(col) for col in zip(*(s.series for s in same),
                                                                    strict=True)]
            assert list(summary.failures) == [sum(col) for col in zip(
                *(s.failures for s in same), strict=True)]
    [q1] = [s for s in await store.queue_analytics(ALL, 120) if s.queue == "q1"]
    assert (q1.total, q1.failed, q1.series[60]) == (5, 2, 5)
    assert await rows_in(store, PENDING) == 5, "a read, not a fold"

async def test_the_charts_read_sums_a_bounded_tail_of_pending_rows(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """queue_analytics (the charts', every refresh) sums at most PENDING_READ pending rows
    beside the folded rollups: its cost stays bounded when maintenance falls behind, and the
    rows past the limit show once folded. task_analytics (the API's) stays exact."""
    monkeypatch.setattr(history_reads, "PENDING_READ", 4)
    await settle_many(store, 3)
    await fold_all(store)
    await settle_many(store, 10, at=T0 + 60)          # pending, past the limit
    [every] = await store.task_analytics(ALL)
    assert every.total == 13
    [charted] = await store.queue_analytics(ALL, 120)
    assert charted.total == 3 + 4, "the folded rows and at most 4 pending"
    assert sum(charted.series) == charted.total
    assert await rows_in(store, PENDING) == 10, "a read, not a fold"
    await fold_all(store)
    [charted] = await store.queue_analytics(ALL, 120)
    assert charted.total == 13


async def test_the_analytics_read_a_bounded_tail_of_pending_rows(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors, workers and slow attempts read at most PENDING_READ pending rows beside the
    folded ones, without folding: bounded when maintenance falls behind; the rows past the
    limit show once folded. A group's dead jobs are exact all along (kept as jobs die, not
    read from the history: dead_groups.py)."""
    monkeypatch.setattr(history_reads, "PENDING_READ", 4)
    await settle_many(store, 10)                      # folded: 2 dead in the group
    await fold_all(store)
    await settle_many(store, 20, at=T0 + 60)          # pending: 4 dead, past the limit
    month = TimeRange(T0 - 25 * 86400, T0 + 3600)     # from the day rollups
    for window in (ALL, month):
        [group] = await store.error_groups(window)
        assert 2 <= group.count <= 2 + 4 and group.dead_jobs == 6, window
    assert len(await store.group_dead_jobs(FP)) == 6
    assert 10 < len(await store.slow_attempts(ALL, limit=100)) <= 14
    [worker] = [w for w in await store.worker_analytics(ALL) if w.worker_id == "worker-1"]
    assert worker.attempts == 14 and 2 <= worker.failures <= 6
    [worker] = [w for w in await store.worker_analytics(month) if w.worker_id == "worker-1"]
    assert worker.attempts == 14                      # from the hour rollups
    assert await uncounted(store) == 20, "reads, not folds"
    await fold_all(store)
    [group] = await store.error_groups(ALL)
    assert (group.count, group.dead_jobs) == (6, 6)
    assert len(await store.slow_attempts(ALL, limit=100)) == 30
    [worker] = [w for w in await store.worker_analytics(ALL) if w.worker_id == "worker-1"]
    assert (worker.attempts, worker.failures) == (30, 6)


async def test_a_rescued_attempt_is_pending_then_folded(store: Store) -> None:
    await enqueue(store, max_attempts=2)
    await store.heartbeat(worker_info(), [], LEASE, now=T0)
    await claim_one(store, now=T0)
    assert await store.rescue_expired(now=T0 + LEASE + 5) == 1
    assert (await uncounted(store), await counted(store)) == (1, 0)
    assert await store.fold_history() == 1
    [summary] = await store.task_analytics(ALL)
    assert summary.counts["lost"] == 1


async def test_retention_prunes_pending_attempts_too(store: Store) -> None:
    [old] = await settle_many(store, 1, at=T0 - 7200)
    [new] = await settle_many(store, 1)
    assert await uncounted(store) == 2
    assert await store.prune_history(T0 - 3600, T0 - 3600) == 1  # folds, then prunes
    assert await uncounted(store) == 0
    assert await store.job_attempts(old) == []
    assert len(await store.job_attempts(new)) == 1
    assert await rollup_total(store) == 1


async def test_concurrent_folders_count_each_attempt_once(store: Store,
                                                          store_setup: StoreSetup) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store is one connection")
    await settle_many(store, 600)
    others = [store_setup.make() for _ in range(2)]
    for other in others:
        await other.open()
    try:
        async def folder(folding: Store) -> int:
            total = 0
            while moved := await folding.fold_history(40):
                total += moved
                await asyncio.sleep(0)
            return total

        moved = await asyncio.gather(folder(store), *(folder(o) for o in others))
    finally:
        for other in others:
            await other.close()
    assert sum(moved) == 600
    assert await rows_in(store, ATTEMPTS) == 600 and await uncounted(store) == 0
    assert await rollup_total(store) == 600


async def _select(store: Store, sql: str) -> list[tuple[object, ...]]:
    """Rows of a query behind the store's back (no fold first)."""
    if _sqlite(store):
        with store.db.read() as conn:  # type: ignore[attr-defined]
            return [tuple(r) for r in conn.execute(sql.replace("{schema}.", ""))]
    return [tuple(r) for r in await store._one(sql)]  # type: ignore[attr-defined]


def _rounded(rows: Sequence[Sequence[object]]) -> list[tuple[object, ...]]:
    return sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                  for row in rows)


async def test_the_rollups_are_the_fold_of_every_attempt_stored(store: Store) -> None:
    """What the fold wrote, whichever way the attempts came (a settle's, a rescue's lost
    attempt, on SQLite an older worker's pending rows too), is history_rows.rollups_of over
    the attempt rows stored: the Python fold the first version of history ran per settle."""
    await settle_many(store, 7, at=T0)
    await fold_all(store)
    await settle_many(store, 6, at=T0 + 61.5)   # the next minute, some left uncounted
    await enqueue(store, max_attempts=2)
    await store.heartbeat(worker_info(), [], LEASE, now=T0)
    await claim_one(store, now=T0)
    assert await store.rescue_expired(now=T0 + LEASE + 5) == 1
    assert await uncounted(store) > 0
    await fold_all(store)
    assert await uncounted(store) == 0
    attempts = await _select(store, f"SELECT {', '.join(hr.ATTEMPT_COLUMNS)} "
                                    "FROM {schema}.conveyor_attempts")
    assert len(attempts) == 14
    expected = sorted(r.params() for r in hr.rollups_of(attempts))
    stored = sorted(await _select(store, f"SELECT {', '.join(ROLLUP_COLUMNS)} "
                                         "FROM {schema}.conveyor_rollups"))
    assert _rounded(stored) == _rounded(expected)
    workers = [(*r[:3], *r[5:]) for r in hr.worker_rollups(attempts)]  # host: any one
    assert _rounded(await _select(store, "SELECT hour, worker_id, tenant, attempts, failures, "
                                         "busy, cpu, peak_rss "
                                         "FROM {schema}.conveyor_worker_rollups")
                    ) == _rounded(workers)
    assert _rounded(await _select(store, "SELECT width, minute, fingerprint, task, queue, "
                                       "tenant, failures, first_seen, last_seen "
                                       "FROM {schema}.conveyor_error_rollups")
                  ) == _rounded(hr.error_rollups(attempts))


async def test_attempts_after_pruning_every_row_are_counted(store: Store) -> None:
    """Pruning the whole attempts table, then settling again: SQLite hands out ids from 1
    again, below the fold's watermark; the new attempts are still counted, once."""
    await settle_many(store, 3, at=T0 - 7200)
    assert await fold_all(store) == 3
    assert await store.prune_history(T0 - 3600, T0 - 30 * 86400) == 3
    assert await rows_in(store, ATTEMPTS) == 0
    ids = await settle_many(store, 2, at=T0)
    assert await uncounted(store) == 2
    assert await fold_all(store) == 2
    assert await fold_all(store) == 0
    wide = TimeRange(T0 - 86400, T0 + 3600)
    assert sum(s.total for s in await store.task_analytics(wide)) == 5
    assert len(await store.job_attempts(ids[0])) == 1



async def test_attempts_sharing_a_key_are_counted_together_in_one_fold(store: Store) -> None:
    """Many attempts of one minute, task, queue, tenant, outcome, bucket and worker, folded
    in one batch (SQLite counts them into one row per key first): the rollups and the
    worker rollups are still the Python fold of the attempts, a peak RSS the largest of
    the ones known (None where none is), CPU summed with the unknown as 0."""
    rss = [None, 500, 2000, None, 100, 2000, 7, None]
    cpu = [None, 0.5, 0.25, None, 1.0, 0.125, None, 2.0]
    items: list[Settle] = []
    for tenant in (None, "acme"):
        await store.enqueue_many([new_job(max_attempts=1, tenant=tenant)
                                  for _ in range(24)], now=T0)
    jobs = await store.claim(None, "worker-1", 48, LEASE, now=T0)
    assert len(jobs) == 48
    for i, job in enumerate(jobs):
        worker = ("worker-1", "worker-2")[i % 3 == 2] if i < 46 else "worker-3"
        attempt = AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant,
                                number=job.attempt, started_at=T0 + i / 100,
                                ended_at=T0 + i / 100 + (0.003 if i % 4 else 0.5),
                                worker_id=worker, host=f"host-{worker[-1]}", pid=4242,
                                cpu=cpu[i % 8], rss=rss[i % 8] if i < 40 else None)
        if i >= 46:  # worker-3: two attempts of one key, the first with no RSS known
            attempt.ended_at, attempt.rss = attempt.started_at + 0.003, (None, 300)[i - 46]
        if i % 5 == 1 and i < 46:
            attempt.fingerprint = FP
            items.append(Fail(job.lease, error(1), None, attempt=attempt))
        else:
            items.append(Complete(job.lease, attempt=attempt))
    assert await store.settle(items, now=T0 + 1) == [True] * 48
    assert await store.fold_history(1000) == 48
    attempts = await _select(store, f"SELECT {', '.join(hr.ATTEMPT_COLUMNS)} "
                                    "FROM {schema}.conveyor_attempts")
    assert len(attempts) == 48
    stored = await _select(store, f"SELECT {', '.join(ROLLUP_COLUMNS)} "
                                  "FROM {schema}.conveyor_rollups")
    assert _rounded(stored) == _rounded([r.params() for r in hr.rollups_of(attempts)])
    workers = await _select(store, "SELECT hour, worker_id, tenant, host, pid, attempts, "
                                   "failures, busy, cpu, peak_rss "
                                   "FROM {schema}.conveyor_worker_rollups")
    assert _rounded(workers) == _rounded(hr.worker_rollups(attempts))
    assert [row[-1] for row in workers if row[1] == "worker-3"] == [300]
    errors = await _select(store, "SELECT width, minute, fingerprint, task, queue, tenant, "
                                  "failures, first_seen, last_seen "
                                  "FROM {schema}.conveyor_error_rollups")
    assert _rounded(errors) == _rounded(hr.error_rollups(attempts))
