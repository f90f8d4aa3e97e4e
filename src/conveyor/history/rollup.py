"""Minute rollups: per (minute, task, queue, tenant), counts by outcome and a duration
histogram in fixed log buckets, from which p50/p95/p99 are read back.

Bucket i holds durations up to BOUNDS[i] seconds (1 ms doubling: 1 ms, 2 ms, ... ~9.3 h);
the last bucket holds everything longer. A percentile is interpolated inside its bucket on
a log scale, so it is within a factor of two of the truth, and usually much closer.

    rows = fold(batch)                  # one row per distinct key of a settle batch
    p95 = quantile(row.buckets, 0.95)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .records import Outcome

BUCKETS = 26
BOUNDS: tuple[float, ...] = tuple(0.001 * 2 ** i for i in range(BUCKETS))
OUTCOMES: tuple[str, ...] = tuple(str(o) for o in Outcome)
BUCKET_COLUMNS: tuple[str, ...] = tuple(f"b{i}" for i in range(BUCKETS))


def bucket(duration: float) -> int:
    if duration <= BOUNDS[0]:
        return 0
    return min(BUCKETS - 1, math.ceil(math.log2(duration / BOUNDS[0])))


WIDTHS = (60, 3600, 86400)      # every attempt counts in its minute, hour and (UTC) day


@dataclass(slots=True)
class RollupRow:
    width: int                   # 60, 3600 or 86400 seconds
    minute: int                  # epoch seconds // 60 of its start
    task: str
    queue: str
    tenant: str                  # '' for no tenant: a primary key column
    counts: dict[str, int] = field(default_factory=dict)
    duration_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, outcome: str, duration: float, slot: int) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.duration_sum += duration
        self.buckets[slot] += 1

    def params(self) -> tuple[object, ...]:
        """The upsert's parameters, in the column order of the rollups table."""
        return (self.width, self.minute, self.task, self.queue, self.tenant,
                *(self.counts.get(o, 0) for o in OUTCOMES), self.duration_sum, *self.buckets)


def fold(items: Iterable[tuple[float, str, str, str | None, str, float]]
         ) -> list[RollupRow]:
    """(ended_at, task, queue, tenant, outcome, duration) -> one row per distinct key, for
    each width. Items are first counted per (minute, task, queue, tenant, outcome, bucket),
    one dict step each (a settle batch has few such keys); the widths are built from those."""
    counted: dict[tuple[int, str, str, str, str, int], list[float]] = {}
    for ended_at, task, queue, tenant, outcome, duration in items:
        key = (int(ended_at // 60), task, queue, tenant or "", outcome, bucket(duration))
        acc = counted.get(key)
        if acc is None:
            counted[key] = [1, duration]
        else:
            acc[0] += 1
            acc[1] += duration
    rows: dict[tuple[int, int, str, str, str], RollupRow] = {}
    for (minute, task, queue, tenant, outcome, slot), (count, total) in counted.items():
        for width in WIDTHS:
            at = (width, minute * 60 // width * width // 60, task, queue, tenant)
            row = rows.get(at)
            if row is None:
                row = rows[at] = RollupRow(*at)
            row.counts[outcome] = row.counts.get(outcome, 0) + int(count)
            row.duration_sum += total
            row.buckets[slot] += int(count)
    return list(rows.values())


def quantile(buckets: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram, interpolated on a log scale in its bucket."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = BOUNDS[i - 1] if i else BOUNDS[0] / 2
            share = (rank - seen) / n
            return float(low * (BOUNDS[i] / low) ** share)
        seen += n
    return BOUNDS[-1]
