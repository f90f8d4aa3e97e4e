"""Counting starts in sliding windows: what a rate limit's tests assert on."""

from __future__ import annotations


def busiest(times: list[float], window: float = 1.0) -> int:
    """The most of `times` (sorted) in any window (t - window, t]."""
    low, most = 0, 0
    for high, at in enumerate(times):
        while times[low] <= at - window:
            low += 1
        most = max(most, high - low + 1)
    return most
