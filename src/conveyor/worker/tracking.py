"""Attempt history on the worker's side: measure each attempt (wall time, CPU, peak RSS) and
attach the record to the settle item that ends it, so the store writes both in one trip.

CPU is the running thread's CPU time for sync tasks (they run in a thread of their own),
the child's rusage for isolation="process", and not measured for async tasks (they share
the loop's thread). Peak RSS is the process's high-water mark (the child's for isolated
tasks). For attempts run in the worker's own process (async and sync tasks) it is read once
per settle trip, for every attempt that trip writes (Tracker.stamp): the process's peak as of
the settle that records the attempt, which is never below its peak when the attempt ended
(a high-water mark only rises) and at most one trip later (one getrusage per trip, not per
job: ~0.6-2 µs/job of a drain). A leak shows up in the trip's attempts where it rose.

The error recorded for history is scrubbed of the job's Sensitive values first (it must
outlive the job, whose payload the readers' scrubbing needs), then sealed like the job's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..disclosure import Scrubber, sensitive_values
from ..history.fingerprint import fingerprint, top_frame, top_frame_from_text
from ..history.records import AttemptRecord
from ..job import ClaimedJob, ErrorInfo
from ..sealing import seal_error
from ..store.base import Cancelled, Complete, Fail, Settle, Snooze

if TYPE_CHECKING:
    from ..codec import Codec

try:
    import resource
except ImportError:  # not on Windows: no RSS figure
    resource = None  # type: ignore[assignment]

_RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB else


# RUSAGE_SELF sums every thread's figures (slow with a pool of task threads); the calling
# thread's own call is cheap, and on Linux its ru_maxrss is still the process's peak
_WHO = getattr(resource, "RUSAGE_THREAD", None) if resource is not None else None


def peak_rss() -> int | None:
    if resource is None:
        return None
    who = resource.RUSAGE_SELF if _WHO is None else _WHO
    return int(resource.getrusage(who).ru_maxrss) * _RSS_UNIT


def child_usage() -> tuple[float, int | None]:
    """In an isolated task's child: its CPU seconds and peak RSS so far."""
    if resource is None:
        return time.process_time(), None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss) * _RSS_UNIT


class Meter:
    """What one attempt measured; filled in as it runs (from its thread, or its child)."""

    __slots__ = ("cpu", "error", "rss", "scrubber")

    def __init__(self) -> None:
        self.cpu: float | None = None
        self.rss: int | None = None
        self.error: tuple[ErrorInfo, str] | None = None   # the error and its top frame
        self.scrubber: Scrubber | None = None

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` measuring the CPU time of the thread it runs in."""
        def run(*args: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args)
            finally:
                self.cpu = time.thread_time() - start
        return run

    def sensitive(self, payload: Any, paths: dict[str, Any]) -> None:
        if paths:
            self.scrubber = Scrubber(sensitive_values(payload, paths))

    def failed(self, error: ErrorInfo, exc: BaseException) -> None:
        frame = (top_frame_from_text(error.traceback) if hasattr(exc, "child_traceback")
                 else top_frame(exc.__traceback__))
        self.error = (error, frame)


_RECORDED = (Complete, Fail, Snooze, Cancelled)  # the outcomes that end an attempt


class Tracker:
    """Builds the attempt records of one worker."""

    def __init__(self, codec: Codec, worker_id: str, host: str) -> None:
        self.codec = codec
        self.worker_id = worker_id
        self.host = host
        self.pid = os.getpid()
        self._unstamped: list[AttemptRecord] = []  # attached since the last stamp, no RSS yet

    def attach(self, job: ClaimedJob, outcome: Settle, started_at: float, took: float,
               meter: Meter) -> Settle:
        if not isinstance(outcome, _RECORDED):  # a tuple: `A | B` is built on every call
            return outcome
        # positional, in AttemptRecord's field order: keywords cost ~0.3 µs more per job
        record = AttemptRecord(
            job.task, job.queue, job.tenant, job.attempt, started_at, started_at + took,
            self.worker_id, self.host, self.pid, meter.cpu, meter.rss)
        if meter.rss is None:  # the worker's own process: read at the settle trip (stamp)
            self._unstamped.append(record)
        if meter.error is not None and isinstance(outcome, Fail):
            self._with_error(job, record, meter)
        # Set on the outcome itself, not a copy (a copy's __init__ was most of attach's
        # cost): this attempt's run made it for this attempt alone, and nothing has seen it
        # yet (the lifecycle and the settle get it from here on).
        outcome.attempt = record
        return outcome

    def stamp(self) -> None:
        """The peak RSS of every attempt attached since the last stamp, one reading for all:
        called as a settle trip takes the outcomes (Outcomes.take), so every record it
        writes has its figure, read after the attempt ended."""
        if self._unstamped:
            records, self._unstamped = self._unstamped, []
            rss = peak_rss()
            for record in records:
                record.rss = rss

    def _with_error(self, job: ClaimedJob, record: AttemptRecord, meter: Meter
                    ) -> AttemptRecord:
        """The record with the error as history keeps it (the record was just made here:
        filled in place, not copied)."""
        assert meter.error is not None
        error, frame = meter.error
        if meter.scrubber is not None:
            error = meter.scrubber.error(error)
        kept = seal_error(self.codec, error, job.id, job.tenant)
        record.fingerprint = fingerprint(error.type, error.message, frame)
        record.error_message, record.error_traceback = kept.message, kept.traceback
        record.error_sealed = kept.sealed
        return record

