"""Structured logs: JSON lines or text, optionally to a daily-rotated file."""

from __future__ import annotations

import fcntl
import glob
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from ..settings import Settings

# What every LogRecord has: anything else on a record came from `extra=` and is kept.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 6), "level": record.levelname.lower(),
            "logger": record.name, "msg": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and value is not None and key not in data:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class SharedDailyFileHandler(logging.handlers.WatchedFileHandler):
    """A log file several processes append to (a supervisor's workers, a server), rotated
    at UTC midnight to `FILE.YYYY-MM-DD` exactly once: the first process to log on a new day
    renames it under a lock, and the others, finding the day's file there, only reopen (the
    watched file's inode changed). 14 days are kept."""

    keep_days = 14

    def __init__(self, filename: str, clock: Callable[[], float] = time.time) -> None:
        super().__init__(filename, delay=False)
        self.clock = clock
        self._day = _utc_day(clock())

    def emit(self, record: logging.LogRecord) -> None:
        today = _utc_day(self.clock())
        if today != self._day:
            self._rotate(self._day)
            self._day = today
        super().emit(record)  # reopens the file if another process renamed it

    def _rotate(self, ended: str) -> None:
        path = self.baseFilename
        with open(path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process renames; the others see it done
            target = f"{path}.{ended}"
            try:
                written = _utc_day(os.stat(path).st_mtime)
            except FileNotFoundError:
                return
            if not os.path.exists(target) and written <= ended:
                os.rename(path, target)
            for old in sorted(glob.glob(glob.escape(path) + ".????-??-??"))[:-self.keep_days]:
                os.remove(old)


def _utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def apply_log_settings(settings: Settings) -> None:
    """For a worker embedded in the user's own program (`app.worker().run()`): apply
    CONVEYOR_LOG_FORMAT / CONVEYOR_LOG_FILE when they ask for something (JSON, a file), as
    `conveyor worker` does; with neither, the program's own logging set-up is left alone."""
    if settings.log_file or settings.log_format != "text":
        configure_logging(settings)


def configure_logging(settings: Settings) -> None:
    """Configure the `conveyor` logger once, from CONVEYOR_LOG_FORMAT / _FILE / _LEVEL."""
    root = logging.getLogger("conveyor")
    if getattr(root, "_conveyor_configured", False):
        return
    handler: logging.Handler
    if settings.log_file:
        handler = SharedDailyFileHandler(settings.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    root._conveyor_configured = True  # type: ignore[attr-defined]
