"""What a task may raise to steer its own job, besides returning or failing.

Outcomes are values: the executor maps each to one store call in a single `match`.
"""

from __future__ import annotations


class Snooze(Exception):
    """Run this job again after `seconds`, without counting a failed attempt."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"snoozed for {seconds:g}s")
        self.seconds = float(seconds)


class RateLimited(Snooze):
    """The service this task calls answered "too many requests" (HTTP 429): run the job again
    after `retry_in` seconds, without counting an attempt. With `slow="queue"` (or "task"),
    no job of its queue (or task) starts on any worker for that long either. With
    `slow="key"`, no job of its key (the task's `key=KeyLimit(...)`: one customer, one
    account) starts on any worker for that long, and other keys go on; a job without a key
    slows nothing down.

    >>> raise RateLimited(retry_in=30, slow="queue")   # doctest: +SKIP
    >>> raise RateLimited(retry_in=30, slow="key")   # this customer only  # doctest: +SKIP
    """

    def __init__(self, retry_in: float, *, slow: str | None = None) -> None:
        if slow not in (None, "queue", "task", "key"):
            raise ValueError("RateLimited(slow=...) is 'queue', 'task', 'key' or None, "
                             f"not {slow!r}")
        super().__init__(retry_in)
        self.args = (f"rate limited: retry in {float(retry_in):g}s",)
        self.slow = slow


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
