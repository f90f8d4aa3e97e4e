"""Pure pieces of the web layer: event transitions for metrics, charts, token parsing."""

from __future__ import annotations

import zlib

import pytest

from conveyor.errors import ConfigError
from conveyor.job import JobEvent
from conveyor.web.auth import parse_tokens
from conveyor.web.charts import (
    Series,
    count,
    hue,
    line_chart,
    nice_max,
    queue_series,
    spike_free_top,
)
from conveyor.web.metrics import Transitions, is_failure, is_retry


def event(state: str, job_id: str = "j1") -> JobEvent:
    return JobEvent(job_id, state, "q", "t", None)


def test_transitions_skip_repeats_and_time_runs() -> None:
    seen = Transitions(size=10)
    moves = seen.feed([event("queued"), event("running"), event("running"),
                       event("scheduled"), event("running"), event("completed")])
    assert [(m.before, m.event.state) for m in moves] == [
        (None, "queued"), ("queued", "running"), ("running", "scheduled"),
        ("scheduled", "running"), ("running", "completed")]
    assert [is_failure(m) for m in moves] == [False, False, True, False, False]
    assert [is_retry(m) for m in moves] == [False, False, True, False, False]
    assert moves[-1].ran_for is not None and moves[-1].ran_for >= 0


def test_transitions_forget_the_oldest() -> None:
    seen = Transitions(size=2)
    seen.feed([event("queued", "a"), event("queued", "b"), event("queued", "c")])
    assert list(seen.seen) == ["b", "c"]


def test_manual_retry_of_a_dead_job_counts_as_retry() -> None:
    seen = Transitions()
    moves = seen.feed([event("dead"), event("queued")])
    assert is_retry(moves[1])


def test_charts() -> None:
    assert [nice_max(v) for v in (0, 0.7, 3, 7, 45, 101)] == [1, 1, 5, 10, 50, 200]
    svg = str(line_chart("Backlog <q>", [Series("a&b", [(0.0, 1.0), (10.0, None), (20.0, 3.0)])],
                         now=20.0, span=20.0))
    assert svg.startswith("<figure") and "<svg" in svg
    assert "Backlog &lt;q&gt;" in svg and "a&amp;b" in svg
    assert "Collecting data" in str(line_chart("Empty", [Series("a", [])]))


def test_token_parsing() -> None:
    tokens = parse_tokens(" t1=acme:tenant , t2=ops:admin ")
    assert tokens["t1"].scope == "acme" and tokens["t2"].admin and tokens["t2"].scope is None
    assert parse_tokens("") == {}
    for bad in ("t1", "t1=acme", "t1=acme:root", "=acme:admin", "t1=:admin"):
        with pytest.raises(ConfigError):
            parse_tokens(bad)


def test_a_spike_is_cut_so_the_rest_keeps_its_scale() -> None:
    calm = [(float(t), 10.0 + t % 3) for t in range(60)]
    spiky = [*calm[:30], (30.0, 900.0), *calm[31:]]
    assert spike_free_top([v for _, v in calm]) == 12.0
    assert spike_free_top([v for _, v in spiky]) == 18.0  # 1.5 x the 90th percentile
    svg = line_chart("Throughput", [Series("completed", spiky)], now=60.0, span=60.0,
                     unit=count)
    assert "peak 900 (cut)" in svg and ">20<" in svg  # the scale is 0..20, not 0..1000
    assert "(cut)" not in line_chart("Throughput", [Series("completed", calm)], now=60.0,
                                     span=60.0)


def test_a_queue_keeps_its_colour() -> None:
    assert hue("emails") == hue("emails") == zlib.crc32(b"emails") % 360
    svg = line_chart("Backlog", [queue_series("emails", [(0.0, 1.0), (1.0, 2.0)])], now=1.0,
                     span=1.0)
    assert f"hsl({hue('emails')}, 70%, 45%)" in svg


def test_a_spike_is_cut_in_a_mostly_idle_hour_of_minutes() -> None:
    """Per-minute buckets of a quiet hour: most minutes 0, a few busy, one burst. The burst
    is cut (a percentile over the zeros would have been 0 and cut nothing)."""
    minutes = [0.0] * 50 + [10.0, 12.0, 9.0, 11.0, 10.0, 12.0, 10.0, 11.0, 9.0] + [900.0]
    assert spike_free_top(minutes) == 18.0  # 1.5 x the 90th percentile of the busy minutes
    svg = line_chart("Throughput", [Series("finished", list(enumerate(map(float, minutes))))],
                     now=60.0, span=60.0, unit=count)  # type: ignore[arg-type]
    assert "peak 900 (cut)" in svg and ">20<" in svg
    assert spike_free_top([0.0, 0.0]) == 0.0 and spike_free_top([0.0, 5.0]) == 5.0
    assert spike_free_top([0.0005, 0.003]) == 0.003  # two points: nothing is typical yet
