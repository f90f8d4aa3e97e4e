"""Worker types: one process, several queues, each with slots of its own.

    conveyor worker --queues critical:10,emails:5,ai:2
    CONVEYOR_QUEUES=critical:10,emails:5,ai:2 conveyor worker

Each `queue:slots` entry becomes a Worker of its own in this process (its own claim loop,
slots and heartbeat, on one event loop), so a backlog in one queue never takes the slots of
another, and idle slots of one are never lent to another: priority between queues is by
reserved slots (the counts are the weights), never by claim order. Entries without a count
share one pool of `--concurrency` slots; inside a pool, jobs
of its queues start in job priority order, then oldest first, whatever their queue (no
queue outranks another). Only the first worker runs maintenance.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..names import QUEUE_NAME_RULE, is_queue_name

if TYPE_CHECKING:
    from ..app import Conveyor
    from .worker import Worker


@dataclass(frozen=True, slots=True)
class QueueGroup:
    queues: tuple[str, ...] | None    # None: the app's tasks' queues ("*": every queue)
    slots: int | None = None          # None: --concurrency / CONVEYOR_CONCURRENCY


def parse_queues(text: str | None) -> list[QueueGroup]:
    """"critical:10,emails:5,ai:2" -> a group per counted queue; "a,b" -> one shared group.

    >>> parse_queues("critical:10,emails,ai:2")
    [QueueGroup(queues=('critical',), slots=10), QueueGroup(queues=('ai',), slots=2), \
QueueGroup(queues=('emails',), slots=None)]
    """
    if text is None or not text.strip():
        return [QueueGroup(None)]
    counted: list[QueueGroup] = []
    shared: list[str] = []
    seen: set[str] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, colon, count = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if colon and count.isdigit():
            if not 1 <= int(count) <= 10_000:
                raise ConfigError(f"queues {text!r}: {name} has {count} slots; give 1 to 10000")
        elif colon:
            name, count = entry, ""  # a queue name may hold ':' itself ("tenant:a")
        if name != "*" and not is_queue_name(name):
            raise ConfigError(f"queues {text!r}: {name!r} is not a queue name "
                              f"({QUEUE_NAME_RULE}), nor NAME:SLOTS")
        if name in seen:
            raise ConfigError(f"queues {text!r}: {name} is named twice")
        seen.add(name)
        if count:
            counted.append(QueueGroup((name,), int(count)))
        else:
            shared.append(name)
    groups = counted + ([QueueGroup(tuple(shared))] if shared else [])
    if not groups:
        raise ConfigError(f"queues {text!r}: name at least one queue")
    return groups


class WorkerGroup:
    """Several workers in one process, stopped together (SIGTERM, or a second SIGINT: now)."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._stopping = False

    @classmethod
    def build(cls, app: Conveyor, groups: list[QueueGroup], **options: Any) -> WorkerGroup:
        workers = []
        for index, group in enumerate(groups):
            queues = None if group.queues is None else list(group.queues)
            concurrency = group.slots or options.get("concurrency")
            workers.append(app.worker(**{**options, "queues": queues,
                                         "concurrency": concurrency,
                                         "maintenance": index == 0}))
        return cls(workers)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        runs = [loop.create_task(worker.run(install_signals=False, release_loop=False))
                for worker in self.workers]
        try:
            await asyncio.gather(*runs)
        finally:
            # one worker's failure ends the gather: the others stop too, and all have
            # stopped before the pools they share close (else they open new ones that
            # nobody closes, and the loop's end waits for those for ever)
            for worker in self.workers:
                worker.stop()
            await asyncio.gather(*runs, return_exceptions=True)
            if self.workers:
                with contextlib.suppress(Exception):
                    await self.workers[0].store.release_loop()  # the app's, shared

    def _on_signal(self, sig: signal.Signals) -> None:
        now = self._stopping and sig == signal.SIGINT
        self._stopping = True
        for worker in self.workers:
            worker.stop(now=now)
