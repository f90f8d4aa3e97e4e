"""Structured logs: JSON lines or text, optionally to a daily-rotated file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
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
