"""Hand-off (postgres/handoff.py): a plain job enqueued while a worker waits is leased to that
worker by the enqueue itself and reaches it in the wake-up, with no claim; and every way
that could go wrong leaves the job where a claim finds it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor import Conveyor
from conveyor.job import ClaimedJob, JobState, NewJob, WorkerInfo, new_id
from conveyor.store.base import Complete, Offer, Retention
from conveyor.store.postgres import handoff
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_system import CONVEYOR, ROOT, worker_process

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def job(queue: str = "mail", payload: bytes = b'{"n":1}', **options: object) -> NewJob:
    return NewJob(id=new_id(), task="handoff.task", queue=queue, payload=payload,
                  **options)  # type: ignore[arg-type]


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def offer_row(schema: str, worker_id: str) -> tuple[int, int] | None:
    """(slots, listener_pid) of a worker's offer."""
    with admin_connect() as conn:
        row = conn.execute(f'SELECT slots, listener_pid FROM "{schema}".conveyor_offers '
                           "WHERE worker_id = %s", (worker_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def job_row(schema: str, job_id: str) -> tuple[str, str | None, int | None, int]:
    with admin_connect() as conn:
        row = conn.execute(f'SELECT state, worker_id, lease_token, attempt FROM "{schema}".'
                           "conveyor_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


class Waiting:
    """A worker that waits on `queues` with `slots` offered: what it was handed, and the
    wake-ups it heard."""

    def __init__(self, store: PostgresStore, worker_id: str = "w1") -> None:
        self.store = store
        self.id = worker_id
        self.handed: list[ClaimedJob] = []
        self.woken: list[str] = []
        self.stop: Callable[[], object] | None = None

    async def offer(self, queues: list[str] | None = None, slots: int = 10,
                    lapse: float = 30.0) -> list[ClaimedJob]:
        if self.stop is None:
            self.stop = await self.store.listen(self.woken.append, self.id, self.handed.append)
        return await self.store.claim(queues if queues is not None else ["mail"], self.id, 10,
                                      30.0, offer=Offer(slots, lapse))

    async def close(self) -> None:
        if self.stop is not None:
            await self.stop()  # type: ignore[misc]
            self.stop = None


async def test_a_waiting_worker_is_handed_a_plain_job_without_a_claim(
        store: PostgresStore, schema: str) -> None:
    worker = Waiting(store)
    try:
        assert await worker.offer() == []
        assert offer_row(schema, "w1") is not None and offer_row(schema, "w1")[0] == 10
        [result] = await store.enqueue_many([job()])
        assert result.state == JobState.RUNNING
        await until(lambda: worker.handed)
        [handed] = worker.handed
        state, holder, token, attempt = job_row(schema, result.id)
        assert (state, holder, attempt) == ("running", "w1", 1)
        assert (handed.id, handed.task, handed.queue, handed.payload, handed.attempt,
                handed.token) == (result.id, "handoff.task", "mail", b'{"n":1}', 1, token)
        assert offer_row(schema, "w1")[0] == 9  # type: ignore[index]
        running = await store.get(result.id)  # its start time, as every claim gives it
        assert running is not None and handed.starts_at == running.started_at is not None
        await asyncio.sleep(0.1)
        assert worker.woken == []  # no wake-up: nobody else needs to look
        assert await store.settle([Complete(handed.lease, b"{}")]) == [True]
        done = await store.get(result.id)
        assert done is not None and done.state == JobState.COMPLETED and done.attempt == 1
    finally:
        await worker.close()


async def test_a_child_job_is_handed_off_with_its_correlation_id_and_parent(
        store: PostgresStore, schema: str) -> None:
    """ctx.enqueue's child jobs carry a correlation id and a parent: a hand-off carries both,
    and the worker gets the correlation id (its logs and its own children use it)."""
    worker = Waiting(store)
    try:
        await worker.offer()
        parent_id = new_id()
        child = job(correlation_id="req-42", parent_id=parent_id, priority=3)
        [result] = await store.enqueue_many([child])
        assert result.state == JobState.RUNNING
        await until(lambda: worker.handed)
        [handed] = worker.handed
        assert (handed.id, handed.correlation_id, handed.priority, handed.tenant) == (
            child.id, "req-42", 3, None)
        stored = await store.get(child.id)
        assert stored is not None
        assert (stored.state, stored.correlation_id, stored.parent_id, stored.priority) == (
            JobState.RUNNING, "req-42", parent_id, 3)
        plain = job()  # and a plain job's wake-up keeps the nine fields of earlier releases
        await store.enqueue_many([plain])
        await until(lambda: len(worker.handed) == 2)
        assert worker.handed[1].correlation_id is None
    finally:
        await worker.close()


async def test_a_child_job_nobody_waits_for_is_stored_whole(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the gate shut (no worker was waiting at the last look), a job with a correlation
    id and a parent goes in by the general statement, queued, every value kept."""
    monkeypatch.setattr(handoff.Gate, "PROBE", 60.0)
    [first] = await store.enqueue_many([job()])  # looks, finds nobody: the gate shuts
    assert first.state == JobState.QUEUED and not store._channels.gate.open()
    parent_id = new_id()
    child = job(correlation_id="req-43", parent_id=parent_id, priority=-2)
    [result] = await store.enqueue_many([child])
    stored = await store.get(child.id)
    assert stored is not None and result.state == JobState.QUEUED
    assert (stored.state, stored.correlation_id, stored.parent_id, stored.priority,
            stored.payload) == (JobState.QUEUED, "req-43", parent_id, -2, child.payload)
    assert job_row(schema, child.id)[:2] == ("queued", None)


async def test_a_running_jobs_child_reaches_the_waiting_worker_by_hand_off(url: str,
                                                                          schema: str) -> None:
    """End to end through the app: a job's ctx.enqueue hands its child to the worker that
    waits with a free slot, and the child runs with its parent's correlation id."""
    app = Conveyor(url, auto_migrate=True)
    seen: dict[str, object] = {}

    @app.task(name="chain.parent")
    async def parent(ctx: Any, payload: object) -> None:
        child = await ctx.enqueue_async("chain.child", {"n": 1})
        seen["child"] = (child.id, child.state)

    @app.task(name="chain.child")
    async def child(ctx: Any, payload: object) -> None:
        seen["ran"] = (ctx.job_id, ctx.correlation_id, ctx.attempt)

    worker = app.worker(queues=["default"], concurrency=2)
    running = asyncio.create_task(worker.run(install_signals=False))
    try:
        await until(lambda: _offers(schema) == 1, 10)  # waiting: its slots are offered
        first = await app.enqueue_async("chain.parent", {}, correlation_id="req-7")
        # the child may run before its parent resumes from the enqueue: wait for both
        await until(lambda: "ran" in seen and "child" in seen, 10)
        child_id, state = seen["child"]  # type: ignore[misc]
        assert state == JobState.RUNNING  # leased to the waiting worker by the enqueue
        assert seen["ran"] == (child_id, "req-7", 1)
        stored = await app.get_async(child_id)  # type: ignore[arg-type]
        assert stored.parent_id == first.id and stored.correlation_id == "req-7"
    finally:
        worker.stop()
        await running
        app.close()


@pytest.mark.parametrize("options", [{"delay": 30.0}, {"run_at": 1.0}, {"ttl": 60.0}],
                         ids=["delay", "run_at", "ttl"])
async def test_a_job_with_a_time_of_its_own_is_not_handed_off(
        store: PostgresStore, schema: str, options: dict[str, float],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A delay, a run_at or a TTL needs the general statement's times: such a job goes in
    as usual even while a worker waits (these take the same path as a plain job up to
    rows.handed_whole, unlike keyed or tenant jobs)."""
    monkeypatch.setattr(handoff.Gate, "PROBE", 0.0)  # every enqueue tries hand-off
    worker = Waiting(store)
    try:
        await worker.offer()
        new = job(correlation_id="req-1", **options)
        [result] = await store.enqueue_many([new])
        assert result.state in (JobState.QUEUED, JobState.SCHEDULED)
        await asyncio.sleep(0.1)
        assert worker.handed == [] and job_row(schema, new.id)[1] is None
        stored = await store.get(new.id)
        assert stored is not None and stored.correlation_id == "req-1"
        if "ttl" in options:
            assert stored.expires_at is not None
    finally:
        await worker.close()


async def test_a_child_job_the_hand_off_statement_finds_no_taker_for_is_stored_whole(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand-off statement with nobody waiting inserts the job queued, with its
    correlation id and parent."""
    monkeypatch.setattr(handoff.Gate, "PROBE", 0.0)
    parent_id = new_id()
    child = job(correlation_id="req-44", parent_id=parent_id, priority=1)
    [result] = await store.enqueue_many([child])
    assert result.state == JobState.QUEUED
    stored = await store.get(child.id)
    assert stored is not None
    assert (stored.state, stored.correlation_id, stored.parent_id, stored.priority) == (
        JobState.QUEUED, "req-44", parent_id, 1)


def test_a_wake_up_job_is_read_with_or_without_a_correlation_id_and_later_fields() -> None:
    base = ["j1", "t", "q", "eyJuIjoxfQ==", 3, 7, 0, 1.0, 1.0]
    old = handoff.parse(orjson.dumps(base).decode())
    assert (old.id, old.payload, old.token, old.correlation_id) == ("j1", b'{"n":1}', 7, None)
    assert handoff.parse(orjson.dumps([*base, "c-1"]).decode()).correlation_id == "c-1"
    newer = handoff.parse(orjson.dumps([*base, "c-2", {"later": 1}]).decode())
    assert (newer.id, newer.correlation_id) == ("j1", "c-2")


async def test_a_worker_on_every_queue_is_handed_jobs_of_any_queue(store: PostgresStore) -> None:
    worker = Waiting(store)
    try:
        await worker.offer(queues=[])  # [] and None: every queue
        results = await asyncio.gather(*(store.enqueue_many([job(queue)])
                                         for queue in ("mail", "sms")))
        assert [r.state for [r] in results] == [JobState.RUNNING] * 2
        await until(lambda: len(worker.handed) == 2)
        assert sorted(j.queue for j in worker.handed) == ["mail", "sms"]
    finally:
        await worker.close()


async def _other_queue(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    return job("sms")


async def _backlog(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    [first] = await store.enqueue_many([job(idempotency_key="k-1")])  # keyed: queued
    assert first.state == JobState.QUEUED
    return job()


async def _paused(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    await store.pause("mail")
    return job()


async def _big_payload(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    return job(payload=b'"' + b"x" * handoff.MAX_PAYLOAD + b'"')


async def _keyed(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    return job(idempotency_key="k-2")


async def _tenant(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    return job(tenant="acme")


async def _slots_taken(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer(slots=1)
    [first] = await store.enqueue_many([job()])
    assert first.state == JobState.RUNNING
    await until(lambda: worker.handed)
    return job()


async def _lapsed(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer(lapse=0.05)
    await asyncio.sleep(0.2)
    return job()


async def _stopped_listening(store: PostgresStore, worker: Waiting) -> NewJob:
    await worker.offer()
    await worker.close()  # its LISTEN connection, and so its backend, is gone
    await asyncio.sleep(0.2)
    return job()


@pytest.mark.parametrize("case", [_other_queue, _backlog, _paused, _big_payload, _keyed,
                                  _tenant, _slots_taken, _lapsed, _stopped_listening],
                         ids=lambda case: case.__name__.strip("_"))
async def test_a_job_is_queued_as_usual_when_it_cannot_be_handed_off(
        store: PostgresStore, schema: str, case: Callable[..., object],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff.Gate, "PROBE", 0.0)  # every enqueue tries hand-off
    worker = Waiting(store)
    try:
        new = await case(store, worker)  # type: ignore[misc]
        handed_before = len(worker.handed)
        [result] = await store.enqueue_many([new])
        assert result.state == JobState.QUEUED
        await asyncio.sleep(0.1)
        assert len(worker.handed) == handed_before
        assert job_row(schema, result.id)[:2] == ("queued", None)
    finally:
        await worker.close()


async def test_a_claim_that_comes_back_full_offers_no_slots(store: PostgresStore,
                                                           schema: str) -> None:
    await store.enqueue_many([job() for _ in range(3)])  # nobody waits: queued
    stop = await store.listen(lambda queue: None, "w1", lambda job: None)
    try:
        claimed = await store.claim(["mail"], "w1", 2, 30.0, offer=Offer(5, 30.0))
        assert len(claimed) == 2 and offer_row(schema, "w1")[0] == 0  # type: ignore[index]
        claimed = await store.claim(["mail"], "w1", 5, 30.0, offer=Offer(5, 30.0))
        # short: 5 less the one it took and the two it holds from the first claim
        assert len(claimed) == 1 and offer_row(schema, "w1")[0] == 2  # type: ignore[index]
    finally:
        await stop()


async def test_an_offer_whose_listener_died_is_ignored_and_pruned(store: PostgresStore,
                                                                 schema: str) -> None:
    worker = Waiting(store)
    try:
        await worker.offer()
        offered = offer_row(schema, "w1")
        assert offered is not None
        with admin_connect() as conn:  # the backend dies, as with a SIGKILLed worker
            conn.execute("SELECT pg_terminate_backend(%s)", (offered[1],))
        await asyncio.sleep(0.2)
        [result] = await store.enqueue_many([job()])
        assert result.state == JobState.QUEUED
        await store.prune(Retention(3600, 3600, 3600))
        assert offer_row(schema, "w1") is None
    finally:
        await worker.close()


async def test_hand_offs_a_worker_never_heard_of_are_reported_and_given_back(
        store: PostgresStore, schema: str) -> None:
    """The wake-up lost: the heartbeat names the job; a worker that stops gives it back."""
    lost: list[ClaimedJob] = []
    stop = await store.listen(lambda queue: None, "w1", lost.append)
    try:
        await store.claim(["mail"], "w1", 10, 30.0, offer=Offer(10, 30.0))
        [result] = await store.enqueue_many([job()])
        assert result.state == JobState.RUNNING
        await until(lambda: lost)
        info = WorkerInfo(id="w1", host="h", pid=1, queues=("mail",), concurrency=10)
        reply = await store.heartbeat(info, [], 30.0)  # it lists nothing: never heard of it
        assert [lease.job_id for lease in reply.unknown] == [result.id]
        assert not reply.lost
        reply = await store.heartbeat(info, [lost[0].lease], 30.0)
        assert reply.unknown == ()
    finally:
        await stop()
    await store.deregister_worker("w1")
    assert offer_row(schema, "w1") is None
    assert job_row(schema, result.id)[0::3] == ("queued", 0)
    [again] = await store.claim(["mail"], "w2", 10, 30.0)
    assert again.id == result.id and again.attempt == 1


async def test_a_re_offer_counts_jobs_handed_over_but_not_yet_heard_of(
        store: PostgresStore, schema: str) -> None:
    """The offer is the worker's capacity less what it holds in the table, so a claim made
    before a hand-off's wake-up arrives cannot offer that slot again."""
    stop = await store.listen(lambda queue: None, "w1", lambda job: None)  # hears nothing
    try:
        await store.claim(["mail"], "w1", 2, 30.0, offer=Offer(2, 30.0))
        assert offer_row(schema, "w1")[0] == 2  # type: ignore[index]
        states = [(await store.enqueue_many([job()]))[0].state for _ in range(3)]
        assert states == [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED]
        await store.claim(["other"], "w1", 2, 30.0, offer=Offer(2, 30.0))  # re-offers
        assert offer_row(schema, "w1")[0] == 0  # type: ignore[index]
    finally:
        await stop()


async def test_a_stopped_worker_gives_back_only_jobs_handed_to_it(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff.Gate, "PROBE", 0.0)  # try hand-off at every enqueue
    [claimed_job] = await store.enqueue_many([job()])  # nobody waits: queued
    stop = await store.listen(lambda queue: None, "w1", lambda job: None)
    try:
        [claimed] = await store.claim(["mail"], "w1", 10, 30.0, offer=Offer(10, 30.0))
        assert claimed.id == claimed_job.id
        [handed] = await store.enqueue_many([job()])
        assert handed.state == JobState.RUNNING
    finally:
        await stop()
    await store.deregister_worker("w1")
    assert job_row(schema, handed.id)[0::3] == ("queued", 0)  # given back
    assert job_row(schema, claimed.id)[:2] == ("running", "w1")  # left to its lease


async def test_a_schema_without_the_hand_off_table_still_takes_jobs(
        store: PostgresStore, schema: str, caplog: pytest.LogCaptureFixture) -> None:
    with admin_connect() as conn:  # as if migrated by a release before hand-off
        conn.execute(f'DROP TABLE "{schema}".conveyor_offers')
    results = [(await store.enqueue_many([job()]))[0] for _ in range(2)]
    assert [r.state for r in results] == [JobState.QUEUED] * 2
    assert [job_row(schema, r.id)[0] for r in results] == ["queued"] * 2
    assert "no hand-off table" in caplog.text


async def test_the_longest_names_and_payload_fit_a_hand_off(store: PostgresStore) -> None:
    worker_id = "\U0001f69a" * handoff.MAX_WORKER_ID  # four bytes each in UTF-8
    queue, task = "\x01" * 100, "\x01" * 200  # the longest names, six characters each in JSON
    payload = b'"' + b"\x01" * (handoff.MAX_PAYLOAD - 2) + b'"'
    handed: list[ClaimedJob] = []
    stop = await store.listen(lambda queue: None, worker_id, handed.append)
    try:
        await store.claim([queue], worker_id, 10, 30.0, offer=Offer(10, 30.0))
        correlation_id = "\x01" * 255  # the longest, six characters each in JSON
        new = NewJob(id=new_id(), task=task, queue=queue, payload=payload,
                     correlation_id=correlation_id, parent_id=new_id())
        [result] = await store.enqueue_many([new])
        assert result.state == JobState.RUNNING
        await until(lambda: handed)
        assert (handed[0].task, handed[0].queue, handed[0].payload,
                handed[0].correlation_id) == (task, queue, payload, correlation_id)
    finally:
        await stop()


async def test_a_worker_does_not_give_back_a_job_its_claim_is_still_bringing(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Heartbeats handled while a claim's reply is on its way (a blocked loop) see the
    claimed job leased to the worker and not yet held: it must not count as a stranger."""
    app = Conveyor(url, auto_migrate=True)
    ran: list[str] = []

    @app.task(name="claimed.task")
    async def claimed_task(ctx: object, payload: object) -> None:
        ran.append(ctx.job_id)  # type: ignore[attr-defined]

    worker = app.worker(queues=["default"], concurrency=2, heartbeat=0.2)
    real_claim = app.store.claim

    async def claim(*args: object, **kwargs: object) -> list[ClaimedJob]:
        jobs = await real_claim(*args, **kwargs)  # type: ignore[arg-type]
        for _ in range(2):
            worker.on_heartbeat(frozenset(), frozenset(), tuple(j.lease for j in jobs))
        return jobs

    monkeypatch.setattr(app.store, "claim", claim)
    try:
        queued = app.enqueue("claimed.task", {}, idempotency_key="k-1")  # claimed, not handed
        running = asyncio.create_task(worker.run(install_signals=False))
        await until(lambda: app.get(queued.id).state == JobState.COMPLETED, 10)
        worker.stop()
        await running
        done = app.get(queued.id)
        assert ran == [queued.id] and done.attempt == 1
    finally:
        app.close()


@pytest.mark.timeout(90)
def test_a_worker_process_is_handed_jobs_and_a_killed_one_is_not(schema: str, url: str,
                                                                  tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_POLL_INTERVAL": "0.2",
           "CONVEYOR_TEST_RUN_LOG": str(tmp_path / "runs.log"), "PYTHONPATH": str(ROOT)}
    subprocess.run([CONVEYOR, "migrate"], cwd=ROOT, env=env, check=True, timeout=60)
    app = Conveyor(url)
    command = [CONVEYOR, "worker", "--app", "tests.postgres.system_app:app", "--concurrency",
               "2"]
    first = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        wait_for(lambda: _offers(schema) == 1, 30)
        handed = app.enqueue("record", {"n": 1, "sleep_ms": 0})
        assert handed.state == JobState.RUNNING  # leased to the worker by the enqueue
        assert handed.attempt == 1 and handed.started_at == handed.created_at
        wait_for(lambda: app.get(handed.id).state == JobState.COMPLETED, 10)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(0.3)  # its connections close; the offer's listener backend is gone
        queued = app.enqueue("record", {"n": 2, "sleep_ms": 0})
        assert queued.state == JobState.QUEUED
        with worker_process(command, env):
            wait_for(lambda: app.get(queued.id).state == JobState.COMPLETED, 30)
    finally:
        if first.poll() is None:
            first.kill()
        app.close()
    runs = (tmp_path / "runs.log").read_text().split()
    assert sorted(runs[::2]) == sorted([handed.id, queued.id])  # each ran once


def _offers(schema: str) -> int:
    with admin_connect() as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_offers WHERE slots > 0'
                           ).fetchone()
    return 0 if row is None else int(row[0])


def wait_for(condition: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


async def test_a_producer_tries_hand_off_after_one_that_worked_and_every_probe_interval(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trying costs an enqueue a little, so a producer that found nobody waiting stops trying
    for PROBE seconds; one whose last job was handed off keeps trying."""
    monkeypatch.setattr(handoff.Gate, "PROBE", 2.0)
    [first] = await store.enqueue_many([job()])  # tried: nobody waits
    assert first.state == JobState.QUEUED
    worker = Waiting(store)
    try:
        claimed = await worker.offer()  # takes `first`; offers the rest of its slots
        assert [j.id for j in claimed] == [first.id]
        [second] = await store.enqueue_many([job()])
        assert second.state == JobState.QUEUED  # within PROBE of a try that found nobody
        await worker.offer()  # takes `second`
        await asyncio.sleep(2.1)
        states = [(await store.enqueue_many([job()]))[0].state for _ in range(3)]
        assert states == [JobState.RUNNING] * 3  # probed, found it, kept trying
    finally:
        await worker.close()
