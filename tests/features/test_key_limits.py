"""Limits per key as users declare them: @app.task(key=KeyLimit(...)), the key computed at
enqueue from the payload, the tenant or a function, a bad key refused with nothing stored,
"drop" answered clearly, changes at run time. Real SQLite files, a FakeClock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, FakeClock, JobState, KeyLimit, PayloadInvalid
from conveyor.limits.model import Limit
from conveyor.testing import run_until_idle_async
from conveyor.web.serialize import accepted_json

T0 = 1_800_000_000.0


def make_app(path: Path, clock: FakeClock) -> Conveyor:
    app = Conveyor(f"sqlite:///{path / 'keys.db'}", clock=clock)

    @app.task(key=KeyLimit("payload.customer.id", concurrency=1))
    def sync(ctx: object, payload: object) -> None:
        return None

    @app.task(key=KeyLimit("tenant", rate="10/min", strategy="drop"))
    def call_api(ctx: object, payload: object) -> None:
        return None

    @app.task(key=KeyLimit(lambda payload: payload["account"].lower(), concurrency=2,
                           strategy="debounce"))
    def refresh(ctx: object, payload: object) -> None:
        return None

    return app


def stored_key(app: Conveyor, job_id: str) -> Any:
    with app.store.db.read() as conn:  # type: ignore[attr-defined]
        return conn.execute("SELECT limit_key FROM conveyor_jobs WHERE id = ?",
                            (job_id,)).fetchone()[0]


def test_the_key_is_computed_at_enqueue_and_stored_with_the_job(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeClock(T0))
    one = app.enqueue("sync", {"customer": {"id": 42}})
    many = app.enqueue_many([{"task": "call_api", "payload": {}, "tenant": "acme"},
                             {"task": "refresh", "payload": {"account": "Bob"}}])
    unkeyed = app.enqueue("call_api", {})  # no tenant: no key
    assert [stored_key(app, j.id) for j in [one, *many, unkeyed]] == ["42", "acme", "bob",
                                                                      None]
    app.close()


def test_a_key_that_cannot_be_computed_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeClock(T0))
    with pytest.raises(PayloadInvalid, match=r"payload\.customer\.id must give a string"):
        app.enqueue("sync", {"customer": {}})
    with pytest.raises(PayloadInvalid):
        app.enqueue_many([{"task": "sync", "payload": {"customer": {"id": 1}}},
                          {"task": "sync", "payload": {"customer": {"id": True}}}])
    assert list(app.list_jobs()) == []
    app.close()


def test_a_bad_declaration_is_refused_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="a key is"):
        KeyLimit("customer_id", concurrency=1)
    with pytest.raises(ValueError, match="strategy"):
        KeyLimit("tenant", concurrency=1, strategy="newest")
    with pytest.raises(ValueError, match="at most 1000"):
        KeyLimit("tenant", rate="5000/min")
    app = Conveyor("sqlite:///:memory:")
    with pytest.raises(ValueError, match="KeyLimit"):
        app.task(key="tenant")(lambda ctx, payload: None)  # type: ignore[arg-type]


def test_declared_key_limits_reach_the_store_and_change_at_run_time(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    asyncio.run(run_until_idle_async(app))
    got = {(u.limit.kind, u.limit.name): u.limit for u in app.limits.usage()}
    assert got[("key", "sync")] == Limit("key", "sync", concurrency=1, source="code")
    assert got[("key", "call_api")] == Limit("key", "call_api", rate=10, period=60.0,
                                             source="code", strategy="drop")
    app.limits.set("key", "sync", concurrency=3, strategy="debounce")
    found = app.limits.find("key", "sync")
    assert found is not None
    assert found.limit == Limit("key", "sync", concurrency=3, strategy="debounce")
    assert app.limits.reset("key", "sync") == Limit("key", "sync", concurrency=1,
                                                    source="code")
    app.close()


def test_drop_answers_that_the_job_was_dropped(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    asyncio.run(run_until_idle_async(app))  # declares the limits
    app.limits.set("key", "call_api", rate="1/min")
    first = app.enqueue("call_api", {}, tenant="acme")
    second = app.enqueue("call_api", {}, tenant="acme")
    other = app.enqueue("call_api", {}, tenant="globex")
    assert (first.dropped, second.dropped, other.dropped) == (False, True, False)
    assert (second.state, second.dead_reason) == (JobState.CANCELLED,
                                                  "dropped: key at its limit")
    assert second.to_dict()["dropped"] is True
    assert accepted_json(second)["dropped"] is True and "dropped" not in accepted_json(first)
    app.close()


def test_a_job_held_back_by_its_key_says_so(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    app = make_app(tmp_path, clock)
    app.limits.set("key", "sync", concurrency=1)
    first = app.enqueue("sync", {"customer": {"id": 7}})
    second = app.enqueue("sync", {"customer": {"id": 7}})
    other = app.enqueue("sync", {"customer": {"id": 8}})
    claimed = app.call(lambda store: store.claim(None, "w-1", 1, 30.0, now=T0))
    assert [job.id for job in claimed] == [first.id]
    assert app.limits.holding(app.get(second.id)) == [
        "each key of task 'sync': key '7' at its limit (concurrency 1; 1 running, "
        "0 started in the window)"]
    assert app.limits.holding(app.get(other.id)) == []
    app.close()
