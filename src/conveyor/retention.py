"""Retention by count (BullMQ's removeOnComplete / removeOnFail): keep the newest N completed
and M dead jobs per queue, and per task, besides the age limits. Maintenance deletes the
rest in bounded batches.

    CONVEYOR_KEEP_COMPLETED="1000,emails=50,task:reports.daily=10"
    CONVEYOR_KEEP_DEAD="5000"

A bare number is the limit of every queue; `queue=N` overrides it for one queue;
`task:name=N` also keeps at most N of that task's jobs (across its queues).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .job import QueueInfo
    from .store.base import Store

BATCH = 1000  # rows deleted per statement: short transactions


@dataclass(frozen=True, slots=True)
class KeepCounts:
    default: int | None = None
    queues: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.default is None and not self.queues and not self.tasks

    def for_queue(self, queue: str) -> int | None:
        return self.queues.get(queue, self.default)

    @classmethod
    def parse(cls, spec: str, setting: str) -> KeepCounts:
        default: int | None = None
        queues: dict[str, int] = {}
        tasks: dict[str, int] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, _, count = part.rpartition("=")
            number = _count(count, setting, part)
            if not name:
                default = number
            elif name.startswith("task:") and name[5:]:
                tasks[name[5:]] = number
            else:
                queues[name] = number
        return cls(default, queues, tasks)


def _count(text: str, setting: str, part: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{setting}: {part!r} is not a count; use e.g. '1000,emails=50,"
                          f"task:reports.daily=10' (non-negative whole numbers)")
    return number


Run = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]


async def enforce(store: Store, run: Run, queues: Sequence[QueueInfo], completed: KeepCounts,
                  dead: KeepCounts, limit: int = BATCH) -> int:
    """Delete what the keep counts leave out, batch by batch; returns how many. A queue
    whose count of that state is within its limit is not looked at (the store has no
    index for this pass: a write on every finished job would cost more than it saves)."""
    total = 0
    for state, keep in (("completed", completed), ("dead", dead)):
        if keep.empty:
            continue
        targets: list[tuple[int, str | None, str | None]] = [
            (n, q.name, None) for q in queues
            if (n := keep.for_queue(q.name)) is not None and q.counts.get(state, 0) > n]
        targets += [(n, None, task) for task, n in keep.tasks.items()]
        for count, queue, task in targets:
            while True:
                deleted: int = await run(store.prune_kept(state, count, queue, task, limit))
                total += deleted
                if deleted < limit:
                    break
    return total
