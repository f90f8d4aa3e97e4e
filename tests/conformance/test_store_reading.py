"""Reading: list_jobs (keyset pages and filters), stats, queues."""

from __future__ import annotations

import pytest

from conveyor.job import JobFilter, JobState, new_id
from conveyor.store.base import Complete, Fail, Progress, Store

from .support import LEASE, T0, claim_one, enqueue, error, new_job

pytestmark = pytest.mark.anyio


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    """Counts without zero entries: a driver may list every state or only those present."""
    return {state: n for state, n in counts.items() if n}


async def test_list_jobs_is_newest_first_in_keyset_pages(store: Store) -> None:
    ids = [await enqueue(store, now=T0 + i) for i in range(7)]
    newest_first = list(reversed(ids))

    page1 = await store.list_jobs(JobFilter(), limit=3)
    assert [j.id for j in page1] == newest_first[:3]
    page2 = await store.list_jobs(JobFilter(), after=page1[-1].id, limit=3)
    assert [j.id for j in page2] == newest_first[3:6]
    page3 = await store.list_jobs(JobFilter(), after=page2[-1].id, limit=3)
    assert [j.id for j in page3] == newest_first[6:]
    assert await store.list_jobs(JobFilter(), after=page3[-1].id, limit=3) == []


async def test_list_jobs_pages_stay_stable_when_new_jobs_arrive(store: Store) -> None:
    ids = [await enqueue(store) for _ in range(4)]
    page1 = await store.list_jobs(JobFilter(), limit=2)
    await enqueue(store, now=T0 + 1)
    page2 = await store.list_jobs(JobFilter(), after=page1[-1].id, limit=2)
    assert [j.id for j in page1 + page2] == list(reversed(ids))


async def test_list_jobs_filters_by_state(store: Store) -> None:
    queued = await enqueue(store)
    scheduled = await enqueue(store, delay=60)
    running = await enqueue(store, queue="run")
    await claim_one(store, queues=["run"])
    by_state = {s: [j.id for j in await store.list_jobs(JobFilter(states=(s,)))]
                for s in (JobState.QUEUED, JobState.SCHEDULED, JobState.RUNNING)}
    assert by_state == {JobState.QUEUED: [queued], JobState.SCHEDULED: [scheduled],
                        JobState.RUNNING: [running]}
    both = await store.list_jobs(JobFilter(states=(JobState.QUEUED, JobState.RUNNING)))
    assert {j.id for j in both} == {queued, running}


@pytest.mark.parametrize("field", ["queue", "task", "tenant", "correlation_id",
                                   "idempotency_key", "batch_id"])
async def test_list_jobs_filters_by_each_field(store: Store, field: str) -> None:
    value = "wanted" if field != "batch_id" else new_id()
    other = "other" if field != "batch_id" else new_id()
    # the same idempotency key twice is one job per tenant: spread those over two tenants
    spread = [{"tenant": "org-1"}, {"tenant": "org-2"}] if field == "idempotency_key" else [{}, {}]
    wanted = [await enqueue(store, **{field: value, **extra}) for extra in spread]
    await enqueue(store, **{field: other})
    await enqueue(store)

    listed = await store.list_jobs(JobFilter(**{field: value}))
    assert [j.id for j in listed] == list(reversed(wanted))
    assert all(getattr(j, field) == value for j in listed)


async def test_list_jobs_combines_filters_and_cursor(store: Store) -> None:
    wanted = [await enqueue(store, queue="emails", task="send", tenant="org-1")
              for _ in range(3)]
    await enqueue(store, queue="emails", task="other", tenant="org-1")
    await enqueue(store, queue="emails", task="send", tenant="org-2")
    where = JobFilter(states=(JobState.QUEUED,), queue="emails", task="send", tenant="org-1")
    first = await store.list_jobs(where, limit=2)
    rest = await store.list_jobs(where, after=first[-1].id, limit=2)
    assert [j.id for j in first + rest] == list(reversed(wanted))


async def test_stats_counts_by_state_queue_and_task(store: Store) -> None:
    await store.enqueue_many([new_job(queue="emails", task="send") for _ in range(3)]
                             + [new_job(queue="reports", task="build", delay=60)], now=T0)
    done = await claim_one(store, queues=["emails"])
    await store.settle([Complete(done.lease)], now=T0 + 2)
    failed = await claim_one(store, queues=["emails"], now=T0 + 2)
    await store.settle([Fail(failed.lease, error(1))], now=T0 + 3)

    stats = await store.stats(now=T0 + 4)
    assert _nonzero(stats.by_state) == {"queued": 1, "scheduled": 1, "completed": 1, "dead": 1}
    assert _nonzero(stats.by_queue["emails"]) == {"queued": 1, "completed": 1, "dead": 1}
    assert _nonzero(stats.by_queue["reports"]) == {"scheduled": 1}
    assert _nonzero(stats.by_task["send"]) == {"queued": 1, "completed": 1, "dead": 1}
    assert stats.failure_rate == pytest.approx(0.5)
    assert stats.completed_last_minute == 1
    assert stats.durations["p50"] == pytest.approx(2.0)


