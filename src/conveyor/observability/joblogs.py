"""Job logs: one line when an attempt starts, one when it ends, sampled per task, with every
Sensitive value of the job replaced by a keyed hash (so equal values still correlate).

    job_log = JobLog(logging.getLogger("conveyor.jobs"), settings, worker_id)
    keep = job_log.started(job, ctx)                # False: this attempt's lines are sampled out
    job_log.ended(job, outcome, "completed", 0.012, keep)

Sampling (CONVEYOR_LOG_SAMPLE="20/min,5"): the first 20 attempts a minute of each task are
logged, then every 5th; a failed attempt's end line is always written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..job import ClaimedJob
    from ..settings import Settings

Hide = Callable[[str], str]
_SHORTEST = 3  # shorter values would hash half the words of a line
_SAMPLE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|min|minute|h|hour)\s*,\s*(\d+)\s*$")
_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0,
            "hour": 3600.0}


class Sampler:
    """After `limit` lines per period per key, keep every `every`-th. "all": keep all."""

    def __init__(self, spec: str = "") -> None:
        self.limit: int | None = None
        self.period, self.every = 60.0, 1
        self._windows: dict[str, list[Any]] = {}  # key: [window start, lines seen]
        if spec.strip().lower() not in ("", "all", "off"):
            match = _SAMPLE.match(spec)
            if match is None or int(match.group(3)) < 1:
                raise ConfigError(f"CONVEYOR_LOG_SAMPLE={spec!r}: use 'N/min,K' (after N "
                                  f"lines a minute per task, keep every K-th), e.g. '20/min,5'")
            self.limit, self.every = int(match.group(1)), int(match.group(3))
            self.period = _PERIODS[match.group(2)]

    def keep(self, key: str, now: float | None = None) -> bool:
        if self.limit is None:
            return True
        now = time.monotonic() if now is None else now
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.period:
            window = self._windows[key] = [now, 0]
        seen = window[1] = window[1] + 1
        return seen <= self.limit or (seen - self.limit) % self.every == 0


class Hasher:
    """A keyed hash for values that must not be logged in clear: `sha256:` and 12 hex."""

    def __init__(self, key: str = "") -> None:
        self._key = (key or "conveyor-log-hash").encode()

    def digest(self, value: Any) -> str:
        mac = hmac.new(self._key, str(value).encode(), hashlib.sha256)
        return "sha256:" + mac.hexdigest()[:12]

    def hider(self, values: Iterable[Any]) -> Hide | None:
        """A function that replaces each value (as written, JSON-escaped or repr'd) in a text
        by its digest; None when there is nothing to hide."""
        forms: dict[str, str] = {}
        for value in values:
            digest = self.digest(value)
            for form in _written_forms(value):
                if len(form) >= _SHORTEST:
                    forms.setdefault(form, digest)
        if not forms:
            return None
        ordered = sorted(forms, key=len, reverse=True)  # the longest form wins an overlap
        pattern = re.compile("|".join(map(re.escape, ordered)))
        return lambda text: pattern.sub(lambda m: forms[m.group(0)], text)


def _written_forms(value: Any) -> set[str]:
    if isinstance(value, bool) or value is None:
        return set()
    if not isinstance(value, str):
        return {str(value), repr(value)}
    return {value, orjson.dumps(value).decode()[1:-1], repr(value)[1:-1]}


class JobLog:
    """The start and end lines of each attempt, on the `conveyor.jobs` logger."""

    def __init__(self, logger: logging.Logger, settings: Settings, worker_id: str) -> None:
        self.log = logger
        self.enabled = settings.job_logs
        self.sampler = Sampler(settings.log_sample)
        self.worker_id = worker_id

    def started(self, job: ClaimedJob) -> bool:
        """Log the start of an attempt; whether this attempt's lines are kept (sampling)."""
        if not self.enabled or not self.log.isEnabledFor(logging.INFO):
            return False
        if not self.sampler.keep(job.task):
            return False
        self.log.info("job %s (%s) attempt %d started", job.id, job.task, job.attempt,
                      extra=self._fields(job, None, None))
        return True

    def ended(self, job: ClaimedJob, outcome: str, seconds: float, kept: bool,
              error: tuple[str, str] | None = None, hide: Hide | None = None) -> None:
        """Log the end of an attempt. A failure is always logged (never sampled out), with
        its error type and message, Sensitive values hashed by `hide`."""
        failed = outcome in ("retrying", "dead")
        if not (failed or (self.enabled and kept)):  # failures are logged even when off
            return
        level = logging.WARNING if outcome == "dead" else logging.INFO
        if not self.log.isEnabledFor(level):
            return
        fields = self._fields(job, round(seconds * 1000, 3), outcome)
        if error is None:
            self.log.log(level, "job %s (%s) attempt %d %s in %.1fms", job.id, job.task,
                         job.attempt, outcome, seconds * 1000, extra=fields)
            return
        message = error[1] if hide is None else hide(error[1])
        fields["error_type"], fields["error"] = error[0], message
        self.log.log(level, "job %s (%s) attempt %d %s in %.1fms: %s: %s", job.id, job.task,
                     job.attempt, outcome, seconds * 1000, error[0], message, extra=fields)

    def _fields(self, job: ClaimedJob, elapsed_ms: float | None,
                outcome: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "job_id": job.id, "task": job.task, "queue": job.queue, "attempt": job.attempt,
            "tenant": job.tenant, "correlation_id": job.correlation_id,
            "worker_id": self.worker_id, "event": "attempt_started"}
        if outcome is not None:
            fields.update(elapsed_ms=elapsed_ms, outcome=outcome, event="attempt_ended")
        return fields
