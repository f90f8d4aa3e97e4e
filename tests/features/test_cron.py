"""Cron on the embedded store: every node enqueues each slot, the store keeps one job per
slot; missed slots are coalesced; a running worker starts each slot's job on time."""

import asyncio
import sqlite3
import time

import pytest

from conveyor import Conveyor, FakeClock, JobState, Settings
from conveyor.errors import ScheduleNotFound
from conveyor.scheduler import Scheduler, slot_id
from conveyor.store.sqlite.store import SQLiteStore
from conveyor.testing import run_until_idle

EVERY_10S = "* * * * * */10"
T0 = 1_800_000_000.0  # a whole minute: a slot of every schedule here


def node(url: str, clock: FakeClock) -> tuple[Conveyor, Scheduler]:
    """One node of a deployment: its own app (same code, same schedules) and scheduler."""
    app = Conveyor(url, clock=clock)

    @app.task(queue="reports")
    async def report(ctx, payload):
        return payload

    app.cron(EVERY_10S, "report", {"kind": "sales"}, name="sales", priority=2)
    return app, Scheduler(app, clock)


def test_two_nodes_enqueue_each_slot_once_and_coalesce_missed_slots(tmp_path):
    clock = FakeClock(T0 + 0.5)
    url = f"sqlite:///{tmp_path}/cron.db"
    (a, sched_a), (b, sched_b) = node(url, clock), node(url, clock)
    try:
        run = asyncio.run
        assert (run(sched_a.run_once()), run(sched_b.run_once())) == (1, 0)  # b: a duplicate
        [first] = a.list_jobs()
        assert first.id == slot_id("sales", T0) and first.task == "report"
        assert (first.queue, first.priority, first.state) == ("reports", 2, JobState.QUEUED)
        assert a.get(first.id).payload == {"kind": "sales"}
        assert (first.run_at, first.idempotency_key) == (T0, f"cron:{first.id}")
        assert (run(sched_a.run_once()), run(sched_b.run_once())) == (0, 0)  # nothing new due

        clock.advance(10)  # the next slot: whichever node comes first stores it
        assert (run(sched_b.run_once()), run(sched_a.run_once())) == (1, 0)
        clock.advance(35)  # three slots pass unseen: only the latest is enqueued
        assert (run(sched_a.run_once()), run(sched_b.run_once())) == (1, 0)
        clock.advance(600)  # every node was down for ten minutes: one job, not sixty
        assert (run(sched_b.run_once()), run(sched_a.run_once())) == (1, 0)
        ids = sorted(job.id for job in a.list_jobs(limit=100))
        assert ids == sorted(slot_id("sales", t) for t in (T0, T0 + 10, T0 + 40, T0 + 640))
    finally:
        a.close()
        b.close()


def test_a_node_starting_late_finds_the_slot_already_stored(tmp_path):
    clock = FakeClock(T0 + 3)
    url = f"sqlite:///{tmp_path}/cron.db"
    a, sched_a = node(url, clock)
    try:
        assert asyncio.run(sched_a.run_once()) == 1
        clock.advance(4)  # a second node starts 7 s after the slot, inside the misfire window
        b, sched_b = node(url, clock)
        try:
            assert asyncio.run(sched_b.run_once()) == 0
            assert len(b.list_jobs()) == 1
        finally:
            b.close()
    finally:
        a.close()


def slot_time(job_id: str) -> float:
    """The slot a cron job is for: its id's clock part (scheduler.slot_id)."""
    return int(job_id.replace("-", "")[:12], 16) / 1000


def test_a_running_worker_starts_every_slot_on_time(tmp_path):
    app = Conveyor(f"sqlite:///{tmp_path}/cron.db")
    started: list[tuple[str, float]] = []

    @app.task()
    async def tick(ctx, payload):
        started.append((ctx.job_id, time.time()))

    app.cron("* * * * * *", "tick", name="tick")

    async def scenario():
        worker = app.worker(concurrency=2, poll_interval=30)  # polling would take 30 s
        running = asyncio.create_task(worker.run(install_signals=False))
        await asyncio.sleep(3.2)
        worker.stop()
        await running

    begun = time.time()
    asyncio.run(scenario())
    app.close()
    slots = [slot_time(job_id) for job_id, _ in started]
    assert len(started) >= 3, started
    assert slots == [slots[0] + i for i in range(len(slots))]  # one run a second, no gaps
    assert slots[0] >= int(begun)
    for (job_id, _), slot in zip(started, slots, strict=True):
        assert job_id == slot_id("tick", slot)
    # the first is the slot just past when the worker started (coalesced catch-up); each
    # later one starts as its slot comes
    assert all(at - slot < 0.5 for (_, at), slot in zip(started[1:], slots[1:], strict=True))


