"""What a limit is and what it counts. Pure values and functions; the stores apply them.

A limit belongs to a queue (every job in it), to a task (its jobs in any queue), or to each
key of a task ("key": per customer, per account; limits/keys.py) and has up to two caps,
all cluster-wide:

- concurrency N: at most N of its jobs running at once. "Running" is read from the jobs
  themselves (state running with a live lease), never from a counter, so a worker killed
  with a slot frees it when its lease runs out, and nothing is counted twice.
- rate N per P seconds: at most N starts in any sliding window of P seconds. A start is a
  claim: a first run, a retry, a run after a snooze each count once, whatever became of it.
  "10/10s" means: at every instant t, at most 10 claims happened in (t - 10 s, t]. Started
  at 12:00:00.0, 12:00:04.0 (x9): the next start may happen at 12:00:10.0 (the first
  leaves the window), the one after at 12:00:14.0. There is no burst beyond N.

A job held back waits `queued`, using no attempt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

KINDS = ("queue", "task", "key")  # "key": the name is the task's, the caps each key's
SOURCES = ("code", "operator")
# What happens to a new job whose key is at its limit (kind "key" only; limits/keys.py).
STRATEGIES = ("queue", "drop", "debounce")
KEY_RATE_MAX = 1000  # a key's rate keeps its starts in its own row: at most this many
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Limit:
    """A queue's or a task's caps. `source` says who set it: "code" (app.queue, @app.task;
    written when a worker starts) or "operator" (CLI, API, dashboard; code never overrides it).

    >>> Limit("queue", "ai", concurrency=5, rate=10, period=60.0).describe()
    'concurrency 5, rate 10/min'
    """

    kind: str
    name: str
    concurrency: int | None = None
    rate: int | None = None
    period: float | None = None
    source: str = "operator"
    strategy: str = "queue"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a limit's kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.name:
            raise ValueError("a limit needs the name of its queue or task")
        if self.source not in SOURCES:
            raise ValueError(f"a limit's source is one of {', '.join(SOURCES)}")
        if self.concurrency is not None and not 0 <= self.concurrency <= 1_000_000:
            raise ValueError("concurrency is a whole number from 0 to 1000000")
        if (self.rate is None) != (self.period is None):
            raise ValueError("a rate needs both a count and a period (e.g. 10/min)")
        if self.rate is not None and not 0 <= self.rate <= 1_000_000:
            raise ValueError("a rate's count is a whole number from 0 to 1000000")
        if self.period is not None and not 0.001 <= self.period <= 86400 * 7:
            raise ValueError("a rate's period is from 1 ms to 7 days")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"a key's strategy is one of {', '.join(STRATEGIES)}, "
                             f"not {self.strategy!r}")
        if self.strategy != "queue" and self.kind != "key":
            raise ValueError("a strategy is for key limits only")
        if self.kind == "key" and self.rate is not None and self.rate > KEY_RATE_MAX:
            raise ValueError(f"a key's rate counts at most {KEY_RATE_MAX} starts per period")

    @property
    def empty(self) -> bool:
        """No cap at all: setting it removes the limit."""
        return self.concurrency is None and self.rate is None

    def describe(self) -> str:
        parts = []
        if self.concurrency is not None:
            parts.append(f"concurrency {self.concurrency}")
        if self.rate is not None and self.period is not None:
            parts.append(f"rate {format_rate(self.rate, self.period)}")
        if self.kind == "key" and parts:
            parts = [f"per key: {', '.join(parts)}"]
            if self.strategy != "queue":
                parts.append(f"strategy {self.strategy}")
        return ", ".join(parts) or "no limit"


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """A limit and its current use: running jobs with live leases, starts in the window."""

    limit: Limit
    running: int
    started: int
    blocked_until: float | None = None  # a RateLimited(..., slow=...) pause: no starts before
    keys_at_limit: int = 0  # kind "key": how many keys the last claims found at their limit
    # A queue's or task's cap shared by grants (limits/grants.py): `running` is the jobs
    # started (claimed less those its workers' last heartbeats said they hold prefetched:
    # of a queue only, a worker reports those by queue), `claimed` every job with a live
    # lease; `granted` the live grants' slots in total, `grants` (worker id, slots) each.
    claimed: int | None = None
    granted: int | None = None
    grants: tuple[tuple[str, int], ...] = ()

    def allowance(self, now: float) -> int:
        """How many more may start now (0: held back)."""
        if self.blocked_until is not None and self.blocked_until > now:
            return 0
        return allowance(self.limit, self.running, self.started)

    def holding(self, now: float) -> str | None:
        """Which cap holds jobs back now, in words; None when none does."""
        limit = self.limit
        if limit.kind == "key":
            return None if not self.keys_at_limit else \
                f"{self.keys_at_limit} key(s) of task {limit.name!r} at their limit"
        if self.blocked_until is not None and self.blocked_until > now:
            return f"{limit.kind} {limit.name!r} slowed down for " \
                   f"{self.blocked_until - now:.0f} s more (RateLimited)"
        if limit.concurrency is not None and self.running >= limit.concurrency:
            return f"{limit.kind} {limit.name!r} concurrency {limit.concurrency} " \
                   f"({self.running} running)"
        if limit.rate is not None and limit.period is not None and self.started >= limit.rate:
            return f"{limit.kind} {limit.name!r} rate {format_rate(limit.rate, limit.period)}" \
                   f" ({self.started} started in the window)"
        return None


def usage_json(usage: LimitUsage, now: float) -> dict[str, object]:
    """A limit and its use as the API, the CLI (--json) and the dashboard show it."""
    limit = usage.limit
    return {"kind": limit.kind, "name": limit.name, "concurrency": limit.concurrency,
            "rate": None if limit.rate is None or limit.period is None
            else format_rate(limit.rate, limit.period),
            "rate_count": limit.rate, "rate_period": limit.period, "source": limit.source,
            "strategy": limit.strategy if limit.kind == "key" else None,
            "keys_at_limit": usage.keys_at_limit if limit.kind == "key" else None,
            "running": usage.running, "started_in_window": usage.started,
            "claimed": usage.running if usage.claimed is None else usage.claimed,
            "granted": usage.granted,
            "grants": [{"worker": worker, "slots": slots} for worker, slots in usage.grants],
            "slowed_until": usage.blocked_until if usage.blocked_until is not None
            and usage.blocked_until > now else None,
            "holding": usage.holding(now)}


def allowance(limit: Limit, running: int, started: int) -> int:
    room = 1 << 30
    if limit.concurrency is not None:
        room = min(room, limit.concurrency - running)
    if limit.rate is not None:
        room = min(room, limit.rate - started)
    return max(room, 0)


def declared_once(limits: Iterable[Limit]) -> list[Limit]:
    """Limits to declare, as a store writes them: none without caps, each (kind, name) once
    (the last wins), in (kind, name) order, the order a limited claim locks them in.

    >>> [(d.kind, d.name) for d in declared_once([Limit("task", "b", 1), Limit("key", "b", 2),
    ...                                           Limit("task", "b", 3), Limit("queue", "q")])]
    [('key', 'b'), ('task', 'b')]
    """
    found = {(limit.kind, limit.name): limit for limit in limits if not limit.empty}
    return [found[key] for key in sorted(found)]


def parse_rate(text: str) -> tuple[int, float]:
    """"10/min" -> (10, 60.0); "20/s", "100/10s", "5/2.5min", "1000/hour".

    >>> parse_rate("100/10s")
    (100, 10.0)
    """
    match = _RATE.match(text.lower())
    name = match.group(3) if match else ""
    if name not in _UNITS and name.endswith("s") and name != "ms":
        name = name[:-1]  # plurals: "10/minutes"
    period = float(match.group(2) or 1) * _UNITS[name] if match and name in _UNITS else 0.0
    if match is None or period <= 0:
        raise ValueError(f"a rate is COUNT/PERIOD, e.g. 10/min, 20/s, 100/10s; not {text!r}")
    return int(match.group(1)), period


def format_rate(rate: int, period: float) -> str:
    for name, seconds in (("day", 86400.0), ("hour", 3600.0), ("min", 60.0), ("s", 1.0)):
        if period == seconds:
            return f"{rate}/{name}"
    return f"{rate}/{period:g}s"
