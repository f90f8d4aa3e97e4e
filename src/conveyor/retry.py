"""Retry policies: a frozen description plus a pure function that picks the next delay.

    Retry(attempts=5, backoff="exponential", base=2.0, max_delay=600)

`attempts` counts every run, the first included. Delays for the n-th failure (n = 1, 2, ...):
exponential: base * 2**(n-1), jittered by +/- `jitter`; fixed: base; linear: base * n.
All are capped at `max_delay`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from . import _rng
from .outcome import Snooze

Backoff = Literal["exponential", "fixed", "linear"]


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 3
    backoff: Backoff = "exponential"
    base: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry(attempts=...) must be at least 1 (the first run counts)")
        if self.backoff not in ("exponential", "fixed", "linear"):
            raise ValueError(
                f"Retry(backoff={self.backoff!r}): use 'exponential', 'fixed' or 'linear'"
            )
        if self.base < 0 or self.max_delay < 0 or not 0 <= self.jitter < 1:
            raise ValueError("Retry: base and max_delay must be >= 0 and 0 <= jitter < 1")

    @staticmethod
    def later(seconds: float) -> Snooze:
        """Raise this from a task to run it again in `seconds` without counting a failure.

        >>> raise Retry.later(30)   # doctest: +SKIP
        """
        return Snooze(seconds)


def next_delay(policy: Retry, failures: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `failures`-th failed attempt (1-based)."""
    if policy.backoff == "fixed":
        delay = policy.base
    elif policy.backoff == "linear":
        delay = policy.base * failures
    else:
        delay = policy.base * (2.0 ** min(failures - 1, 60))
        if policy.jitter:
            delay *= (rng or _rng.RNG).uniform(1 - policy.jitter, 1 + policy.jitter)
    return min(delay, policy.max_delay)


def retry_at(policy: Retry, attempt: int, max_attempts: int, now: float,
             rng: random.Random | None = None) -> float | None:
    """When to run again after attempt number `attempt` failed; None means dead."""
    if attempt >= max_attempts:
        return None
    return now + next_delay(policy, attempt, rng)