async def test_queues_report_counts_age_and_throughput(store: Store) -> None:
    await store.enqueue_many([new_job(queue="emails") for _ in range(3)], now=T0)
    await enqueue(store, queue="reports", delay=60)
    claimed = await store.claim(["emails"], "worker-1", 2, LEASE, now=T0 + 1)
    await store.settle([Complete(claimed[0].lease)], now=T0 + 2)

    infos = {q.name: q for q in await store.queues(now=T0 + 10)}
    assert set(infos) == {"emails", "reports"}
    emails = infos["emails"]
    assert _nonzero(emails.counts) == {"queued": 1, "running": 1, "completed": 1}
    assert emails.oldest_queued_age == pytest.approx(10)
    assert emails.completed_last_minute == 1
    assert emails.paused is False
    assert _nonzero(infos["reports"].counts) == {"scheduled": 1}
    assert infos["reports"].oldest_queued_age is None


async def test_stats_of_an_empty_store(store: Store) -> None:
    stats = await store.stats(now=T0)
    assert sum(stats.by_state.values()) == 0
    assert stats.failure_rate is None
    assert await store.queues(now=T0) == []


async def test_count_jobs_counts_what_list_jobs_would_list_up_to_a_cap(store: Store) -> None:
    for i in range(5):
        await enqueue(store, now=T0 + i, queue="emails", tenant="org-a")
    await enqueue(store, now=T0 + 9, queue="hooks", tenant="org-b")
    await enqueue(store, now=T0 + 10, queue="hooks", tenant="org-b")
    claimed = await claim_one(store, now=T0 + 11, queues=["hooks"])
    await store.settle([Fail(claimed.lease, error(1), None)], now=T0 + 12)

    assert await store.count_jobs(JobFilter()) == 7
    assert await store.count_jobs(JobFilter(queue="emails")) == 5
    assert await store.count_jobs(JobFilter(queue="emails"), cap=3) == 3  # a bounded plan
    assert await store.count_jobs(JobFilter(tenant="org-b")) == 2
    assert await store.count_jobs(JobFilter(states=(JobState.DEAD,))) == 1
    assert await store.count_jobs(JobFilter(states=(JobState.DEAD, JobState.QUEUED))) == 7
    assert await store.count_jobs(JobFilter(queue="emails", tenant="org-b")) == 0
    assert await store.count_jobs(JobFilter(task="no-such-task")) == 0


async def test_jobs_waiting_to_retry_are_found_by_a_filter_of_their_own(store: Store) -> None:
    failing = await enqueue(store, now=T0, queue="hooks", max_attempts=3)
    await enqueue(store, now=T0 + 1, queue="hooks", delay=600)  # scheduled, never tried
    waiting = await enqueue(store, now=T0 + 2, queue="hooks")
    claimed = await claim_one(store, now=T0 + 3, queues=["hooks"])
    assert claimed.id == failing
    await store.settle([Fail(claimed.lease, error(1), retry_in=30)], now=T0 + 4)

    retrying = JobFilter(retrying=True)
    assert [j.id for j in await store.list_jobs(retrying)] == [failing]
    assert await store.count_jobs(retrying) == 1
    [job] = await store.list_jobs(retrying)
    assert job.retrying and job.state == JobState.SCHEDULED and job.run_at == T0 + 34
    both = JobFilter(states=(JobState.QUEUED,), retrying=True, queue="hooks")
    assert {j.id for j in await store.list_jobs(both)} == {failing, waiting}
    assert await store.count_jobs(both) == 2
    scheduled = await store.list_jobs(JobFilter(states=(JobState.SCHEDULED,)))
    assert len(scheduled) == 2 and sum(j.retrying for j in scheduled) == 1
    assert await store.count_jobs(JobFilter(retrying=True, queue="other")) == 0


async def test_find_ids_by_any_start_or_end_of_an_id(store: Store) -> None:
    ids = ["01a2419f-0000-7000-8000-00000000abcd", "01a2419f-0000-7000-8000-0000000fabcd",
           "01a241a0-1111-7000-8000-123456789012"]
    for job_id in ids:
        await store.enqueue_many([new_job(id=job_id, tenant="org-a")], now=T0)
    await store.enqueue_many([new_job(id="01a241a0-2222-7000-8000-999999999999",
                                      tenant="org-b")], now=T0)

    assert await store.find_ids("01a241a0-1111") == [ids[2]]          # a prefix
    assert await store.find_ids("456789012") == [ids[2]]              # a suffix
    assert await store.find_ids(ids[2]) == [ids[2]]                   # the whole id
    assert await store.find_ids("8000-123456789012") == [ids[2]]      # past 12 characters
    assert sorted(await store.find_ids("abcd")) == sorted(ids[:2])    # ambiguous: both
    assert await store.find_ids("fabcd") == [ids[1]]
    assert sorted(await store.find_ids("01a2419f")) == sorted(ids[:2])
    assert len(await store.find_ids("01a24", limit=2)) == 2
    assert await store.find_ids("9999", tenant="org-a") == []         # another tenant's
    assert await store.find_ids("9999", tenant="org-b") != []
    assert await store.find_ids("7777") == []
    assert sorted(await store.find_ids("01a2419f-")) == sorted(ids[:2])


