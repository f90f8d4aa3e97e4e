"""History's peak RSS is read once per settle trip (Tracker.stamp), not per attempt: every
attempt the trip writes gets a figure no lower than the process's peak when it ended, and
an isolated task's own (child) figure is kept."""

from __future__ import annotations

from conveyor.codec import Codec
from conveyor.job import ClaimedJob
from conveyor.store.base import Complete
from conveyor.worker.outcomes import Outcomes
from conveyor.worker.tracking import Meter, Tracker, peak_rss


def _job(n: int) -> ClaimedJob:
    return ClaimedJob(id=f"j{n}", task="work", queue="default", payload=b"{}", attempt=1,
                      max_attempts=3, token=1)


def test_a_settle_trip_stamps_every_attempt_it_takes_and_keeps_a_childs_figure() -> None:
    tracker = Tracker(Codec(), "w", "host")
    outcomes = Outcomes(on_take=tracker.stamp)
    before = peak_rss()
    assert before is not None
    child = Meter()
    child.cpu, child.rss = 0.5, 123  # what an isolated task's child measured
    for n in range(3):
        job = _job(n)
        outcomes.add(tracker.attach(job, Complete(job.lease, b"{}"), 0.0, 0.001,
                                    child if n == 1 else Meter()))
    items = outcomes.take()
    rss = [item.attempt.rss for item in items if isinstance(item, Complete)
           and item.attempt is not None]
    assert rss[1] == 123
    assert rss[0] == rss[2] and rss[0] is not None and rss[0] >= before
    # the next trip's attempts get the next reading; the taken ones are not touched again
    job = _job(9)
    outcomes.add(tracker.attach(job, Complete(job.lease, b"{}"), 0.0, 0.001, Meter()))
    later = outcomes.take()
    assert later[0].attempt is not None and later[0].attempt.rss is not None  # type: ignore[union-attr]
    assert later[0].attempt.rss >= rss[0]  # type: ignore[union-attr]
