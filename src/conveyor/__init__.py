"""Conveyor: durable background jobs for Python.

    from conveyor import Conveyor, Retry, JobContext

    app = Conveyor()                     # CONVEYOR_URL, else sqlite:///./conveyor.db

    @app.task(queue="emails", retry=Retry(attempts=5))
    async def send_welcome(ctx: JobContext, payload: dict) -> None: ...

    send_welcome.enqueue({"user_id": "u1"})
"""

from .app import Conveyor
from .clock import FakeClock, SystemClock
from .codec import Sensitive
from .context import JobContext
from .errors import (
    BatchTooLarge,
    ConfigError,
    ConveyorError,
    InvalidTransition,
    JobNotFound,
    PayloadInvalid,
    PayloadUndecodable,
    SchemaOutdated,
    StoreUnavailable,
    UnknownTask,
    WaitTimeout,
)
from .job import ErrorInfo, Job, JobFilter, JobState
from .limits.keys import KeyLimit
from .outcome import Cancel, Discard, RateLimited, Snooze
from .retry import Retry
from .settings import Settings
from .task import Task

__version__ = "0.1.0"

__all__ = [
    "BatchTooLarge", "Cancel", "ConfigError", "Conveyor", "ConveyorError", "Discard",
    "ErrorInfo", "FakeClock", "InvalidTransition", "Job", "JobContext", "JobFilter",
    "JobNotFound", "JobState", "KeyLimit", "PayloadInvalid", "PayloadUndecodable",
    "RateLimited", "Retry", "SchemaOutdated", "Sensitive", "Settings", "Snooze",
    "StoreUnavailable", "SystemClock", "Task", "UnknownTask", "WaitTimeout", "__version__",
]
