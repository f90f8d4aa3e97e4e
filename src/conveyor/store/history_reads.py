"""Attempt history reads for both stores: the analytics (tasks, errors, workers, slow
attempts), a job's attempts, the dead jobs of an error group, and history pruning. The
logic lives here once; each store supplies `_history_rows` (run one statement of
history_sql.py, return its rows) and `_history_count` (run one, return the rows changed),
and `fold_history`. A settle writes pending rows only; the reads do not fold them (a write,
and 20,000 pending rows cost seconds) but read them beside the folded ones in the same
statement: task_analytics every pending row (exact), the others (charts, errors, workers,
slow attempts) at most PENDING_READ of them (history_sql._tail):
exact while maintenance keeps up, bounded when it falls behind. job_attempts and pruning
fold first. A group's dead jobs are not read from the history: dead_groups.py."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..history.records import AttemptInfo, ErrorGroup, TaskSummary, TimeRange, WorkerSummary
from . import dead_groups as dg
from . import history_sql as hq
from .history_rows import attempt_info, queue_summaries, task_summaries

if TYPE_CHECKING:
    from ..job import WorkerInfo

Rows = list[tuple[Any, ...]]
FOLD_BATCH = 10_000  # pending rows moved per fold statement (one short transaction each)
# pending rows the charts' read (queue_analytics) sums at most: maintenance folds about every
# second, so this is some seconds of a fast drain; past it the read stays bounded and the
# rows past the limit show once folded (history_sql.queue_rollups)
PENDING_READ = 5_000
# the slow read's statements (HistoryReads._slow): (kept, named) per kind, each for one
# tenant, then for all tenants
SLOW_KINDS: tuple[tuple[bool, str | None], ...] = (
    (False, None), (True, None), (True, "task"), (True, "queue"))


def _points(window: TimeRange, points: int) -> tuple[dict[str, Any], int]:
    """The rollup width, minutes and points of a range (task_analytics), as parameters; and
    how many points that makes."""
    span = window.end - window.start
    width = 86400 if span >= 20 * 86400 else 3600 if span >= 12 * 3600 else 60
    first = int(window.start // width) * width // 60
    end = max(first + 1, int(-(-window.end // 60)))
    step = width // 60  # a point is a whole number of rollup rows
    per = step * max(1, round((end - first) / step / points))
    return ({**_scope(window), "first_minute": first, "end_minute": end,
             "minutes_per_point": per, "width": width,
             "pending_end": -(-end * 60 // width) * width},  # the last row's end
            -(-(end - first) // per))


def _scope(window: TimeRange) -> dict[str, Any]:
    return {"start": window.start, "end": window.end, "tenant": window.tenant,
            "task": window.task, "queue": window.queue, "pending_limit": PENDING_READ}


class HistoryReads:
    # history_sql.queue_rollups in the store's dialect: (a tenant's, all tenants')
    # history_sql.task_rollups in the store's dialect: (a tenant's, all tenants', a tenant's
    # over day rows: SQLite's by their own index, 0031; all tenants' over day rows: SQLite's
    # summed per pair in their own index's order, 0033)
    _task_rollups: tuple[str, str, str, str]
    _queue_rollups: tuple[str, str]
    # history_sql.slow in the store's dialect, each as (one tenant's, all tenants'): stepping
    # every part (a task and a queue, or a tenant ''), from the tops kept (0026), from the
    # tops kept of a task, of a queue (0027): SLOW_KINDS' order
    _slow: tuple[str, ...]

    async def _history_rows(self, template: str, params: dict[str, Any]) -> Rows:
        raise NotImplementedError

    async def _history_count(self, template: str, params: dict[str, Any]) -> int:
        raise NotImplementedError

    async def fold_history(self, limit: int = FOLD_BATCH) -> int:
        raise NotImplementedError

    async def _fold_pending(self) -> None:
        """Fold every pending attempt row before a read (a few at most: maintenance folds
        about every second). A store that may not write skips it (fold_history says 0)."""
        while await self.fold_history(FOLD_BATCH) >= FOLD_BATCH:
            pass

    if TYPE_CHECKING:
        async def workers(self, now: float | None = None) -> list[WorkerInfo]: ...

    async def job_attempts(self, job_id: str, tenant: str | None = None) -> list[AttemptInfo]:
        """Every recorded attempt of one job, oldest first (still there after it is pruned)."""
        await self._fold_pending()
        rows = await self._history_rows(hq.JOB_ATTEMPTS, {"id": job_id, "tenant": tenant})
        return [attempt_info(r) for r in rows]

    async def task_analytics(self, window: TimeRange, points: int = 30) -> list[TaskSummary]:
        """Per (task, queue) over the range, from the rollups: counts by outcome, p50/p95/p99
        and about `points` buckets of attempts and failures (for sparklines). From 12 hours
        on, hour rollups are summed (from 20 days, day rollups): the range then starts at
        its first whole hour (day, UTC), and a point is a whole number of them. The
        pending attempts are summed with the rollups, not folded first (a write)."""
        params, points = _points(window, points)
        days = params["width"] == 86400
        rows = await self._task_rows(
            self._task_rollups[(window.tenant is None) + 2 * days], params)
        return task_summaries(rows, points)

    async def _task_rows(self, template: str, params: dict[str, Any]) -> Rows:
        """task_analytics' statement run (PostgreSQL: with no sort, see its own)."""
        return await self._history_rows(template, params)

    async def queue_analytics(self, window: TimeRange, points: int = 30
                              ) -> list[TaskSummary]:
        """task_analytics per queue, every task summed (task ''): counts by outcome and the
        points of attempts and failures, no durations. What the charts draw, in at most
        points x queues rows. It sums at most PENDING_READ pending rows: exact while
        maintenance keeps up; a bounded read, a little behind, when it does not."""
        params, points = _points(window, points)
        rows = await self._history_rows(self._queue_rollups[window.tenant is None],
                                        {**params, "pending_limit": PENDING_READ})
        return queue_summaries(rows, points)

    async def slow_attempts(self, window: TimeRange, limit: int = 20) -> list[AttemptInfo]:
        """The range's slowest attempts, slowest first (equal durations: the newest end
        first, then job id and attempt, descending). Read by 10-minute parts, down to a cut
        found from each part's slowest (history_sql.slow); the parts are the SQL's own floor
        of ended_at / SLOW_PART (a float division as the SQL's, so an attempt at the range's
        edge is in one of them; an end on a part's start adds an empty part)."""
        rows = await self._slow_rows({
            **_scope(window), "limit": limit,
            "first_part": math.floor(window.start / hq.SLOW_PART),
            "last_part": math.floor(window.end / hq.SLOW_PART)})
        return [attempt_info(r) for r in rows]

    def _slow_statement(self, params: dict[str, Any]) -> str:
        """The slow read's statement for these parameters: from the tops the fold kept per
        tenant and of every tenant (0026), or of the read's task or queue (0027), unless it
        filters by both a task and a queue (their tops are not kept) or by a tenant '' (the
        kept tops' name for none): those step every part."""
        every = params["tenant"] is None
        task, queue = params["task"] is not None, params["queue"] is not None
        if params["tenant"] == "" or (task and queue):
            return self._slow[every]
        return self._slow[2 * (1 + task + 2 * queue) + every]

    async def _slow_rows(self, params: dict[str, Any]) -> Rows:
        return await self._history_rows(self._slow_statement(params), params)

    async def error_groups(self, window: TimeRange, limit: int = 50) -> list[ErrorGroup]:
        """Failed attempts grouped by fingerprint, most frequent first."""
        groups: dict[str, list[Any]] = {}   # fingerprint: [count, first, last, tasks]
        for fingerprint, task, count, first, last in await self._error_rows(window):
            group = groups.setdefault(fingerprint, [0, first, last, set()])
            group[0] += count
            group[1], group[2] = min(group[1], first), max(group[2], last)
            group[3].add(task)
        ranked = sorted(groups.items(), key=lambda g: (-g[1][0], -g[1][2]))[:limit]
        if not ranked:
            return []
        newest = await self._newest([(f, g[2]) for f, g in ranked], window.tenant)
        dead = await self._dead_counts([f for f, _ in ranked], window.tenant)
        return [ErrorGroup(
            fingerprint=fingerprint, type=newest[fingerprint][1] or "",
            message=newest[fingerprint][2] or "", count=count, first_seen=first,
            last_seen=last, tasks=tuple(sorted(tasks)), sample_job=newest[fingerprint][3],
            dead_jobs=dead.get(fingerprint, 0))
            for fingerprint, (count, first, last, tasks) in ranked if fingerprint in newest]

    async def _error_rows(self, window: TimeRange) -> Rows:
        """(fingerprint, task, count, first, last) over the range: from the failed attempts
        up to 12 hours, from the hour rollups up to 20 days, then from the day rollups (the
        range then starts at its first whole hour or day)."""
        span = window.end - window.start
        if span < 12 * 3600:
            return await self._history_rows(hq.ERROR_GROUPS, _scope(window))
        width = 86400 if span >= 20 * 86400 else 3600
        # every tenant's (and queue's): the rollups summed over them (0023); one tenant's:
        # its rows, by the tenant's index (a queue's too); a queue's of every tenant: its
        # rows, by the queue's index (0028)
        template = (hq.ERROR_GROUP_ROLLUPS_TENANT if window.tenant is not None
                    else hq.ERROR_GROUP_ROLLUPS_QUEUE if window.queue is not None
                    else hq.ERROR_GROUP_ROLLUPS_ALL)
        return await self._history_rows(template, {
            **_scope(window), "width": width,
            "first_minute": int(window.start // width) * width // 60,
            "end_minute": int(-(-window.end // 60)),  # the pending rows of its last row too
            "pending_end": -(-int(-(-window.end // 60)) * 60 // width) * width})

    async def _newest(self, groups: list[tuple[str, float]],
                      tenant: str | None) -> dict[str, tuple[Any, ...]]:
        """Each group's attempt at its last-seen time, by fingerprint (one index lookup
        each; PostgreSQL does them in one statement); then those still pending."""
        found = {}
        for fingerprint, last in groups:
            rows = await self._history_rows(hq.GROUP_NEWEST, {
                "fingerprint": fingerprint, "last": last, "tenant": tenant})
            if rows:
                found[fingerprint] = rows[0]
        return await self._pending_newest(groups, found, tenant)

    async def _pending_newest(self, groups: list[tuple[str, float]],
                              found: dict[str, tuple[Any, ...]],
                              tenant: str | None) -> dict[str, tuple[Any, ...]]:
        """`found` and the groups not in it whose newest attempt is pending (one read of the
        pending tail, when any group is missing)."""
        missing = {f: last for f, last in groups if f not in found}
        if missing:
            for row in await self._history_rows(hq.PENDING_NEWEST, {
                    "tenant": tenant, "pending_limit": PENDING_READ}):
                if missing.get(row[0]) == row[4] and row[0] not in found:
                    found[row[0]] = tuple(row[:4])
        return found

    async def _dead_counts(self, fingerprints: list[str],
                           tenant: str | None) -> dict[str, int]:
        """Per group: its dead jobs still stored, from the counts kept as jobs die and
        leave the dead state (dead_groups.py): exact, and a read of a few rows."""
        wanted = set(fingerprints)
        rows = await self._history_rows(dg.DEAD_GROUP_COUNTS, {"tenant": tenant})
        return {fingerprint: int(n) for fingerprint, n in rows if fingerprint in wanted}

    async def group_dead_jobs(self, fingerprint: str, tenant: str | None = None,
                              limit: int = dg.PAGE, after: str | None = None) -> list[str]:
        """Ids of the dead jobs still stored that died in the error group, in id order: a
        page of at most `limit`, of the ids after `after` (the last page's last)."""
        rows = await self._history_rows(
            dg.GROUP_DEAD_JOBS if tenant is None else dg.TENANT_GROUP_DEAD_JOBS,
            {"fingerprint": fingerprint, "tenant": tenant, "limit": limit,
             "after": after or ""})
        return [r[0] for r in rows]

    async def worker_analytics(self, window: TimeRange,
                               now: float | None = None) -> list[WorkerSummary]:
        """Per worker over the range: attempts, failures, busy time and share, CPU, peak RSS;
        with what each live worker runs now. From 6 hours on, read from the hour rollups
        (the range then starts at its first whole hour): of every tenant their sums per
        worker (0028), of one tenant its rows by the tenant's index."""
        if window.end - window.start >= 6 * 3600 and not (window.task or window.queue):
            rows = await self._history_rows(  # whole hours from the start
                hq.WORKER_HOURS_ALL if window.tenant is None else hq.WORKER_HOURS_TENANT, {
                "first_hour": int(window.start // 3600), "tenant": window.tenant,
                "end_hour": int(-(-window.end // 3600)), "pending_limit": PENDING_READ})
        else:
            rows = await self._history_rows(hq.WORKER_ATTEMPTS, _scope(window))
        running: dict[str, list[str]] = {}
        for worker_id, task in await self._history_rows(hq.RUNNING_NOW,
                                                        {"tenant": window.tenant}):
            running.setdefault(worker_id, []).append(task)
        live = {w.id: w for w in await self.workers(now)}
        span = max(1.0, window.end - window.start)
        out = []
        for worker_id, host, pid, attempts, failures, busy, cpu, rss in rows:
            info = live.get(worker_id)
            slots = info.concurrency if info is not None else None
            out.append(WorkerSummary(
                worker_id=worker_id, host=host, pid=pid, attempts=attempts,
                failures=failures or 0, busy=busy or 0.0,
                busy_share=min(1.0, (busy or 0.0) / (span * slots)) if slots else None,
                cpu=cpu or 0.0, peak_rss=rss, throughput=attempts * 60.0 / span,
                running=len(running.get(worker_id, ())), concurrency=slots,
                alive=info is not None, current=tuple(sorted(running.get(worker_id, ())))))
        seen = {w.worker_id for w in out}
        for worker_id, info in live.items():
            if worker_id not in seen and (window.tenant is None or worker_id in running):
                out.append(WorkerSummary(
                    worker_id=worker_id, host=info.host, pid=info.pid, attempts=0,
                    failures=0, busy=0.0, busy_share=0.0, cpu=0.0, peak_rss=None,
                    throughput=0.0, running=len(running.get(worker_id, ())),
                    concurrency=info.concurrency, alive=True,
                    current=tuple(sorted(running.get(worker_id, ())))))
        return sorted(out, key=lambda w: (-w.attempts, w.worker_id))

    async def prune_history(self, attempts_before: float, rollups_before: float,
                            limit: int = 10_000) -> int:
        """Delete attempts that ended and rollup minutes that began before the cut-offs,
        independent of the jobs' own retention. Returns the attempts deleted."""
        await self._fold_pending()
        # the slow read's mark first (the parts this prune may delete from: the read steps
        # down the index for those), then the tops kept of those parts
        part = {"part": math.floor(attempts_before / hq.SLOW_PART)}
        for template in (hq.PRUNE_SLOW_MARK, hq.PRUNE_SLOW_TOPS, hq.PRUNE_SLOW_TOPS_ALL,
                         hq.PRUNE_SLOW_TOPS_NAMED, hq.PRUNE_SLOW_TOPS_NAMED_ALL):
            await self._history_count(template, part)
        count = await self._history_count(hq.PRUNE_ATTEMPTS, {"before": attempts_before,
                                                              "limit": limit})
        for template in (hq.PRUNE_ROLLUPS, hq.PRUNE_ALL_ROLLUPS, hq.PRUNE_WORKER_ROLLUPS,
                         hq.PRUNE_WORKER_ROLLUPS_ALL, hq.PRUNE_ERROR_ROLLUPS,
                         hq.PRUNE_ERROR_ROLLUPS_ALL):
            await self._history_count(template, {"before_minute": int(rollups_before // 60)})
        return count
