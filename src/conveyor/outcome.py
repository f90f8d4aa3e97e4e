"""What a task may raise to steer its own job, besides returning or failing.

Outcomes are values: the executor maps each to one store call in a single `match`.
"""

from __future__ import annotations


class Snooze(Exception):
    """Run this job again after `seconds`, without counting a failed attempt."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"snoozed for {seconds:g}s")
        self.seconds = float(seconds)


class Discard(Exception):
    """Send this job straight to the dead-letter state, with `reason`."""

    def __init__(self, reason: str = "discarded") -> None:
        super().__init__(reason)
        self.reason = reason


class Cancel(Exception):
    """End this job as cancelled (not an error)."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason
