"""Attempt history: one record per attempt, minute rollups, error fingerprints (issue 15).

Core values only: the stores write and read them (store/*/history.py), the worker builds
them (worker/executor.py), the API, CLI and dashboard show them (web/analytics.py,
cli_analytics.py).
"""

from .fingerprint import fingerprint, mask_message
from .records import (
    AttemptInfo,
    AttemptRecord,
    ErrorGroup,
    Outcome,
    TaskSummary,
    TimeRange,
    WorkerSummary,
)

__all__ = ["AttemptInfo", "AttemptRecord", "ErrorGroup", "Outcome", "TaskSummary",
           "TimeRange", "WorkerSummary", "fingerprint", "mask_message"]
