"""The exceptions users catch. Every message says what to change."""

from __future__ import annotations


class ConveyorError(Exception):
    """Base class of every error Conveyor raises on purpose."""


class ConfigError(ConveyorError):
    """A setting or URL is missing or malformed."""


class UnknownSettingWarning(UserWarning):
    """A CONVEYOR_* environment variable that names no setting (a typo, most often): it is
    ignored. Turn it into an error with `-W error::conveyor.errors.UnknownSettingWarning`."""


class UnknownTask(ConveyorError):
    """A job names a task this app does not know."""

    def __init__(self, task: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)[:10]) or "none registered"
        super().__init__(f"unknown task {task!r} (known tasks: {hint})")
        self.task = task


class PayloadInvalid(ConveyorError):
    """A payload failed its task's schema; `errors` lists each bad field."""

    def __init__(self, task: str, errors: list[dict[str, object]]) -> None:
        first = errors[0] if errors else {"field": "?", "message": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"payload for task {task!r} is invalid: field {first['field']!r}: "
            f"{first['message']}{more}"
        )
        self.task = task
        self.errors = errors


class BatchTooLarge(ConveyorError):
    """More jobs in one enqueue_many call than the batch limit allows."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"batch of {size} jobs is over the limit of {limit} "
            "(split it, or raise CONVEYOR_MAX_BATCH)"
        )
        self.size = size
        self.limit = limit


class JobNotFound(ConveyorError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class InvalidTransition(ConveyorError):
    """The job is in a state that does not allow the requested action."""

    def __init__(self, job_id: str, state: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: it is {state}")
        self.job_id = job_id
        self.state = state
        self.action = action


class SchemaOutdated(ConveyorError):
    """The store's schema is older than this version of Conveyor needs."""

    def __init__(self, current: int | None, needed: int | None, missing: str = "") -> None:
        if current is None or needed is None:  # met by a statement: `missing` says what
            super().__init__(f"the store's schema is older than this Conveyor needs "
                             f"({missing}): run `conveyor migrate`")
        else:
            super().__init__(
                f"the store's schema is at version {current}, this Conveyor needs {needed}: "
                "run `conveyor migrate`"
            )
        self.current = current
        self.needed = needed


class StoreUnavailable(ConveyorError):
    """The store cannot be reached (database down, disk full, locked for too long)."""


class MigrationBlocked(StoreUnavailable):
    """A migration could not take the table locks it needs within its wait: another
    transaction holds them (nothing of that migration was applied)."""


class WaitTimeout(ConveyorError):
    def __init__(self, job_id: str, timeout: float, state: str) -> None:
        super().__init__(f"job {job_id} still {state} after waiting {timeout:g}s")
        self.job_id = job_id
        self.state = state


class PayloadUndecodable(ConveyorError):
    """A stored payload cannot be decrypted or decoded; the job goes dead at once."""


class InvalidQueueName(ConveyorError):
    """A queue name outside the rule of conveyor.names (characters, length)."""

    def __init__(self, name: object, rule: str) -> None:
        super().__init__(f"queue name {name!r} is not allowed: a queue name is {rule}")
        self.name = name


class SearchRefused(ConveyorError):
    """A search Conveyor will not run: a payload field its task's schema marks Sensitive (a
    search by it would tell its value), or a query it cannot read."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class ScheduleNotFound(ConveyorError):
    """A cron schedule name this app does not declare (app.cron)."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(repr(n) for n in known[:20]) or "none"
        super().__init__(f"no cron schedule named {name!r} in this app (it has: {listed})")
        self.name = name
