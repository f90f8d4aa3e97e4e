"""The dashboard's shared read (web/snapshot.py): concurrent requests cause one read, a copy
is never handed out older than its max age, a failed read is not kept."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.web.snapshot import Snapshot

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_requests_share_one_read() -> None:
    shared: Snapshot[int] = Snapshot(1.0)
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return calls

    waiting = [asyncio.ensure_future(shared.get("all", read)) for _ in range(10)]
    await started.wait()
    await asyncio.sleep(0)  # every request has come in while the read runs
    release.set()
    found = await asyncio.gather(*waiting)
    assert calls == 1 and shared.reads == 1
    assert {value for value, _ in found} == {1}


async def test_a_copy_is_never_older_than_its_max_age() -> None:
    clock = Clock()
    shared: Snapshot[float] = Snapshot(1.0, clock=clock)
    reads: list[float] = []

    async def read() -> float:
        reads.append(clock.now)
        return clock.now

    # steps that add up exactly in binary: the edge (exactly 1 s old) is served
    for step in [0.0, 0.25, 0.5, 0.25, 0.0078125, 0.25, 2.0, 0.875, 0.25, 0.5, 0.5, 0.5]:
        clock.now += step
        value, age = await shared.get(None, read)
        assert age == pytest.approx(clock.now - value)
        assert 0 <= age <= 1.0, (clock.now, value)
    # 100.0 read and served up to 101.0 (1 s old); at 101.0078125 read again, and so on
    assert reads == [100.0, 101.0078125, 103.2578125, 104.3828125, 105.8828125]


async def test_scopes_have_copies_of_their_own() -> None:
    shared: Snapshot[str] = Snapshot(1.0)

    async def read_of(scope: str | None) -> str:
        return f"figures of {scope}"

    assert (await shared.get(None, lambda: read_of(None)))[0] == "figures of None"
    assert (await shared.get("acme", lambda: read_of("acme")))[0] == "figures of acme"
    assert (await shared.get(None, lambda: read_of("acme")))[0] == "figures of None"
    assert shared.reads == 2


async def test_a_failed_read_is_not_kept() -> None:
    shared: Snapshot[int] = Snapshot(1.0)
    outcomes: list[BaseException | int] = [RuntimeError("store down"), 7]

    async def read() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError, match="store down"):
        await shared.get(None, read)
    assert (await shared.get(None, read))[0] == 7 and shared.reads == 2


async def test_no_copies_at_zero_but_concurrent_requests_still_share() -> None:
    shared: Snapshot[int] = Snapshot(0.0)
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    assert [v for v, _ in await asyncio.gather(*(shared.get(None, read) for _ in range(5)))] \
        == [1] * 5
    assert (await shared.get(None, read))[0] == 2


def test_a_negative_max_age_is_refused() -> None:
    with pytest.raises(ValueError, match="0 seconds or more"):
        Snapshot(-1.0)


async def test_a_drop_makes_the_next_request_read_again() -> None:
    clock = Clock()
    shared: Snapshot[int] = Snapshot(60.0, clock=clock)
    version = 1

    async def read() -> int:
        return version

    assert (await shared.get(None, read))[0] == 1
    version = 2
    assert (await shared.get(None, read))[0] == 1  # the copy, 0 s old
    shared.drop()
    assert (await shared.get(None, read))[0] == 2
    assert shared.reads == 2


async def test_a_read_under_way_when_dropped_answers_its_own_but_is_not_kept() -> None:
    shared: Snapshot[str] = Snapshot(60.0)
    release = asyncio.Event()
    made: list[str] = []

    async def read_before() -> str:
        made.append("before")
        await release.wait()
        return "before the change"

    async def read_after() -> str:
        made.append("after")
        return "after the change"

    early = asyncio.ensure_future(shared.get("all", read_before))
    await asyncio.sleep(0)
    shared.drop()  # a change while the read runs: it may have missed it
    late = asyncio.ensure_future(shared.get("all", read_after))  # does not join that read
    await asyncio.sleep(0)
    release.set()
    assert (await early)[0] == "before the change"
    assert (await late)[0] == "after the change"
    assert made == ["before", "after"]
    assert (await shared.get("all", read_before))[0] == "after the change"  # kept
    assert shared.reads == 2 and not shared.reading


def test_a_negative_stale_or_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="stale is 0 seconds or more"):
        Snapshot(1.0, stale=-1.0)
    with pytest.raises(ValueError, match="wait is 0 seconds or more"):
        Snapshot(1.0, wait=float("nan"))


async def test_a_slow_read_serves_the_older_copy_and_replaces_it_when_done() -> None:
    clock = Clock()
    shared: Snapshot[str] = Snapshot(1.0, clock=clock, stale=30.0, wait=0.01)
    release = asyncio.Event()
    answers = ["first"]

    async def read() -> str:
        if answers[0] == "second":
            await release.wait()  # the store is busy: slower than `wait`
        return answers[0]

    assert await shared.get(None, read) == ("first", 0.0)
    clock.now += 20.0  # stale, within 1 + 30 s
    answers[0] = "second"
    assert await shared.get(None, read) == ("first", 20.0)  # not held by the read
    assert await shared.get(None, read) == ("first", 20.0)  # joins it, does not start another
    assert shared.reads == 2 and shared.reading
    release.set()
    await asyncio.sleep(0.01)
    assert await shared.get(None, read) == ("second", 0.0)  # kept when it finished
    assert shared.reads == 2 and not shared.reading


async def test_a_quick_read_is_waited_for() -> None:
    clock = Clock()
    shared: Snapshot[int] = Snapshot(1.0, clock=clock, stale=30.0, wait=5.0)
    version = 1

    async def read() -> int:
        await asyncio.sleep(0.001)  # within `wait`
        return version

    assert (await shared.get(None, read))[0] == 1
    clock.now += 2.0
    version = 2
    assert (await shared.get(None, read))[0] == 2


class Versions:
    """A store whose read answers the current version, slower than a `wait` of 0."""

    def __init__(self) -> None:
        self.version = 1

    async def read(self) -> int:
        await asyncio.sleep(0.01)
        return self.version


async def test_no_older_copy_past_stale_nor_after_a_drop() -> None:
    clock = Clock()
    shared: Snapshot[int] = Snapshot(1.0, clock=clock, stale=30.0, wait=0.0)
    store = Versions()
    read = store.read
    assert (await shared.get(None, read))[0] == 1
    clock.now += 31.5  # older than 1 + 30 s: not handed out, the request waits
    store.version = 2
    assert (await shared.get(None, read))[0] == 2
    clock.now += 2.0  # usable, but dropped: a change made through the server shows at once
    store.version = 3
    shared.drop()
    assert (await shared.get(None, read))[0] == 3
    assert shared.reads == 3


async def test_after_a_change_a_copy_from_before_it_lasts_its_max_age_not_its_stale_time(
        ) -> None:
    clock = Clock()
    shared: Snapshot[int] = Snapshot(1.0, clock=clock, stale=30.0, wait=0.0)
    store = Versions()
    read = store.read
    assert (await shared.get(None, read))[0] == 1
    clock.now += 0.5
    shared.changed()  # the overview's copy stays for its max age (a second)...
    store.version = 2
    assert await shared.get(None, read) == (1, 0.5)
    clock.now += 1.0  # ...but is not served stale: the request waits for the new read
    assert (await shared.get(None, read))[0] == 2
    clock.now += 2.0  # a copy read after the change is served stale as before
    store.version = 3
    assert (await shared.get(None, read))[0] == 2
    assert shared.reads == 3


async def test_a_failed_background_read_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    shared: Snapshot[int] = Snapshot(1.0, clock=clock, stale=30.0, wait=0.0)
    failing = False

    async def read() -> int:
        await asyncio.sleep(0.01)
        if failing:
            raise RuntimeError("the store is down")
        return 1

    assert (await shared.get(None, read))[0] == 1
    clock.now += 2.0
    failing = True
    assert (await shared.get(None, read))[0] == 1  # the older copy, the read goes on
    await asyncio.sleep(0.05)
    assert "a dashboard read failed" in caplog.text and "the store is down" in caplog.text


async def test_settle_waits_for_the_reads_no_request_waits_for_any_more() -> None:
    clock = Clock()
    shared: Snapshot[int] = Snapshot(1.0, clock=clock, stale=30.0, wait=0.0)
    store = Versions()
    assert (await shared.get(None, store.read))[0] == 1
    clock.now += 2.0
    assert (await shared.get(None, store.read))[0] == 1  # the older copy; the read goes on
    assert shared.reading
    await Snapshot.settle(shared, timeout=5.0)
    assert not shared.reading  # it ended (and was kept)
    clock.now += 0.5
    assert await shared.get(None, store.read) == (1, 0.5)
    await Snapshot.settle(shared, timeout=5.0)  # nothing under way: returns at once
