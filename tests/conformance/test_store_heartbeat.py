"""Heartbeats: leases extended in one call, lost leases and cancel requests reported,
and the workers table they feed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.job import JobState, Lease
from conveyor.store.base import Complete, Store

from .support import LEASE, T0, claim_one, enqueue, worker_info

pytestmark = pytest.mark.anyio


async def test_heartbeat_extends_the_lease(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store, worker_id="worker-1")
    reply = await store.heartbeat(worker_info("worker-1"), [claimed.lease], LEASE, now=T0 + 20)
    assert reply.lost == frozenset() and reply.cancel_requested == frozenset()

    assert await store.rescue_expired(now=T0 + LEASE + 5) == 0   # the old lease would be past
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.RUNNING
    assert await store.rescue_expired(now=T0 + 20 + LEASE + 1) == 1


async def test_heartbeat_extends_every_lease_in_one_call(store: Store) -> None:
    for _ in range(3):
        await enqueue(store)
    jobs = await store.claim(None, "worker-1", 3, LEASE, now=T0)
    await store.heartbeat(worker_info("worker-1"), [j.lease for j in jobs], LEASE, now=T0 + 25)
    assert await store.rescue_expired(now=T0 + 50) == 0
    assert await store.rescue_expired(now=T0 + 56) == 3


async def test_heartbeat_reports_a_lease_lost_to_rescue(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    await store.rescue_expired(now=T0 + LEASE + 1)
    reply = await store.heartbeat(worker_info(), [claimed.lease], LEASE, now=T0 + LEASE + 2)
    assert reply.lost == frozenset({job_id})
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.QUEUED  # the heartbeat did not revive it


async def test_heartbeat_reports_a_lease_taken_by_another_worker(store: Store) -> None:
    job_id = await enqueue(store)
    old = await claim_one(store, worker_id="worker-1")
    await store.rescue_expired(now=T0 + LEASE + 1)
    new = await claim_one(store, now=T0 + LEASE + 2, worker_id="worker-2")

    reply = await store.heartbeat(worker_info("worker-1"), [old.lease], LEASE, now=T0 + 40)
    assert reply.lost == frozenset({job_id})
    reply = await store.heartbeat(worker_info("worker-2"), [new.lease], LEASE, now=T0 + 40)
    assert reply.lost == frozenset()


async def test_heartbeat_reports_a_wrong_token_as_lost(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    reply = await store.heartbeat(worker_info(), [Lease(job_id, claimed.token + 1)], LEASE,
                                  now=T0 + 5)
    assert reply.lost == frozenset({job_id})


async def test_heartbeat_reports_finished_jobs_as_lost(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    await store.cancel([job_id], now=T0 + 1)
    await store.settle([Complete(claimed.lease)], now=T0 + 2)
    reply = await store.heartbeat(worker_info(), [claimed.lease], LEASE, now=T0 + 3)
    assert reply.lost == frozenset({job_id})


async def test_heartbeat_reports_cancel_requests(store: Store) -> None:
    keep = await enqueue(store)
    stop = await enqueue(store)
    jobs = await store.claim(None, "worker-1", 2, LEASE, now=T0)
    assert await store.cancel([stop], now=T0 + 1) == {stop: "cancel_requested"}

    reply = await store.heartbeat(worker_info(), [j.lease for j in jobs], LEASE, now=T0 + 2)
    assert reply.cancel_requested == frozenset({stop})
    assert reply.lost == frozenset()
    assert keep not in reply.cancel_requested


async def test_workers_are_listed_after_a_heartbeat_and_gone_after_deregister(
        store: Store) -> None:
    assert await store.workers(now=T0) == []
    await enqueue(store)
    claimed = await claim_one(store, worker_id="worker-a")
    await store.heartbeat(worker_info("worker-a", ("default", "emails")), [claimed.lease], LEASE,
                          now=T0 + 1)
    await store.heartbeat(worker_info("worker-b"), [], LEASE, now=T0 + 2)

    workers = {w.id: w for w in await store.workers(now=T0 + 3)}
    assert set(workers) == {"worker-a", "worker-b"}
    a = workers["worker-a"]
    assert (a.host, a.pid, a.concurrency) == ("host-a", 4242, 4)
    assert a.queues == ("default", "emails")
    assert a.running == 1
    assert a.heartbeat_at == pytest.approx(T0 + 1)
    assert workers["worker-b"].running == 0

    await store.heartbeat(worker_info("worker-a"), [], LEASE, now=T0 + 10)
    a = {w.id: w for w in await store.workers(now=T0 + 10)}["worker-a"]
    assert a.heartbeat_at == pytest.approx(T0 + 10)
    assert a.started_at == pytest.approx(T0 + 1)
    assert a.running == 0

    await store.deregister_worker("worker-a")
    assert [w.id for w in await store.workers(now=T0 + 11)] == ["worker-b"]


async def test_heartbeat_keeps_running_and_claimed_apart(store: Store) -> None:
    """A worker that prefetched lists every lease it holds and says how many it has not
    started: running never counts those (issue 16: "14 running on 8 slots")."""
    for _ in range(5):
        await enqueue(store)
    jobs = await store.claim(None, "worker-a", 5, LEASE, now=T0)
    info = replace(worker_info("worker-a"), concurrency=3, claimed=2)
    reply = await store.heartbeat(info, [j.lease for j in jobs], LEASE, now=T0 + 1)
    assert reply.lost == frozenset()
    [worker] = await store.workers(now=T0 + 1)
    assert (worker.running, worker.claimed, worker.concurrency) == (3, 2, 3)
    # more claimed than leases listed (a stale count): never a negative running
    await store.heartbeat(replace(info, claimed=9), [jobs[0].lease], LEASE, now=T0 + 2)
    [worker] = await store.workers(now=T0 + 2)
    assert (worker.running, worker.claimed) == (0, 1)
    await store.heartbeat(replace(info, claimed=0), [j.lease for j in jobs], LEASE, now=T0 + 3)
    [worker] = await store.workers(now=T0 + 3)
    assert (worker.running, worker.claimed) == (5, 0)


async def test_queues_and_stats_leave_jobs_claimed_ahead_out_of_running(store: Store) -> None:
    """Issue 16: workers report their claimed-ahead jobs by queue; a queue's running count
    is of started jobs, with the claimed-ahead ones beside it ("running 1 (+2 claimed)"),
    and so are the stats' running by state and by queue. A worker that stopped
    heartbeating is no longer believed; a tenant's view is not adjusted."""
    for queue in ("a", "a", "a", "b"):
        await enqueue(store, queue=queue, tenant="org-1")
    jobs = await store.claim(None, "worker-a", 4, LEASE, now=T0)
    info = replace(worker_info("worker-a", queues=("a", "b")), claimed=2,
                   claimed_queues={"a": 2})
    await store.heartbeat(info, [j.lease for j in jobs], LEASE, now=T0 + 1)
    [worker] = await store.workers(now=T0 + 1)
    assert worker.claimed_queues == {"a": 2}

    queues = {q.name: q for q in await store.queues(now=T0 + 2)}
    assert (queues["a"].counts.get("running"), queues["a"].claimed) == (1, 2)
    assert (queues["b"].counts.get("running"), queues["b"].claimed) == (1, 0)
    stats = await store.stats(now=T0 + 2)
    assert (stats.by_state["running"], stats.claimed) == (2, 2)
    assert stats.by_queue["a"]["running"] == 1
    # a tenant's view counts its running jobs as they are stored
    [tenant_a] = [q for q in await store.queues("org-1", now=T0 + 2) if q.name == "a"]
    assert (tenant_a.counts.get("running"), tenant_a.claimed) == (3, 0)
    # the worker stops heartbeating: after a minute its report is not believed
    queues = {q.name: q for q in await store.queues(now=T0 + 120)}
    assert (queues["a"].counts.get("running"), queues["a"].claimed) == (3, 0)
    # a report of more than the queue runs is cut to what it runs
    await store.heartbeat(replace(info, claimed_queues={"a": 9}), [j.lease for j in jobs],
                          LEASE, now=T0 + 121)
    queues = {q.name: q for q in await store.queues(now=T0 + 122)}
    assert (queues["a"].counts.get("running"), queues["a"].claimed) == (0, 3)
