"""While the store is unreachable, enqueue spools jobs durably and forwards them later."""

import shutil
import sqlite3
import time

import pytest

from conveyor import Conveyor, Settings, StoreUnavailable
from conveyor.store.sqlite.store import SQLiteStore


def locked_app(tmp_path, spool: bool) -> tuple[Conveyor, sqlite3.Connection]:
    url = f"sqlite:///{tmp_path}/s.db"
    settings = Settings.load(url=url, spool=str(tmp_path / "spool") if spool else None)
    app = Conveyor(settings=settings, store=SQLiteStore(url, busy_timeout=0.05))
    app.migrate()
    blocker = sqlite3.connect(f"{tmp_path}/s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the store cannot write: like a database that is down
    return app, blocker


def wait_for(check, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_without_a_spool_enqueue_raises_store_unavailable(tmp_path):
    app, blocker = locked_app(tmp_path, spool=False)
    with pytest.raises(StoreUnavailable):
        app.enqueue("send", {"n": 1})
    blocker.execute("ROLLBACK")
    assert app.list_jobs() == []


def test_spooled_jobs_are_forwarded_when_the_store_is_back(tmp_path):
    app, blocker = locked_app(tmp_path, spool=True)
    one = app.enqueue("send", {"n": 1}, idempotency_key="k1")
    many = app.enqueue_many([("send", {"n": 2}), ("send", {"n": 3})])
    assert one.state == "queued"
    assert len(list((tmp_path / "spool").glob("*.jobs"))) == 2
    blocker.execute("ROLLBACK")  # the store is back
    assert wait_for(lambda: not list((tmp_path / "spool").glob("*.jobs")))
    stored = {j.id: j.payload["n"] for j in app.list_jobs()}
    assert stored == {one.id: 1, many[0].id: 2, many[1].id: 3}
    assert app.get(one.id).idempotency_key == "k1"


def test_a_spool_left_by_a_dead_producer_is_forwarded_once(tmp_path):
    app, blocker = locked_app(tmp_path, spool=True)
    job = app.enqueue("send", {"n": 1})
    [spooled] = list((tmp_path / "spool").glob("*.jobs"))
    copy = tmp_path / "copy.jobs"
    shutil.copy(spooled, copy)
    app._forwarder().stop()
    blocker.execute("ROLLBACK")
    # a new producer process starts with the file still there, and forwards it
    restarted = Conveyor(settings=Settings.load(url=f"sqlite:///{tmp_path}/s.db",
                                                spool=str(tmp_path / "spool")))
    assert wait_for(lambda: not list((tmp_path / "spool").glob("*.jobs")))
    shutil.copy(copy, tmp_path / "spool" / spooled.name)  # forwarded again after a crash
    assert restarted.forward_spool() == 1
    assert [j.id for j in restarted.list_jobs()] == [job.id]  # still one job
