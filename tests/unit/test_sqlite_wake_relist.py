"""The SQLite wake-up folder is read again (listed) while its mtime is young, so a socket
bound in the mtime's tick after the last read is still found: for 2 s on a filesystem whose
times have whole seconds only, for _RELIST_FINE_NS where they have a fraction (the kernel's
coarse clock: a tick of 1-10 ms). A trip asks whether the feed has subscribers once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.sqlite import wake
from conveyor.store.sqlite.store import SQLiteStore
from conveyor.store.sqlite.wake import WakeChannel


def _counting_listdir(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    listed: list[str] = []
    real = os.listdir

    def listdir(path: Any) -> list[str]:
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(wake.os, "listdir", listdir)
    return listed


def _folder_with_mtime(tmp_path: Path, mtime_ns: int) -> WakeChannel:
    channel = WakeChannel(str(tmp_path / "w.db"))
    assert channel.folder is not None
    os.makedirs(channel.folder)
    (Path(channel.folder) / "a.sock").touch()
    os.utime(channel.folder, ns=(mtime_ns, mtime_ns))
    return channel


def test_a_fine_grained_folder_is_listed_again_only_while_its_mtime_is_that_young(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1_800_000_000_000_000_000
    monkeypatch.setattr(wake.time, "time_ns", lambda: now)
    listed = _counting_listdir(monkeypatch)
    channel = _folder_with_mtime(tmp_path, now - wake._RELIST_FINE_NS + 123_457)  # young
    for _ in range(3):
        assert not channel.has_subscribers()
    assert len(listed) == 3  # each call lists: a bind in the same tick must be seen
    now += wake._RELIST_FINE_NS  # past the fine window (old code: 2 s, listed each time)
    for _ in range(3):  # the first lists (the last read was young), then none
        assert not channel.has_subscribers()
    assert len(listed) == 4
    (Path(str(channel.folder)) / "b.events").touch()  # a subscriber binds: the mtime moves
    assert channel.has_subscribers() and len(listed) == 5


def test_a_socket_bound_after_a_young_read_is_found_however_late_the_next_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read at 10 ms after the mtime; a socket bound in the same tick (the mtime unchanged);
    no read until 3 s later: that read lists the folder (old code: the mtime was 'old' by
    then, and the socket was missed until the folder changed again)."""
    now = 1_800_000_000_000_000_000
    clock = [now + 10_000_000]
    monkeypatch.setattr(wake.time, "time_ns", lambda: clock[0])
    channel = _folder_with_mtime(tmp_path, now + 123)
    assert not channel.has_subscribers()
    (Path(str(channel.folder)) / "b.events").touch()
    os.utime(str(channel.folder), ns=(now + 123, now + 123))  # the same tick
    clock[0] = now + 3_000_000_000
    assert channel.has_subscribers()


def test_a_whole_second_folder_is_listed_again_for_two_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1_800_000_000_000_000_000
    monkeypatch.setattr(wake.time, "time_ns", lambda: now + 1_500_000_000)
    listed = _counting_listdir(monkeypatch)
    channel = _folder_with_mtime(tmp_path, now)  # no fraction: whole seconds
    for _ in range(3):
        channel.has_subscribers()
    assert len(listed) == 3


def test_a_trip_asks_whether_the_feed_has_subscribers_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'trip.db'}")
    asked: list[bool] = []
    real = store.wake.has_subscribers

    def has_subscribers() -> bool:
        asked.append(True)
        return real()

    async def trip() -> None:
        await store.migrate()
        await store.enqueue_many([NewJob(id=new_id(), task="t", queue="q", payload=b"{}")
                                  for _ in range(4)])
        ask = ClaimAsk(("q",), "w", 2, 30.0)
        held = (await store.settle_and_claim([], ask)).jobs
        monkeypatch.setattr(store.wake, "has_subscribers", has_subscribers)
        answer = await store.settle_and_claim([Complete(j.lease) for j in held], ask)
        assert answer.applied == [True, True] and len(answer.jobs) == 2
        await store.close()

    asyncio.run(trip())
    assert len(asked) == 1  # old code: once for the settles, once for the claims
