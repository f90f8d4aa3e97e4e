"""The SQLite claim's jobs come back in claim order (priority first, then run_at, then id),
their keys built from the claimed rows in one pass (exchange.Exchanging._claimed): the same
order as sorting the jobs by that key one job at a time, run_at None counting as 0."""

from __future__ import annotations

import random

from conveyor.job import ClaimedJob
from conveyor.store.sqlite.exchange import Exchanging


def _row(n: int, rng: random.Random) -> tuple[object, ...]:
    return (f"{rng.randrange(10_000):08d}-{n}", "t", "q", b"{}", 1, 3, n, "", None,
            rng.choice([-1, 0, 0, 5]), 1.0, None,
            rng.choice([None, 0.0, 2.0, 1.5, 1.5]), 9.0)


def test_claimed_jobs_are_in_claim_order() -> None:
    rng = random.Random(7)
    claimed = Exchanging()
    for size in (0, 1, 2, 15, 60):
        rows = [_row(n, rng) for n in range(size)]
        jobs = claimed._claimed(list(rows), feed=False)
        want = sorted((ClaimedJob(*r[:7], None, *r[8:]) for r in rows),  # type: ignore[arg-type]
                      key=lambda j: (-j.priority, j.run_at or 0.0, j.id))
        assert jobs == want
        assert [j.tenant for j in jobs] == [None] * size


def test_claimed_jobs_are_hashable_values() -> None:
    """ClaimedJob is not frozen (its __init__ per claimed job), but still a value: equal and
    of one hash by its fields, so usable in sets and as keys as before."""
    rng = random.Random(3)
    row = _row(1, rng)
    one, two = (ClaimedJob(*row[:7], None, *row[8:]) for _ in range(2))  # type: ignore[arg-type]
    assert one == two and hash(one) == hash(two) and len({one, two}) == 1
    assert one != ClaimedJob(*row[:6], 99, None, *row[8:])  # type: ignore[arg-type]
