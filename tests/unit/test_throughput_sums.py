"""The queues page's per-minute sums (web/throughput.py), made in one pass over the hour's
(task, queue) summaries: the same figures as the sums made once per queue before, on random
summaries of uneven lengths, and every queue's sparkline as that queue's own sums draw it."""

from __future__ import annotations

import random

from conveyor.history.records import TaskSummary, TimeRange
from conveyor.web import charts, throughput


def summed_per_queue(found: list[TaskSummary], queue: str | None, length: int | None
                     ) -> tuple[list[float], list[float]]:
    """The sums as made before (one filter of every summary per queue, one sum per minute)."""
    chosen = [t for t in found if queue is None or t.queue == queue]
    if length is None:
        length = max((len(t.series) for t in chosen), default=0)
    ended = [float(sum(t.series[i] for t in chosen if i < len(t.series)))
             for i in range(length)]
    failed = [float(sum(t.failures[i] for t in chosen if i < len(t.failures)))
              for i in range(length)]
    return ended, failed


def summaries(rng: random.Random) -> list[TaskSummary]:
    found = []
    for _ in range(rng.randrange(0, 40)):
        minutes = rng.randrange(0, 70)
        series = tuple(rng.choice((0, 0, 1, rng.randrange(0, 10 ** 6))) for _ in range(minutes))
        failures = tuple(rng.randrange(0, n + 1) for n in series[:rng.randrange(0, minutes + 1)])
        found.append(TaskSummary(f"t{rng.randrange(5)}", f"q{rng.randrange(6)}",
                                 series=series, failures=failures))
    return found


def test_per_minute_sums_as_before_on_random_summaries() -> None:
    rng = random.Random(16)
    for _ in range(500):
        found = summaries(rng)
        for queue in (None, "q0", "q3", "absent"):
            for length in (None, 0, 1, 2, 30, 61, 75):
                assert throughput.per_minute(found, queue, length) == summed_per_queue(
                    found, queue, length), (queue, length)


def test_per_queue_sums_each_queue_as_its_own_filter_did() -> None:
    rng = random.Random(17)
    for _ in range(300):
        found = summaries(rng)
        length = rng.randrange(1, 75)
        sums = throughput.per_queue(found, length)
        assert set(sums) == {t.queue for t in found}
        for name, ended in sums.items():
            assert ended == summed_per_queue(found, name, length)[0]


def test_every_queues_sparkline_is_drawn_from_its_own_minutes() -> None:
    rng = random.Random(18)
    first = 1_000
    where = TimeRange(first * 60.0, (first + 59) * 60.0 + 30)
    for _ in range(50):
        found = summaries(rng)
        names = [f"q{n}" for n in range(8)]
        drawn = throughput.queue_sparklines(found, names, where, first)
        assert list(drawn) == names
        for name in names:
            ended, _ = summed_per_queue(found, name, 60)
            assert drawn[name] == charts.sparkline(f"attempts per minute in {name}", ended,
                                                   cut=True)
