"""Migration 0019 (SQLite): the store writes the counts of its claims and of a trip's
completions as sums while the update trigger stands aside (since 0036 for the rows those
statements flip count_mark on: tests/unit/test_sqlite_count_mark.py), so any other writer is
counted by the trigger as before."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.sqlite.count_sums import move
from conveyor.store.sqlite.store import SQLiteStore

T0 = 1_700_000_000.0


def _jobs(n: int) -> list[NewJob]:
    return [NewJob(id=new_id(), task="send", queue="mail", payload=b"{}",
                   tenant=("acme" if i % 2 else None)) for i in range(n)]


def test_the_deferral_lasts_one_transaction_and_others_are_counted_by_the_triggers(
        tmp_path: Path) -> None:
    path = tmp_path / "sums.db"
    store = SQLiteStore(f"sqlite:///{path}")

    async def drain() -> None:
        await store.migrate()
        await store.enqueue_many(_jobs(6), now=T0)
        claimed = await store.claim(None, "w1", 6, 30.0, now=T0 + 1)
        assert await store.settle([Complete(c.lease) for c in claimed[:4]], now=T0 + 2) == [
            True] * 4
        await store.close()

    asyncio.run(drain())
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM conveyor_count_deferred").fetchone() == (0,)
        # a writer behind the store's back: the triggers count it
        conn.execute("UPDATE conveyor_jobs SET state = 'cancelled' WHERE state = 'running'")
        counts = dict(conn.execute("SELECT state, n FROM conveyor_counts WHERE n <> 0"))
        tenant = dict(conn.execute("SELECT state, n FROM conveyor_tenant_counts WHERE n <> 0"))
    assert counts == {"completed": 4, "cancelled": 2}
    assert tenant == {"completed": 2, "cancelled": 1}


def test_sums_move_each_key_once_and_finished_minutes_by_retry(tmp_path: Path) -> None:
    path = tmp_path / "move.db"
    asyncio.run(SQLiteStore(f"sqlite:///{path}").migrate())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO conveyor_counts VALUES ('mail', 'send', 'running', 3), "
                 "('sms', 'send', 'running', 1)")
    conn.execute("INSERT INTO conveyor_tenant_counts VALUES "
                 "('acme', 'mail', 'send', 'running', 2)")
    move(conn, [("mail", "send", "acme"), ("mail", "send", ""), ("mail", "send", "acme"),
                ("sms", "send", "")], "running", "completed", finished_at=125.0,
         retried=[False, True, True, False])
    assert sorted(conn.execute("SELECT * FROM conveyor_counts WHERE n <> 0")) == [
        ("mail", "send", "completed", 3), ("sms", "send", "completed", 1)]
    assert sorted(conn.execute("SELECT * FROM conveyor_tenant_counts WHERE n <> 0")) == [
        ("acme", "mail", "send", "completed", 2)]
    assert sorted(conn.execute("SELECT * FROM conveyor_finished")) == [
        (2, "mail", "completed", 0, 1), (2, "mail", "completed", 1, 2),
        (2, "sms", "completed", 0, 1)]
    assert sorted(conn.execute("SELECT * FROM conveyor_tenant_finished")) == [
        ("acme", 2, "mail", "completed", 0, 1), ("acme", 2, "mail", "completed", 1, 1)]
    conn.close()


def test_sums_match_one_count_per_job_for_any_mix_of_keys_tenants_and_flags(
        tmp_path: Path) -> None:
    """move's sums (one Counter pass, summed per distinct key) against counting job by job,
    as 0011's triggers did: every mix of queues, tasks, tenants and retried flags."""
    import random

    path = tmp_path / "mix.db"
    asyncio.run(SQLiteStore(f"sqlite:///{path}").migrate())
    conn = sqlite3.connect(path, isolation_level=None)
    rng = random.Random(7)
    jobs = [(rng.choice(["mail", "sms", "push"]), rng.choice(["send", "retry"]),
             rng.choice(["", "", "acme", "globex"])) for _ in range(300)]
    flags = [rng.random() < 0.3 for _ in jobs]
    for queue, task, tenant in set(jobs):
        conn.execute("INSERT OR IGNORE INTO conveyor_counts VALUES (?, ?, 'running', 1000)",
                     (queue, task))
        if tenant:
            conn.execute("INSERT OR IGNORE INTO conveyor_tenant_counts VALUES "
                         "(?, ?, ?, 'running', 1000)", (tenant, queue, task))
    move(conn, jobs, "running", "dead", finished_at=600.0, retried=flags)

    counts: dict[tuple[str, ...], int] = {}
    tenants: dict[tuple[str, ...], int] = {}
    finished: dict[tuple[object, ...], int] = {}
    tenant_finished: dict[tuple[object, ...], int] = {}
    for (queue, task, tenant), flag in zip(jobs, flags, strict=True):  # one job at a time
        for key, n in (((queue, task, "running"), -1), ((queue, task, "dead"), 1)):
            counts[key] = counts.get(key, 1000 if key[2] == "running" else 0) + n
        finished[10, queue, "dead", int(flag)] = finished.get(
            (10, queue, "dead", int(flag)), 0) + 1
        if tenant:
            for key, n in (((tenant, queue, task, "running"), -1),
                           ((tenant, queue, task, "dead"), 1)):
                tenants[key] = tenants.get(key, 1000 if key[3] == "running" else 0) + n
            key = (tenant, 10, queue, "dead", int(flag))
            tenant_finished[key] = tenant_finished.get(key, 0) + 1
    assert {r[:3]: r[3] for r in conn.execute("SELECT * FROM conveyor_counts")} == counts
    assert {r[:4]: r[4] for r in conn.execute("SELECT * FROM conveyor_tenant_counts")} == tenants
    assert {r[:4]: r[4] for r in conn.execute("SELECT * FROM conveyor_finished")} == finished
    assert {r[:5]: r[5] for r in conn.execute(
        "SELECT * FROM conveyor_tenant_finished")} == tenant_finished
    conn.close()


