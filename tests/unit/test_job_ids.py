"""Job ids: UUIDv7 strings, sortable by creation time, unique across threads."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from typing import Any

import pytest

from conveyor import job as job_module
from conveyor.job import _IdGenerator, new_id


def test_ids_are_uuid_version_7() -> None:
    value = uuid.UUID(new_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert str(value) == value.__str__()


def test_ids_are_strictly_increasing() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_carry_their_creation_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    generate = _IdGenerator()
    monkeypatch.setattr(job_module.time, "time_ns", lambda: 1_700_000_000_123 * 1_000_000)
    value = uuid.UUID(generate())
    assert value.int >> 80 == 1_700_000_000_123


def test_ids_stay_increasing_when_the_counter_overflows(monkeypatch: pytest.MonkeyPatch) -> None:
    generate = _IdGenerator()
    monkeypatch.setattr(job_module.time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    ids = [generate() for _ in range(10_000)]  # far more than 4096 in one millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_made_many_at_once_continue_the_same_sequence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    generate = _IdGenerator()
    monkeypatch.setattr(job_module.time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    ids = [generate(), *generate.many(9_000), generate(), *generate.many(3)]
    assert ids == sorted(ids)  # across the counter overflowing into borrowed milliseconds
    assert len(set(ids)) == len(ids) == 9_005
    parsed = [uuid.UUID(value) for value in ids]
    assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in parsed)
    assert [str(v) for v in parsed] == ids  # the canonical lower-case form
    assert len({v.int >> 80 for v in parsed}) == 3  # 4,096 per millisecond, then borrowed


def test_ids_stay_increasing_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    generate = _IdGenerator()
    times = iter([5_000, 5_000, 4_000, 3_000, 5_000, 6_000])
    monkeypatch.setattr(job_module.time, "time_ns", lambda: next(times) * 1_000_000)
    ids = [generate() for _ in range(6)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 6


def test_ids_are_unique_across_threads() -> None:
    found: list[list[str]] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait(timeout=10)
        found.append([new_id() for _ in range(5_000)])

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    every = [i for chunk in found for i in chunk]
    assert len(every) == 40_000
    assert len(set(every)) == 40_000
    assert all(chunk == sorted(chunk) for chunk in found)


def _ids_in_child(queue: Any) -> None:
    queue.put([new_id() for _ in range(2_000)])


def test_ids_are_unique_across_forked_processes() -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    new_id()  # the parent's generator has state that every child inherits
    children = [context.Process(target=_ids_in_child, args=(queue,)) for _ in range(4)]
    for child in children:
        child.start()
    found = [queue.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
    every = [i for chunk in found for i in chunk] + [new_id() for _ in range(2_000)]
    assert len(set(every)) == len(every) == 10_000
