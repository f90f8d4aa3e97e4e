"""Outcomes: what a worker has to write back. Sync tasks report progress from their own
threads while the loop takes what is waiting: each job's newest report is the one taken,
and none older comes after it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from conveyor.job import Lease
from conveyor.store.base import Progress, Release
from conveyor.worker.outcomes import Outcomes


@pytest.fixture
def busy_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    yield
    sys.setswitchinterval(interval)


def test_the_last_progress_of_every_job_is_taken(busy_switching: None) -> None:
    outcomes = Outcomes()
    jobs, steps = 4, 20_000
    done = threading.Event()

    def report(job: int) -> None:
        lease = Lease(f"job-{job}", job)
        for percent in range(1, steps + 1):
            outcomes.progressed(lease, float(percent), None)

    threads = [threading.Thread(target=report, args=(job,)) for job in range(jobs)]
    for thread in threads:
        thread.start()
    last: dict[str, float] = {}
    while not done.is_set():
        if not any(thread.is_alive() for thread in threads):
            done.set()
        for item in outcomes.take():
            assert isinstance(item, Progress)
            assert item.percent > last.get(item.lease.job_id, 0.0)  # never older
            last[item.lease.job_id] = item.percent
    assert last == {f"job-{job}": float(steps) for job in range(jobs)}


def test_progress_goes_before_outcomes_and_untaken_items_go_back_in_front() -> None:
    outcomes = Outcomes()
    first, second = Release(Lease("a", 1)), Release(Lease("b", 2))
    outcomes.add(second)
    outcomes.progressed(Lease("c", 3), 50.0, "half")
    taken = outcomes.take()
    assert [type(i).__name__ for i in taken] == ["Progress", "Release"]
    outcomes.add(first)
    outcomes.put_back([second])
    assert outcomes.take() == [second, first] and len(outcomes) == 0
    assert outcomes.job_ids() == set()
