"""Preparing jobs: what a producer passes (a task, a payload, options) becomes the NewJob the
store inserts, and the store's answer becomes the envelope handed back. Options are checked,
the payload validated by the task's schema and encoded (encrypted with a keyring), ids made
here; nothing here touches the store.

    preparer = Preparer(app)
    new, body = preparer.one("send_welcome", {"user_id": "u1"}, {"queue": "emails"})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

import orjson

from .codec import Codec
from .errors import BatchTooLarge, ConveyorError, PayloadInvalid
from .job import EnqueueResult, Job, JobState, NewJob, new_id
from .limits.keys import DROPPED
from .names import check_queue_name
from .retry import Retry
from .settings import Settings
from .task import Task, TaskRegistry

ENQUEUE_OPTIONS = frozenset({
    "queue", "priority", "delay", "run_at", "ttl", "idempotency_key", "correlation_id", "tenant",
    "max_attempts", "unique_for", "parent_id", "connection"})


class Source(Protocol):
    """What preparing reads of the app, at each call: settings and codec can be replaced."""

    registry: TaskRegistry
    codec: Codec
    settings: Settings


class Preparer:
    """Builds the jobs of one app: its tasks, its codec, its largest batch."""

    def __init__(self, app: Source) -> None:
        self.app = app

    def many(self, jobs: Iterable[Any]) -> list[tuple[NewJob, Any]]:
        """A whole batch, one batch id for all, or the first item's error."""
        items = list(jobs)
        self.check_batch_size(items)
        return list(self.each(items, new_id()))

    def check_batch_size(self, items: list[Any]) -> None:
        largest = self.app.settings.max_batch
        if len(items) > largest:
            raise BatchTooLarge(len(items), largest)

    def each(self, items: list[Any], batch_id: str) -> Iterator[tuple[NewJob, Any]]:
        """Prepare a batch's items in order; an error names the item's index."""
        ids = new_id.many(len(items))
        for index, item in enumerate(items):
            task, payload, options = split_item(item, index)
            try:
                yield self.one(task, payload, options, batch_id, ids[index])
            except PayloadInvalid as exc:
                error = PayloadInvalid(exc.task, [{**e, "field": f"jobs[{index}].{e['field']}"}
                                                  for e in exc.errors])
                error.index = index  # type: ignore[attr-defined]
                raise error from None
            except ConveyorError as exc:
                exc.index = index  # type: ignore[attr-defined]
                exc.add_note(f"in jobs[{index}] of the batch")
                raise

    def one(self, task: str | Task, payload: Any, options: Mapping[str, Any],
            batch_id: str | None = None, job_id: str | None = None) -> tuple[NewJob, Any]:
        """Validate one job and build what the store inserts; nothing is stored here."""
        if options and not options.keys() <= ENQUEUE_OPTIONS:
            unknown = sorted(set(options) - ENQUEUE_OPTIONS)
            raise TypeError(f"unknown enqueue option(s): {', '.join(unknown)}")
        name = task.name if isinstance(task, Task) else task
        registry = self.app.registry
        spec = registry.find(name)
        if spec is None and len(registry):
            registry.get(name)  # raises UnknownTask naming the known ones
        body = spec.validate(payload) if spec is not None else {} if payload is None else payload
        job_id = job_id or new_id()
        if not options and spec is not None:  # the common case of a bulk enqueue: defaults
            return NewJob(job_id, name, spec.queue, self.app.codec.encode(body, job_id, None),
                          spec.priority, spec.retry.attempts, 0.0, None, spec.ttl, None, None,
                          None, spec.unique_for, batch_id, None, spec.sensitive_json,
                          None if spec.key is None else spec.limit_key(body, None)), body
        get = options.get
        tenant = get("tenant")
        run_at = get("run_at")
        new = NewJob(
            job_id, name, get("queue") or (spec.queue if spec else "default"),
            self.app.codec.encode(body, job_id, tenant),
            int_option(get("priority"), "priority", spec.priority if spec else 0),
            int_option(get("max_attempts"), "max_attempts",
                        spec.retry.attempts if spec else Retry().attempts),
            float(get("delay") or 0.0),
            run_at.timestamp() if isinstance(run_at, datetime) else run_at,
            get("ttl", spec.ttl if spec else None), tenant, get("correlation_id"),
            get("idempotency_key"), get("unique_for", spec.unique_for if spec else None),
            batch_id, get("parent_id"), spec.sensitive_json if spec else None,
            spec.limit_key(body, tenant) if spec is not None and spec.key else None)
        check_new_job(new)
        return new, body


def envelope(new: NewJob, body: Any, result: EnqueueResult) -> Job:
    """The envelope of a job the store took as new (not a duplicate), with the store's
    answer: its state and times."""
    running = result.state is JobState.RUNNING  # handed straight to a waiting worker
    created = result.created_at
    # Positional, in Job's field order: half the cost of keywords, once per job of a bulk
    # enqueue. id, task, queue, payload, state, priority, attempt, max_attempts, tenant,
    # correlation_id, idempotency_key, created_at, run_at, started_at, finished_at,
    # expires_at, progress, progress_step, result, errors, worker_id, worker_host,
    # dead_reason, batch_id, parent_id, cancel_requested, duplicate, sensitive.
    return Job(new.id, new.task, new.queue, body, result.state, new.priority,
               1 if running else 0, new.max_attempts, new.tenant, new.correlation_id,
               new.idempotency_key, created, result.run_at, created if running else None,
               None, None if new.ttl is None else created + new.ttl, None, None, None, (),
               None, None, DROPPED if result.dropped else None, new.batch_id, new.parent_id,
               False, False, None if new.sensitive is None else orjson.loads(new.sensitive),
               result.dropped)


_NO_OPTIONS: Mapping[str, Any] = {}
UNSTORED = EnqueueResult("", False, JobState.QUEUED, 0.0, 0.0)  # times to come from the store


def split_item(item: Any, index: int) -> tuple[str | Task, Any, Mapping[str, Any]]:
    if type(item) is dict or isinstance(item, Mapping):
        if "task" not in item:
            raise ConveyorError(f"jobs[{index}] has no 'task'")
        if len(item) <= 2 and (len(item) == 1 or "payload" in item):
            return item["task"], item.get("payload"), _NO_OPTIONS
        options = {k: v for k, v in item.items() if k != "task" and k != "payload"}
        return item["task"], item.get("payload"), options
    if isinstance(item, tuple) and len(item) in (2, 3):
        options = dict(item[2]) if len(item) == 3 else {}
        return item[0], item[1], options
    raise ConveyorError(f"jobs[{index}] must be a dict with 'task' or a (task, payload) tuple")


def int_option(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConveyorError(f"{name} must be a whole number, not {value!r}")
    return value


def check_new_job(new: NewJob) -> None:
    if not 0 < len(new.task) <= 200:
        raise ConveyorError("task name must be 1 to 200 characters")
    check_queue_name(new.queue)
    if new.max_attempts < 1:
        raise ConveyorError("max_attempts must be at least 1")
    if new.delay < 0:
        raise ConveyorError("delay must be >= 0 seconds")
    if new.ttl is not None and new.ttl <= 0:
        raise ConveyorError("ttl must be a positive number of seconds")
    if (new.tenant is not None or new.correlation_id is not None
            or new.idempotency_key is not None):
        for name in ("idempotency_key", "correlation_id", "tenant"):
            value = getattr(new, name)
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 255):
                raise ConveyorError(f"{name} must be a string of 1 to 255 characters")
