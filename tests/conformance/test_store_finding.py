"""Finding jobs (issue 16): lists by several tasks or queues at once, jobs that have failed
(the error search's candidates), the catalogue of task and queue names, and the cron
schedules' paused flags. Exact ids and counts on every store."""

from __future__ import annotations

import pytest

from conveyor.history.records import AttemptRecord
from conveyor.job import JobFilter
from conveyor.store.base import Complete, Fail, Store

from .support import LEASE, T0, claim_one, enqueue, error

pytestmark = pytest.mark.anyio


async def test_list_jobs_by_several_tasks_and_queues(store: Store) -> None:
    send = await enqueue(store, task="emails.send", queue="mail")
    resend = await enqueue(store, task="emails.resend", queue="mail", now=T0 + 1)
    await enqueue(store, task="billing.charge", queue="money", now=T0 + 2)
    report = await enqueue(store, task="reports.daily", queue="slow", now=T0 + 3)

    by_tasks = await store.list_jobs(JobFilter(tasks=("emails.send", "emails.resend")))
    assert [j.id for j in by_tasks] == [resend, send]
    by_queues = await store.list_jobs(JobFilter(queues=("mail", "slow")), limit=2)
    assert [j.id for j in by_queues] == [report, resend]
    both = await store.list_jobs(JobFilter(tasks=("emails.send", "reports.daily"),
                                           queues=("slow",)))
    assert [j.id for j in both] == [report]
    # an exact task besides the list must be in it too
    assert await store.list_jobs(JobFilter(task="billing.charge", tasks=("emails.send",))) == []
    assert await store.count_jobs(JobFilter(queues=("mail", "money"))) == 3


async def test_list_jobs_with_errors_lists_only_jobs_that_failed(store: Store) -> None:
    failed = await enqueue(store, queue="q", max_attempts=3)
    await enqueue(store, queue="other", now=T0 + 1)             # never ran
    done = await enqueue(store, queue="q", now=T0 + 2)
    dead = await enqueue(store, queue="q", max_attempts=1, now=T0 + 3)
    leases = {j.id: j.lease for j in await store.claim(["q"], "worker-1", 5, LEASE, now=T0)}
    assert set(leases) == {failed, done, dead}
    assert await store.settle([
        Fail(leases[failed], error(1, "timeout talking to smtp"), retry_in=60),
        Complete(leases[done]),
        Fail(leases[dead], error(1, "card declined"))], now=T0 + 5) == [True, True, True]

    listed = await store.list_jobs(JobFilter(with_errors=True))
    assert [j.id for j in listed] == [dead, failed]
    assert [j.errors[-1].message for j in listed] == ["card declined",
                                                      "timeout talking to smtp"]
    assert await store.count_jobs(JobFilter(with_errors=True)) == 2
    page = await store.list_jobs(JobFilter(with_errors=True), after=dead, limit=5)
    assert [j.id for j in page] == [failed]
    light = await store.list_jobs(JobFilter(with_errors=True, queue="q"), bodies=False)
    assert [j.id for j in light] == [dead, failed]


async def test_job_names_come_from_recent_jobs_and_rollups_per_tenant(store: Store) -> None:
    await enqueue(store, task="emails.send", queue="mail", tenant="org-1")
    await enqueue(store, task="billing.charge", queue="money", tenant="org-2", now=T0 + 1)
    await enqueue(store, task="reports.daily", queue="slow", now=T0 + 2)
    job_id = await enqueue(store, task="rolled.task", queue="rolled", tenant="org-1",
                           now=T0 + 3)
    job = await claim_one(store, queues=["rolled"], now=T0 + 3)
    assert job.id == job_id
    record = AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant,
                           number=job.attempt, started_at=T0 + 3, ended_at=T0 + 4,
                           worker_id="worker-1", host="host-a", pid=1, cpu=0.1, rss=1,
                           fingerprint=None, error_message=None, error_traceback=None)
    await store.settle([Complete(job.lease, attempt=record)], now=T0 + 4)
    await store.pause("idle-queue")

    every = await store.job_names(now=T0 + 10)
    assert every.tasks == ("billing.charge", "emails.send", "reports.daily", "rolled.task")
    assert every.queues == ("idle-queue", "mail", "money", "rolled", "slow")
    org1 = await store.job_names("org-1", now=T0 + 10)
    assert org1.tasks == ("emails.send", "rolled.task")
    assert org1.queues == ("mail", "rolled")  # no other tenant's names, no bare queue rows
    assert (await store.job_names("org-9", now=T0 + 10)).tasks == ()


async def test_schedules_are_paused_and_resumed_by_name(store: Store) -> None:
    assert await store.paused_schedules() == set()
    await store.set_schedule_paused("nightly report", True, now=T0)
    await store.set_schedule_paused("hourly sync", True, now=T0)
    await store.set_schedule_paused("hourly sync", True, now=T0 + 1)  # again: no error
    assert await store.paused_schedules() == {"nightly report", "hourly sync"}
    await store.set_schedule_paused("nightly report", False, now=T0 + 2)
    await store.set_schedule_paused("never paused", False, now=T0 + 2)
    assert await store.paused_schedules() == {"hourly sync"}
