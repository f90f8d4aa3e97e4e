"""Structured logs: JSON lines or text, optionally to a daily-rotated file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time

import orjson

from ..settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": round(record.created, 6), "level": record.levelname.lower(),
                "logger": record.name, "msg": record.getMessage(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))}
        for key in ("job_id", "task", "queue", "correlation_id", "tenant", "worker_id"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data).decode()


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
        handler = logging.handlers.TimedRotatingFileHandler(settings.log_file, when="midnight",
                                                            backupCount=14, utc=True)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    root._conveyor_configured = True  # type: ignore[attr-defined]