def _kept(path: Path) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The kept counts (all tenants, per tenant), and the jobs' own count by state."""
    with sqlite3.connect(path) as conn:
        counts = dict(conn.execute("SELECT state, n FROM conveyor_counts WHERE n <> 0"))
        tenant = dict(conn.execute("SELECT state, sum(n) FROM conveyor_tenant_counts "
                                   "WHERE n <> 0 GROUP BY state"))
        jobs = dict(conn.execute("SELECT state, count(*) FROM conveyor_jobs GROUP BY state"))
    return counts, tenant, jobs


def test_a_trip_writes_its_net_count_changes_once(tmp_path: Path) -> None:
    """A steady trip (as many claimed as completed, one key) writes the queued key's
    decrement, the completed key's increment and the finished minute's: nothing for
    'running', whose jobs came and went in equal numbers (the old code wrote five count
    statements a trip: each move's leave and enter, and the minute), and no deferral row
    (0036: its two statements flip count_mark instead; until then one DEFER, one RESUME)."""
    from conveyor.store.base import ClaimAsk

    path = tmp_path / "trip.db"
    store = SQLiteStore(f"sqlite:///{path}")
    written: list[str] = []

    async def drain() -> None:
        await store.migrate()
        await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail",
                                         payload=b"{}") for _ in range(12)], now=T0)
        ask = ClaimAsk(("mail",), "w1", 4, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        with store.db.write() as conn:
            conn.set_trace_callback(written.append)
        answer = await store.settle_and_claim([Complete(c.lease) for c in held], ask,
                                              now=T0 + 2)
        with store.db.write() as conn:
            conn.set_trace_callback(None)
        assert answer.applied == [True] * 4 and len(answer.jobs) == 4
        await store.close()

    asyncio.run(drain())
    counted = [s for s in written if "conveyor_counts" in s or "conveyor_finished" in s]
    assert len(counted) == 3, counted
    assert not any("conveyor_count_deferred" in s for s in written), written
    # (the trace repeats a statement for each trigger program its rows run)
    assert len({s for s in written if "count_mark = 1 - count_mark" in s}) == 2, written
    assert not any("'running'" in s for s in counted), counted
    counts, _, jobs = _kept(path)
    assert counts == jobs == {"queued": 4, "running": 4, "completed": 4}


def test_a_failed_claim_leaves_its_counts_out_and_the_settle_s_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """settle_and_claim's claim fails after its UPDATE (undone by its savepoint, and its
    marks with it): the trip's count changes are the settle's alone, exactly the jobs'
    states, and no deferral outlives the transaction."""
    from conveyor.store.base import ClaimAsk
    from conveyor.store.sqlite.count_sums import Sums

    path = tmp_path / "failed.db"
    store = SQLiteStore(f"sqlite:///{path}")
    real = Sums.move

    def failing(self: Sums, moved: object, old: str, *args: object, **kwargs: object) -> None:
        if old == "queued":  # the claim's, after its UPDATE
            raise RuntimeError("the claim failed after its update")
        real(self, moved, old, *args, **kwargs)  # type: ignore[arg-type]

    async def drain() -> None:
        await store.migrate()
        await store.enqueue_many(_jobs(10), now=T0)
        ask = ClaimAsk(("mail",), "w1", 4, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        monkeypatch.setattr(Sums, "move", failing)
        answer = await store.settle_and_claim([Complete(c.lease) for c in held], ask,
                                              now=T0 + 2)
        assert answer.applied == [True] * 4 and not answer.jobs
        assert isinstance(answer.claim_failed, RuntimeError)
        await store.close()

    asyncio.run(drain())
    counts, tenant, jobs = _kept(path)
    assert counts == jobs == {"queued": 6, "completed": 4}
    assert tenant == {"queued": 3, "completed": 2}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM conveyor_count_deferred").fetchone() == (0,)


def test_one_update_trigger_counts_every_writer_as_the_two_did(tmp_path: Path) -> None:
    """Migration 0032: 0019's two update triggers as one (one WHEN per updated row). Writers
    behind the store's back (state, tenant, queue, task, attempt changes, finishing, a retry)
    are counted exactly: the kept counts equal the jobs recounted, for every tenant and each,
    and the finished minutes the finished jobs."""
    path = tmp_path / "triggers.db"

    async def fill() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        await store.migrate()
        await store.enqueue_many(_jobs(40), now=T0)
        claimed = await store.claim(None, "w1", 20, 30.0, now=T0 + 1)
        await store.settle([Complete(c.lease) for c in claimed[:5]], now=T0 + 2)
        await store.close()

    asyncio.run(fill())
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'conveyor_count%' "
            "AND sql LIKE '%UPDATE OF%'")}
        assert names == {"conveyor_count_updated"}, names
        for sql in (
                "UPDATE conveyor_jobs SET state = 'dead', finished_at = 1700000100 "
                "WHERE id IN (SELECT id FROM conveyor_jobs WHERE state = 'running' "
                "LIMIT 4)",
                "UPDATE conveyor_jobs SET state = 'scheduled', run_at = 1700009999 "
                "WHERE id IN (SELECT id FROM conveyor_jobs WHERE state = 'running' "
                "LIMIT 3)",
                "UPDATE conveyor_jobs SET tenant = 'other' WHERE unicode(substr(id, -1)) % 7 = 0",
                "UPDATE conveyor_jobs SET tenant = '' WHERE unicode(substr(id, -1)) % 11 = 0",
                "UPDATE conveyor_jobs SET queue = 'moved', task = 'other' "
                "WHERE unicode(substr(id, -1)) % 5 = 0",
                "UPDATE conveyor_jobs SET attempt = attempt + 1 WHERE state = 'queued'",
                "UPDATE conveyor_jobs SET state = 'completed', finished_at = 1700000200 "
                "WHERE state = 'running'",
                "UPDATE conveyor_jobs SET state = 'cancelled', finished_at = 1700000300 "
                "WHERE state = 'queued' AND unicode(substr(id, -1)) % 2 = 0"):
            conn.execute(sql)
        kept = sorted(conn.execute("SELECT queue, task, state, n FROM conveyor_counts "
                                   "WHERE n <> 0"))
        counted = "CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END"
        recount = sorted(conn.execute(f"SELECT queue, task, {counted}, count(*) "
                                      "FROM conveyor_jobs GROUP BY 1, 2, 3"))
        assert kept == recount
        kept_tenants = sorted(conn.execute("SELECT tenant, queue, task, state, n "
                                           "FROM conveyor_tenant_counts WHERE n <> 0"))
        tenants = sorted(conn.execute(f"SELECT tenant, queue, task, {counted}, count(*) "
                                      "FROM conveyor_jobs WHERE tenant <> '' "
                                      "GROUP BY 1, 2, 3, 4"))
        assert kept_tenants == tenants
        finished = conn.execute("SELECT sum(n) FROM conveyor_finished").fetchone()[0]
        assert finished == conn.execute("SELECT count(*) FROM conveyor_jobs "
                                        "WHERE state IN ('completed', 'dead')").fetchone()[0]


def test_a_limited_claim_after_a_deferred_settle_is_counted_by_the_triggers(
        tmp_path: Path) -> None:
    """A trip whose settle is summed (the triggers deferred) and whose claim answers to a
    concurrency limit (written row by row, counted by the triggers): the deferral ends
    before the claim, so the claim's jobs are counted, exactly."""
    from conveyor.limits import Limit
    from conveyor.store.base import ClaimAsk

    path = tmp_path / "limited.db"
    store = SQLiteStore(f"sqlite:///{path}")

    async def drain() -> None:
        await store.migrate()
        await store.enqueue_many(_jobs(12), now=T0)
        await store.set_limit(Limit("queue", "mail", concurrency=5))
        ask = ClaimAsk(("mail",), "w1", 4, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        answer = await store.settle_and_claim([Complete(c.lease) for c in held], ask,
                                              now=T0 + 2)
        assert answer.applied == [True] * 4 and len(answer.jobs) == 4
        await store.close()

    asyncio.run(drain())
    counts, tenant, jobs = _kept(path)
    assert counts == jobs == {"queued": 4, "running": 4, "completed": 4}
    assert tenant == {"queued": 2, "running": 2, "completed": 2}
