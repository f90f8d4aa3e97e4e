"""Limits as the app offers them: declared in code, changed at run time, read with their use.

    app.queue("ai", concurrency=5, rate="10/min")          # in code
    @app.task(queue="ai", concurrency=2, rate="100/hour")   # a task's own limit
    app.limits.set("queue", "ai", concurrency=3, rate="20/min")   # at run time (CLI, API)

Code declarations are written when a worker starts and never override an operator's change
(a change made with `set`, the CLI, the API or the dashboard); `reset` removes the operator's
change, and the code's limit (if any) comes back at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from ..job import JobState
from ..names import QUEUE_NAME_RULE, is_queue_name
from .model import Limit, LimitUsage, parse_rate

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..job import Job


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()  # "leave this cap as it is"


def rate_caps(rate: str | None) -> tuple[int | None, float | None]:
    """A rate as given ("10/min", or None for no rate) -> (count, period)."""
    if rate is None:
        return None, None
    return parse_rate(rate)


def code_limit(kind: str, name: str, concurrency: int | None,
               rate: str | None) -> Limit | None:
    """The limit a declaration in code makes (None when it sets no cap)."""
    count, period = rate_caps(rate)
    limit = Limit(kind, name, concurrency, count, period, source="code")
    return None if limit.empty else limit


class LimitControl:
    """The app's limits (`app.limits`): what code declares, and what the store holds."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self.queues: dict[str, Limit] = {}  # declared with app.queue(...)

    def declare_queue(self, name: str, concurrency: int | None, rate: str | None) -> None:
        if not is_queue_name(name):
            raise ValueError(f"queue {name!r} must be {QUEUE_NAME_RULE}")
        limit = code_limit("queue", name, concurrency, rate)
        if limit is None:
            self.queues.pop(name, None)
        else:
            self.queues[name] = limit

    def declared(self) -> list[Limit]:
        """Every limit the code declares: app.queue(...) and @app.task(concurrency=, rate=)."""
        found = list(self.queues.values())
        for task in self.app.registry:
            limit = code_limit("task", task.name, task.concurrency, task.rate)
            if limit is not None:
                found.append(limit)
            if task.key is not None and not task.key.limit(task.name).empty:
                found.append(task.key.limit(task.name))
        return found

    def declare(self) -> None:
        """Write the code's limits to the store (a worker does it when it starts)."""
        declared = self.declared()
        if declared:
            self.app.call(lambda s: s.declare_limits(declared, self.app.clock.store_now()))

    def usage(self) -> list[LimitUsage]:
        """Every stored limit with its current use (running jobs, starts in its window)."""
        return self.app.call(lambda s: s.limits(self.app.clock.store_now()))

    def find(self, kind: str, name: str) -> LimitUsage | None:
        return next((u for u in self.usage()
                     if (u.limit.kind, u.limit.name) == (kind, name)), None)

    def set(self, kind: str, name: str, *, concurrency: int | _Unset | None = UNSET,
            rate: str | _Unset | None = UNSET, strategy: str | _Unset = UNSET) -> Limit:
        """Change a limit at run time: the caps given replace those stored (None removes
        one; a limit left with no caps is removed); every worker applies it within a second.

        >>> app.limits.set("queue", "ai", concurrency=3, rate="20/min")   # doctest: +SKIP
        >>> app.limits.set("key", "sync", concurrency=1)   # each key of task sync  # doctest: +SKIP
        """
        if kind == "queue" and not is_queue_name(name):
            raise ValueError(f"queue {name!r} must be {QUEUE_NAME_RULE}")
        found = self.find(kind, name)
        current = found.limit if found is not None else Limit(kind, name)
        changed = replace(current, source="operator")
        if not isinstance(concurrency, _Unset):
            changed = replace(changed, concurrency=concurrency)
        if not isinstance(rate, _Unset):
            count, period = rate_caps(rate)
            changed = replace(changed, rate=count, period=period)
        if not isinstance(strategy, _Unset):
            changed = replace(changed, strategy=strategy)
        self.app.call(lambda s: s.set_limit(changed, self.app.clock.store_now()))
        return changed

    def reset(self, kind: str, name: str) -> Limit | None:
        """Remove an operator's change: the code's declaration (returned) applies again."""
        self.app.call(lambda s: s.set_limit(Limit(kind, name), self.app.clock.store_now()))
        declared = next((limit for limit in self.declared()
                         if (limit.kind, limit.name) == (kind, name)), None)
        if declared is not None:
            self.app.call(lambda s: s.declare_limits([declared], self.app.clock.store_now()))
        return declared

    def holding(self, job: Job) -> list[str]:
        """Why a queued job is held back now, limit by limit (empty when nothing holds it)."""
        if job.state != JobState.QUEUED:
            return []
        now = self.app.clock.now()
        wanted = {("queue", job.queue), ("task", job.task)}
        usages = self.usage()
        reasons = [usage.holding(now) for usage in usages
                   if (usage.limit.kind, usage.limit.name) in wanted]
        keyed = next((u.limit for u in usages if (u.limit.kind, u.limit.name) == (
            "key", job.task)), None)
        if keyed is not None:  # its own key's use, read for this job
            use = self.app.call(lambda s: s.key_use(job.id, self.app.clock.store_now()))
            reasons.append(use.holding(keyed, now) if use is not None else None)
        return [reason for reason in reasons if reason]

