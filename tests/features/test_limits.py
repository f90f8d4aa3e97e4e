"""Limits as users declare and change them: app.queue(...), @app.task(concurrency=, rate=),
app.limits.set/reset, and what a held-back job says. Real SQLite files, a FakeClock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor import Conveyor, FakeClock, JobState, KeyLimit, RateLimited
from conveyor.limits.model import Limit, parse_rate
from conveyor.testing import run_until_idle_async

T0 = 1_800_000_000.0


def make_app(path: Path, clock: FakeClock) -> Conveyor:
    app = Conveyor(f"sqlite:///{path / 'limits.db'}", clock=clock)
    app.queue("ai", concurrency=2, rate="10/min")

    @app.task(queue="ai")
    def think(ctx: object, payload: object) -> None:
        return None

    @app.task(queue="mail", concurrency=1, rate="3/s")
    def send(ctx: object, payload: object) -> None:
        return None

    return app


def test_declarations_reach_the_store_when_a_worker_starts(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    assert app.limits.usage() == []  # nothing written before a worker starts
    asyncio.run(run_until_idle_async(app))
    got = {(u.limit.kind, u.limit.name): u.limit for u in app.limits.usage()}
    assert got == {("queue", "ai"): Limit("queue", "ai", 2, 10, 60.0, source="code"),
                   ("task", "send"): Limit("task", "send", 1, 3, 1.0, source="code")}
    app.close()


def test_an_operator_change_survives_a_restart_and_reset_brings_code_back(
        tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    asyncio.run(run_until_idle_async(app))
    app.limits.set("queue", "ai", concurrency=5)  # the rate stays
    app.close()

    restarted = make_app(tmp_path, clock)
    asyncio.run(run_until_idle_async(restarted))
    found = restarted.limits.find("queue", "ai")
    assert found is not None
    assert found.limit == Limit("queue", "ai", 5, 10, 60.0, source="operator")
    restarted.limits.set("queue", "ai", rate=None)
    found = restarted.limits.find("queue", "ai")
    assert found is not None and found.limit.rate is None
    assert restarted.limits.reset("queue", "ai") == Limit("queue", "ai", 2, 10, 60.0,
                                                          source="code")
    found = restarted.limits.find("queue", "ai")
    assert found is not None and found.limit.source == "code"
    restarted.close()


def test_a_limit_holds_jobs_back_and_says_which(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    jobs = [app.enqueue("think", {}) for _ in range(5)]
    ran = asyncio.run(run_until_idle_async(app, queues=["ai"]))
    assert ran == 5  # 2 at a time (run_once completes them), within 10 a minute
    app.limits.set("queue", "ai", concurrency=0)
    held = app.enqueue("think", {})
    assert asyncio.run(run_until_idle_async(app, queues=["ai"])) == 0
    assert app.get(held.id).state == JobState.QUEUED
    [reason] = app.limits.holding(app.get(held.id))
    assert reason == "queue 'ai' concurrency 0 (0 running)"
    assert {app.get(j.id).state for j in jobs} == {JobState.COMPLETED}
    app.close()


def test_a_rate_per_minute_lets_ten_start_then_waits_a_minute(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    for _ in range(15):
        app.enqueue("think", {})
    assert asyncio.run(run_until_idle_async(app, queues=["ai"])) == 10
    [reason] = app.limits.holding(app.list_jobs()[0])
    assert reason == "queue 'ai' rate 10/min (10 started in the window)"
    clock.advance(60)
    assert asyncio.run(run_until_idle_async(app, queues=["ai"])) == 5
    app.close()


@pytest.mark.parametrize("bad", [{"concurrency": -1}, {"rate": "10"}, {"rate": "10/0s"},
                                 {"rate": "ten/min"}])
def test_bad_declarations_are_clear_errors(tmp_path: Path, bad: dict[str, object]) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'bad.db'}")
    with pytest.raises(ValueError, match=r"concurrency|rate"):
        app.queue("ai", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="task 'x'"):
        app.task(name="x", **bad)(lambda ctx, payload: None)  # type: ignore[call-overload]


def test_rates_say_what_they_count() -> None:
    assert parse_rate("10/min") == (10, 60.0)
    assert parse_rate("100/10s") == (100, 10.0)
    assert parse_rate("1000/hour") == (1000, 3600.0)
    with pytest.raises(ValueError, match="COUNT/PERIOD"):
        parse_rate("10 per minute")


async def _one_at_a_time(app: Conveyor) -> int:
    """Jobs run one claim of one job at a time, until none is claimable."""
    worker = app.worker(concurrency=1, prefetch=0)
    ran = 0
    assert worker.maintenance is not None
    while True:
        await worker.maintenance.run_once()
        if not await worker.run_once():
            break
        ran += 1
    worker.close()
    return ran


def test_rate_limited_waits_without_an_attempt_and_can_slow_the_queue(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = Conveyor(f"sqlite:///{tmp_path / 'rl.db'}", clock=clock)
    calls: list[str] = []

    @app.task(queue="api")
    def call_service(ctx: object, payload: dict[str, str]) -> str:
        calls.append(payload["n"])
        if payload["n"] == "first" and len(calls) == 1:
            raise RateLimited(retry_in=30, slow="queue")
        return "ok"

    first = app.enqueue("call_service", {"n": "first"}, priority=5)
    second = app.enqueue("call_service", {"n": "second"})
    assert asyncio.run(_one_at_a_time(app)) == 1  # the first, then the queue waits
    job = app.get(first.id)
    assert (job.state, job.attempt, job.errors) == (JobState.SCHEDULED, 0, ())
    assert job.run_at == pytest.approx(T0 + 30)
    assert app.get(second.id).state == JobState.QUEUED
    [reason] = app.limits.holding(app.get(second.id))
    assert reason.startswith("queue 'api' slowed down for 30 s more")

    clock.advance(30)
    assert asyncio.run(_one_at_a_time(app)) == 2
    assert app.get(first.id).attempt == 1 and app.get(second.id).state == JobState.COMPLETED
    app.close()


def test_rate_limited_can_slow_only_its_key(tmp_path: Path) -> None:
    """slow="key": the customer the service refused waits; other customers go on."""
    clock = FakeClock(T0)
    app = Conveyor(f"sqlite:///{tmp_path / 'rlkey.db'}", clock=clock)
    calls: list[str] = []

    @app.task(queue="api", key=KeyLimit("payload.customer", concurrency=5))
    def call_service(ctx: object, payload: dict[str, str]) -> str:
        calls.append(payload["n"])
        if payload["n"] == "first" and calls.count("first") == 1:
            raise RateLimited(retry_in=30, slow="key")
        return "ok"

    first = app.enqueue("call_service", {"n": "first", "customer": "acme"}, priority=5)
    second = app.enqueue("call_service", {"n": "second", "customer": "acme"})
    other = app.enqueue("call_service", {"n": "other", "customer": "globex"})
    assert asyncio.run(_one_at_a_time(app)) == 2  # acme's first, then globex's only
    assert calls == ["first", "other"]
    job = app.get(first.id)
    assert (job.state, job.attempt, job.errors) == (JobState.SCHEDULED, 0, ())
    assert app.get(other.id).state == JobState.COMPLETED
    [reason] = app.limits.holding(app.get(second.id))
    assert reason == ("each key of task 'call_service': key 'acme' slowed down for "
                      "30 s more (RateLimited)")
    clock.advance(29)
    assert asyncio.run(_one_at_a_time(app)) == 0
    clock.advance(1)
    assert asyncio.run(_one_at_a_time(app)) == 2
    assert app.get(second.id).state == JobState.COMPLETED
    app.close()


def test_rate_limited_without_slow_leaves_the_queue_alone(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = Conveyor(f"sqlite:///{tmp_path / 'rl2.db'}", clock=clock)

    @app.task(queue="api")
    def call_service(ctx: object, payload: dict[str, str]) -> str:
        if payload["n"] == "first":
            raise RateLimited(retry_in=5)
        return "ok"

    first = app.enqueue("call_service", {"n": "first"}, priority=5)
    second = app.enqueue("call_service", {"n": "second"})
    assert asyncio.run(run_until_idle_async(app)) == 2
    assert app.get(second.id).state == JobState.COMPLETED
    assert app.get(first.id).attempt == 0 and app.limits.usage() == []
    with pytest.raises(ValueError, match="slow"):
        RateLimited(retry_in=1, slow="tenant")
    app.close()