def test_a_worker_refuses_a_schedule_it_could_not_enqueue(tmp_path):
    from pydantic import BaseModel

    from conveyor.errors import ConfigError

    class Report(BaseModel):
        month: str

    app = Conveyor(f"sqlite:///{tmp_path}/cron.db")

    @app.task(schema=Report)
    async def report(ctx, payload):
        return None

    app.cron("0 * * * *", "reprot", {"month": "2026-11"}, name="typo")
    with pytest.raises(ConfigError, match=r"cron schedule 'typo': .*reprot"):
        asyncio.run(app.worker().run(install_signals=False))
    del app.schedules["typo"]
    app.cron("0 * * * *", "report", {"year": 2026}, name="wrong payload")
    with pytest.raises(ConfigError, match=r"cron schedule 'wrong payload': .*month"):
        asyncio.run(app.worker().run(install_signals=False))
    assert app.list_jobs() == []
    app.close()


def test_a_failing_schedule_does_not_hold_up_the_others_and_is_tried_again(tmp_path,
                                                                         monkeypatch):
    clock = FakeClock(T0 + 0.5)
    app, scheduler = node(f"sqlite:///{tmp_path}/cron.db", clock)
    app.cron(EVERY_10S, "report", {"kind": "stock"}, name="stock")
    real = Scheduler.enqueue
    broken = {"sales"}

    async def enqueue(self, entry, slot):
        if entry.name in broken:
            raise RuntimeError("the store said no")
        return await real(self, entry, slot)

    monkeypatch.setattr(Scheduler, "enqueue", enqueue)
    try:
        assert asyncio.run(scheduler.run_once()) == 1  # stock; sales failed
        broken.clear()
        clock.advance(2)  # the same slot, still due for sales only
        assert asyncio.run(scheduler.run_once()) == 1
        assert sorted(job.id for job in app.list_jobs()) == sorted(
            [slot_id("sales", T0), slot_id("stock", T0)])
    finally:
        app.close()


def test_a_slot_is_not_spooled_while_the_store_is_down_but_enqueued_when_it_is_back(tmp_path):
    url = f"sqlite:///{tmp_path}/cron.db"
    clock = FakeClock(T0 + 0.5)
    settings = Settings.load(url=url, spool=str(tmp_path / "spool"))
    app = Conveyor(settings=settings, clock=clock, store=SQLiteStore(url, busy_timeout=0.05))

    @app.task()
    async def report(ctx, payload):
        return None

    app.cron(EVERY_10S, "report", name="sales")
    app.migrate()
    scheduler = Scheduler(app, clock)
    blocker = sqlite3.connect(f"{tmp_path}/cron.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the store cannot write
    try:
        assert asyncio.run(scheduler.run_once()) == 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not list((tmp_path / "spool").glob("*"))  # nothing spooled, to be sent late
    clock.advance(5)
    assert asyncio.run(scheduler.run_once()) == 1  # the same slot, now stored
    assert [job.id for job in app.list_jobs()] == [slot_id("sales", T0)]
    app.close()


def test_run_until_idle_does_not_enqueue_cron_slots(tmp_path):
    app, _ = node(f"sqlite:///{tmp_path}/cron.db", FakeClock(T0 + 0.5))
    try:
        assert run_until_idle(app) == 0
        assert app.list_jobs() == []
    finally:
        app.close()


def test_a_paused_schedule_enqueues_nothing_on_any_node_until_resumed(tmp_path):
    clock = FakeClock(T0 + 0.5)
    url = f"sqlite:///{tmp_path}/cron.db"
    (a, sched_a), (b, sched_b) = node(url, clock), node(url, clock)
    try:
        run = asyncio.run
        assert run(sched_a.run_once()) == 1                     # the slot of T0
        a.pause_schedule("sales")                               # on node a: holds on b too
        assert a.schedule_states()["sales"].paused
        for _ in range(3):
            clock.advance(10)
            assert (run(sched_a.run_once()), run(sched_b.run_once())) == (0, 0)
        clock.advance(5)                                        # T0 + 35.5: T0 + 30 passed
        b.resume_schedule("sales")
        assert not a.schedule_states()["sales"].paused
        # the slot that came while it was paused does not run late, on either node
        assert (run(sched_a.run_once()), run(sched_b.run_once())) == (0, 0)
        clock.advance(5)                                        # T0 + 40: its next slot
        assert (run(sched_b.run_once()), run(sched_a.run_once())) == (1, 0)
        ids = sorted(job.id for job in a.list_jobs(limit=100))
        assert ids == sorted(slot_id("sales", t) for t in (T0, T0 + 40))
        with pytest.raises(ScheduleNotFound, match="no cron schedule named 'sale'"):
            a.pause_schedule("sale")
    finally:
        a.close()
        b.close()
