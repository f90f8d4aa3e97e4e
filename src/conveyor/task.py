"""Tasks and the registry that an app owns (no module-level registry)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

from .codec import sensitive_paths
from .errors import PayloadInvalid, UnknownTask
from .limits.control import code_limit
from .limits.keys import KeyLimit
from .names import QUEUE_NAME_RULE, is_queue_name
from .retry import Retry

if TYPE_CHECKING:
    from .app import Conveyor
    from .job import Job

Isolation = Literal["none", "process"]


@dataclass(eq=False)
class Task:
    """A registered task. Call `enqueue` to put a job on its queue; call the task itself to
    run its function directly (handy in tests)."""

    name: str
    fn: Callable[..., Any]
    app: Conveyor
    queue: str = "default"
    retry: Retry = field(default_factory=Retry)
    timeout: float | None = None
    ttl: float | None = None
    priority: int = 0
    schema: type[BaseModel] | None = None
    unique_for: float | None = None
    isolation: Isolation = "none"
    concurrency: int | None = None   # cluster-wide limits (conveyor.limits)
    rate: str | None = None          # "10/min": starts per sliding window
    key: KeyLimit | None = None      # limits per key (limits/keys.py)

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= 200:
            raise ValueError(f"task name {self.name!r} must be 1 to 200 characters")
        if not is_queue_name(self.queue):
            raise ValueError(f"task {self.name!r}: queue {self.queue!r} must be "
                             f"{QUEUE_NAME_RULE}")
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError(f"task {self.name!r}: ttl must be a positive number of seconds")
        try:
            code_limit("task", self.name, self.concurrency, self.rate)
        except ValueError as exc:
            raise ValueError(f"task {self.name!r}: {exc}") from None
        if self.key is not None and not isinstance(self.key, KeyLimit):
            raise ValueError(f"task {self.name!r}: key= takes a conveyor.KeyLimit, e.g. "
                             f'KeyLimit("payload.customer_id", concurrency=1)')
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.sensitive = sensitive_paths(self.schema)
        # stored with each of its jobs, so that every reader redacts (disclosure.py)
        self.sensitive_json = orjson.dumps(self.sensitive).decode() if self.sensitive else None
        if self.isolation == "process":
            self._check_importable()

    def _check_importable(self) -> None:
        """A process-isolated task runs in a child that imports it by module and name: say
        so when it is declared, not when its first job runs and fails."""
        if self.is_async:
            raise ValueError(f"task {self.name!r}: isolation='process' is for sync functions")
        module, name = self.fn.__module__, self.fn.__qualname__
        if module == "__main__" or "<" in name:
            where = "in __main__ (the script being run)" if module == "__main__" else \
                f"inside {name.split('.<locals>')[0]}()"
            raise ValueError(f"task {self.name!r}: isolation='process' needs a function at "
                             f"module level in an importable module, but it is defined "
                             f"{where}: move it to a module and import it from there")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def enqueue(self, payload: Any = None, **options: Any) -> Job:
        """Put one job for this task on its queue.

        >>> send_welcome.enqueue({"user_id": "u1"}, idempotency_key="welcome:u1")  # doctest: +SKIP
        """
        return self.app.enqueue(self.name, payload, **options)

    async def enqueue_async(self, payload: Any = None, **options: Any) -> Job:
        return await self.app.enqueue_async(self.name, payload, **options)

    def validate(self, payload: Any) -> Any:
        """The payload as stored: validated by the schema and dumped to JSON-ready data."""
        if self.schema is None:
            return {} if payload is None else payload
        if isinstance(payload, self.schema):
            return payload.model_dump(mode="json", by_alias=True)
        try:
            model = self.schema.model_validate({} if payload is None else payload)
        except ValidationError as exc:
            raise PayloadInvalid(self.name, [
                {"field": ".".join(str(p) for p in err["loc"]) or "(payload)",
                 "message": err["msg"], "type": err["type"]}
                for err in exc.errors(include_url=False, include_input=False)
            ]) from None
        return model.model_dump(mode="json", by_alias=True)

    def limit_key(self, body: Any, tenant: str | None) -> str | None:
        """The job's key under the task's per-key limit (None: no key)."""
        return None if self.key is None else self.key.of(self.name, body, tenant)

    def load(self, payload: Any) -> Any:
        """The payload as the task function receives it."""
        if self.schema is None:
            return payload
        return self.schema.model_validate(payload)


class TaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def add(self, task: Task) -> None:
        if task.name in self._tasks and self._tasks[task.name].fn is not task.fn:
            raise ValueError(f"a different task named {task.name!r} is already registered")
        self._tasks[task.name] = task

    def get(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(name, list(self._tasks)) from None

    def find(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def queues(self) -> list[str]:
        return sorted({t.queue for t in self._tasks.values()})

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)
