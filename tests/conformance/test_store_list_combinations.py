"""Every combination of the jobs list's queue, task, tenant and state filters (several states
at once too) lists exactly the jobs that match, newest first, page after page by the cursor,
and a tenant's list never holds another tenant's job (issue 16). The jobs are skewed as a
store's are: one dense key, many rare combinations, so a store that plans a list from its
counts (the SQLite store: a walk of the ids, or a read of the counted keys' index ranges,
sqlite/listing.py) takes each plan for some of them."""

from __future__ import annotations

import itertools

import pytest

from conveyor.job import JobFilter, JobState, Lease
from conveyor.store.base import Complete, Fail, Store

from .support import LEASE, T0, error, new_job

pytestmark = pytest.mark.anyio

QUEUES = (None, "bulk", "mail", "rare")
TASKS = (None, "t.send", "t.sync")
TENANTS = (None, "org-a", "org-b")
STATES: tuple[tuple[JobState, ...], ...] = (
    (), (JobState.QUEUED,), (JobState.COMPLETED,), (JobState.SCHEDULED,), (JobState.RUNNING,),
    (JobState.DEAD, JobState.CANCELLED), (JobState.QUEUED, JobState.SCHEDULED, JobState.DEAD))
PAGE = 4
PAGES = 3


def shape(i: int) -> dict[str, str | None]:
    """Job i's queue, task and tenant: most in one key (bulk, t.send, org-a), the rest spread."""
    if i % 5:
        return {"queue": "bulk", "task": "t.send", "tenant": "org-a"}
    return {"queue": ("mail", "rare", "bulk")[i % 3], "task": ("t.sync", "t.send")[i % 2],
            "tenant": (None, "org-a", "org-b", None)[i % 4]}


async def stored_jobs(store: Store) -> dict[str, tuple[dict[str, str | None], JobState]]:
    """180 jobs in every state; each job's fields and state as this test made them."""
    jobs = [new_job(**shape(i), delay=60 if i % 11 == 3 else 0) for i in range(180)]
    await store.enqueue_many(jobs, now=T0)
    made = {job.id: (shape(i), JobState.SCHEDULED if i % 11 == 3 else JobState.QUEUED)
            for i, job in enumerate(jobs)}
    claimed = await store.claim(None, "worker-1", 90, LEASE, now=T0 + 1)
    outcomes = [Complete(Lease(c.id, c.token)) if n % 4 < 2
                else Fail(Lease(c.id, c.token), error(1), retry_in=None if n % 4 == 2 else 30)
                for n, c in enumerate(claimed[:80])]
    await store.settle(outcomes, now=T0 + 2)
    for n, c in enumerate(claimed):
        made[c.id] = (made[c.id][0], JobState.RUNNING if n >= 80 else
                      (JobState.COMPLETED, JobState.COMPLETED, JobState.DEAD,
                       JobState.SCHEDULED)[n % 4])
    queued = [job_id for job_id, (_, state) in made.items() if state == JobState.QUEUED]
    await store.cancel(queued[::7], now=T0 + 3)
    for job_id in queued[::7]:
        made[job_id] = (made[job_id][0], JobState.CANCELLED)
    return made


async def test_every_filter_combination_lists_exactly_its_jobs(store: Store) -> None:
    made = await stored_jobs(store)
    newest_first = sorted(made, reverse=True)
    for queue, task, tenant, states in itertools.product(QUEUES, TASKS, TENANTS, STATES):
        where = JobFilter(queue=queue, task=task, tenant=tenant, states=states)
        want = [job_id for job_id in newest_first
                if all(value in (None, made[job_id][0][field]) for field, value in
                       (("queue", queue), ("task", task), ("tenant", tenant)))
                and (not states or made[job_id][1] in states)]
        got: list[str] = []
        after = None
        for _ in range(PAGES):
            page = await store.list_jobs(where, after=after, limit=PAGE)
            assert len(page) <= PAGE
            got += [job.id for job in page]
            if len(page) < PAGE:
                break
            after = page[-1].id
        assert got == want[:len(got)] and len(got) == min(len(want), PAGE * PAGES), where
        for job in await store.list_jobs(where, limit=PAGE):
            assert (job.queue, job.task, job.tenant) == tuple(
                made[job.id][0][f] for f in ("queue", "task", "tenant")), where
            assert tenant in (None, job.tenant) and (not states or job.state in states), where


async def test_a_search_of_several_names_lists_exactly_its_jobs(store: Store) -> None:
    """A search resolves a name fragment to the tasks or queues it matches (search.py): the
    same, for lists of them, with or without an exact name too."""
    made = await stored_jobs(store)
    newest_first = sorted(made, reverse=True)
    for queues, tasks, extra, states in itertools.product(
            ((), ("rare", "mail")), ((), ("t.sync",), ("t.sync", "t.send")),
            ({}, {"tenant": "org-b"}, {"queue": "rare"}), STATES[:4]):
        where = JobFilter(queues=queues, tasks=tasks, states=states, **extra)
        want = [job_id for job_id in newest_first
                if (not queues or made[job_id][0]["queue"] in queues)
                and (not tasks or made[job_id][0]["task"] in tasks)
                and all(made[job_id][0][field] == value for field, value in extra.items())
                and (not states or made[job_id][1] in states)]
        first = await store.list_jobs(where, limit=PAGE)
        rest = await store.list_jobs(where, after=first[-1].id, limit=PAGE) if first else []
        assert [j.id for j in first + rest] == want[:2 * PAGE], where


async def test_a_list_without_bodies_takes_the_same_jobs(store: Store) -> None:
    made = await stored_jobs(store)
    for states in STATES[1:4]:
        where = JobFilter(queue="rare", tenant="org-b", states=states)
        light = await store.list_jobs(where, limit=PAGE, bodies=False)
        full = await store.list_jobs(where, limit=PAGE)
        assert [j.id for j in light] == [j.id for j in full]
        assert all(made[j.id][1] in states for j in full)
