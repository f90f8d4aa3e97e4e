"""The event-fed series of /metrics (counters and the duration histogram per task and queue),
kept as plain counts and written out as Prometheus text by this module.

prometheus_client's generate_latest took 47-77 ms for them on a loaded machine while two
workers drained (bench/counter_reads.py, 2026-12-05: 200 task/queue pairs, 6,400 lines): it
builds a Sample object per line and formats every label set on every scrape. Here each
series' line start (name and labels, escaped) is formatted once, when the series first
appears, and a scrape joins those starts with the current values.

The names, labels and buckets are those prometheus_client wrote: `conveyor_jobs_*_total`
and `conveyor_job_duration_seconds_{bucket,sum,count}`, labels in name order (`le`, `queue`,
`task`). The `*_created` series it added (one per counter and histogram series: a third of
the lines, a timestamp Prometheus does not need for rate()) are not written.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate

Pair = tuple[str, str]  # (task, queue)


def escape(value: str) -> str:
    """A label value as the text format wants it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    """A sample value: 1.0, 0.25, +Inf (as prometheus_client writes them)."""
    value = float(value)
    if value == float("inf"):
        return "+Inf"
    return repr(value)


def header(name: str, kind: str, text: str) -> str:
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


class CounterFamily:
    """One counter by (task, queue): `conveyor_jobs_completed_total{queue=..,task=..} 3.0`."""

    def __init__(self, name: str, text: str) -> None:
        self.name = f"{name}_total"
        self.head = header(self.name, "counter", text)
        self.values: dict[Pair, list[float]] = {}   # a list: incremented in place
        self.starts: dict[Pair, str] = {}
        self.lock = threading.Lock()                # new series: from the loop, read by scrapes

    def inc(self, pair: Pair, amount: float = 1.0) -> None:
        cell = self.values.get(pair)
        if cell is None:
            with self.lock:
                self.starts[pair] = f'{self.name}{{queue="{escape(pair[1])}",' \
                                    f'task="{escape(pair[0])}"}} '
                cell = self.values[pair] = [0.0]
        cell[0] += amount

    def render(self) -> str:
        with self.lock:
            cells = list(self.values.items())
        return self.head + "".join(f"{self.starts[pair]}{number(cell[0])}\n"
                                   for pair, cell in cells)


class HistogramFamily:
    """A histogram by (task, queue): counts per bucket kept apart, summed up at a scrape."""

    def __init__(self, name: str, text: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.bounds = list(buckets)
        self.head = header(name, "histogram", text)
        self.cells: dict[Pair, list[float]] = {}    # one count per bucket, +Inf, then the sum
        self.starts: dict[Pair, list[str]] = {}
        self.lock = threading.Lock()

    def observe(self, pair: Pair, value: float) -> None:
        cell = self.cells.get(pair)
        if cell is None:
            with self.lock:
                self.starts[pair] = self._starts(pair)
                cell = self.cells[pair] = [0.0] * (len(self.bounds) + 2)
        cell[bisect_left(self.bounds, value)] += 1  # le is "less than or equal"
        cell[-1] += value

    def _starts(self, pair: Pair) -> list[str]:
        labels = f'queue="{escape(pair[1])}",task="{escape(pair[0])}"'
        bounds = [*(number(b) for b in self.bounds), "+Inf"]
        return [*(f'{self.name}_bucket{{le="{b}",{labels}}} ' for b in bounds),
                f"{self.name}_count{{{labels}}} ", f"{self.name}_sum{{{labels}}} "]

    def render(self) -> str:
        with self.lock:
            found = [(self.starts[pair], list(cell)) for pair, cell in self.cells.items()]
        out = [self.head]
        for starts, cell in found:
            cumulative = list(accumulate(cell[:-1]))
            out.extend(f"{start}{number(value)}\n"
                       for start, value in zip(starts, [*cumulative, cumulative[-1], cell[-1]],
                                               strict=True))
        return "".join(out)