async def test_list_jobs_without_bodies_reads_everything_but_them(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=3, correlation_id="light")
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1), 0.0)], now=T0 + 1)
    claimed = await claim_one(store, now=T0 + 2)
    await store.settle([Progress(claimed.lease, 50.0, "half way")], now=T0 + 2)
    [running] = await store.list_jobs(JobFilter(correlation_id="light"), bodies=False)
    assert running.progress == 50.0 and running.progress_step is None
    await store.settle([Complete(claimed.lease, b'{"big": "result"}')], now=T0 + 3)
    [full] = await store.list_jobs(JobFilter(correlation_id="light"))
    [light] = await store.list_jobs(JobFilter(correlation_id="light"), bodies=False)
    assert full.id == light.id == job_id
    assert full.payload and full.result is not None and full.errors
    assert (light.payload, light.result, light.errors, light.progress_step) == (
        None, None, (), None)
    same = ("task", "queue", "state", "priority", "attempt", "max_attempts", "tenant",
            "correlation_id", "created_at", "run_at", "started_at", "finished_at", "progress",
            "batch_id", "worker_id")
    assert {k: getattr(light, k) for k in same} == {k: getattr(full, k) for k in same}


async def test_dead_letters_come_latest_death_first_in_keyset_pages(store: Store) -> None:
    died = []
    for i, queue in enumerate(["a", "b", "a", "b", "a"]):
        await enqueue(store, now=T0 + i, queue=queue, tenant="org-a", max_attempts=1)
    # they die in another order than they were created: the page follows the deaths
    for n, at in enumerate([T0 + 50, T0 + 10, T0 + 40, T0 + 30, T0 + 20]):
        claimed = await claim_one(store, now=T0 + 5 + n)
        await store.settle([Fail(claimed.lease, error(1))], now=at)
        died.append((at, claimed.id))
    await enqueue(store, now=T0 + 9, queue="a", tenant="org-b")  # never dies
    newest_first = [job_id for _, job_id in sorted(died, reverse=True)]

    page = await store.dead_letters(limit=3)
    assert [j.id for j in page] == newest_first[:3]
    assert all(j.state == JobState.DEAD and j.errors for j in page)
    rest = await store.dead_letters(after=page[-1].id, limit=3)
    assert [j.id for j in rest] == newest_first[3:]
    only_a = await store.dead_letters(queue="a")
    assert [j.id for j in only_a] == [i for i in newest_first
                                      if i in {j.id for j in only_a}] and len(only_a) == 3
    assert await store.dead_letters(tenant="org-b") == []
    assert await store.dead_queues() == ["a", "b"]
    assert await store.dead_queues(tenant="org-b") == []


async def test_a_byte_budget_ends_a_page_after_the_job_that_reaches_it(store: Store) -> None:
    """budget=N: one read stops adding jobs once their stored bodies (payload, result,
    errors, progress step) reach N bytes; the job that reaches it is in, the first always
    is, and the page goes on from its last id."""
    body = b'"' + b"x" * 998 + b'"'  # 1,000 bytes stored
    ids = [await enqueue(store, now=T0 + i, payload=body) for i in range(5)]
    newest_first = list(reversed(ids))

    page = await store.list_jobs(JobFilter(), limit=10, budget=2500)
    assert [j.id for j in page] == newest_first[:3]  # 0, ~1,000, ~2,000 bytes before each
    rest = await store.list_jobs(JobFilter(), after=page[-1].id, limit=10, budget=2500)
    assert [j.id for j in rest] == newest_first[3:]
    assert [j.id for j in await store.list_jobs(JobFilter(), limit=10, budget=1)] == \
        newest_first[:1]
    assert len(await store.list_jobs(JobFilter(), limit=4, budget=10**9)) == 4
    assert page[0].payload == body  # the bodies themselves are read
    light = await store.list_jobs(JobFilter(), limit=10, budget=1, bodies=False)
    assert len(light) == 5  # without bodies there is nothing to budget


async def test_dead_letters_take_a_byte_budget_too(store: Store) -> None:
    body = b'"' + b"x" * 998 + b'"'
    for i in range(3):
        await enqueue(store, now=T0 + i, max_attempts=1, payload=body)
    for n in range(3):
        claimed = await claim_one(store, now=T0 + 5 + n)
        await store.settle([Fail(claimed.lease, error(1))], now=T0 + 10 + n)
    every = await store.dead_letters(limit=10)
    page = await store.dead_letters(limit=10, budget=1500)
    assert [j.id for j in page] == [j.id for j in every[:2]]
    rest = await store.dead_letters(after=page[-1].id, limit=10, budget=1500)
    assert [j.id for j in rest] == [every[2].id]
