"""One frozen Settings: defaults < conveyor.toml < CONVEYOR_* environment < arguments.

    settings = Settings.load(url="sqlite:///jobs.db")
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_URL = "sqlite:///./conveyor.db"


@dataclass(frozen=True, slots=True)
class Settings:
    url: str = DEFAULT_URL
    app: str | None = None
    api_tokens: str = ""
    encryption_keys: str = ""
    log_format: str = "text"
    log_file: str | None = None
    log_level: str = "INFO"
    max_batch: int = 1000
    max_payload_bytes: int = 1_048_576
    lease: float = 30.0
    heartbeat: float | None = None  # default: min(5 s, lease / 3)
    poll_interval: float = 1.0
    concurrency: int = 10
    grace: float = 25.0
    sqlite_synchronous: str = "NORMAL"
    spool: str | None = None  # a folder: enqueue writes jobs here while the store is down
    retention_completed: float = 24 * 3600.0
    retention_dead: float = 7 * 24 * 3600.0
    retention_cancelled: float = 24 * 3600.0
    behind_tls: bool = False  # the server is reached through HTTPS: cookies get Secure
    session_idle: float = 3600.0  # a dashboard sign-in ends after this long unused
    session_lifetime: float = 12 * 3600.0  # ... and this long after it began, in any case
    metrics_max_labels: int = 100  # distinct queues (and tasks) with series of their own
    # what one HTTP request may cost (web/bodies.py) and how long a client may take (server.py)
    max_body_bytes: int = 0  # one job's body; 0: twice CONVEYOR_MAX_PAYLOAD_BYTES + 64 KiB
    max_batch_body_bytes: int = 8 * 1024 * 1024  # a batch's body
    max_body_values: int = 100_000  # JSON values (commas, brackets, braces) in one body
    max_large_bodies: int = 2  # bodies over 1 MiB read at once; more: 503 + Retry-After
    max_list_bytes: int = 8 * 1024 * 1024  # a page of jobs stops growing here (next_cursor)
    http_header_timeout: float = 10.0  # a request's line and headers arrive within this
    http_body_timeout: float = 30.0  # a request body arrives within this
    http_idle_timeout: float = 5.0  # a kept-alive connection with no request is closed
    http_max_connections: int = 1000  # open connections at once; more are answered 503

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ConfigError("CONVEYOR_MAX_BATCH must be at least 1")
        for name in ("lease", "heartbeat", "poll_interval", "grace", "retention_completed",
                     "retention_dead", "retention_cancelled", "session_idle",
                     "session_lifetime"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"CONVEYOR_{name.upper()} must be a finite number of "
                                  f"seconds, not {value!r}")
            if value is not None and value < 0 and name != "lease":
                raise ConfigError(f"CONVEYOR_{name.upper()} must not be negative")
        if self.lease <= 0:
            raise ConfigError("CONVEYOR_LEASE must be a positive number of seconds")
        if not 0 < self.session_idle <= self.session_lifetime:
            raise ConfigError("CONVEYOR_SESSION_IDLE must be positive and at most "
                              "CONVEYOR_SESSION_LIFETIME")
        if self.metrics_max_labels < 1:
            raise ConfigError("CONVEYOR_METRICS_MAX_LABELS must be at least 1")
        _check_web_limits(self)
        if self.heartbeat is None:
            object.__setattr__(self, "heartbeat", min(5.0, self.lease / 3))
        elif self.heartbeat <= 0 or self.heartbeat >= self.lease:
            raise ConfigError(
                f"CONVEYOR_HEARTBEAT ({self.heartbeat:g}s) must be positive and shorter than "
                f"CONVEYOR_LEASE ({self.lease:g}s)"
            )
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"CONVEYOR_LOG_FORMAT must be 'json' or 'text', not "
                              f"{self.log_format!r}")
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError("CONVEYOR_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA")

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, file: str | Path | None = None,
             **overrides: Any) -> Settings:
        """Build settings from layers; `overrides` with value None are ignored."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = Path(file or env.get("CONVEYOR_CONFIG", "conveyor.toml"))
        if path.is_file():
            values.update(_from_file(path))
        values.update(_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _check_web_limits(s: Settings) -> None:
    for name in ("max_batch_body_bytes", "max_body_values", "max_large_bodies",
                 "max_list_bytes", "http_max_connections"):
        if getattr(s, name) < 1:
            raise ConfigError(f"CONVEYOR_{name.upper()} must be at least 1")
    if s.max_body_bytes < 0:
        raise ConfigError("CONVEYOR_MAX_BODY_BYTES must be 0 (derived) or a number of bytes")
    for name in ("http_header_timeout", "http_body_timeout", "http_idle_timeout"):
        value = getattr(s, name)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"CONVEYOR_{name.upper()} must be a positive number of seconds")


_FIELDS = {f.name: f for f in fields(Settings)}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        key = "CONVEYOR_" + name.upper()
        if key in env and env[key] != "":
            out[name] = env[key]
    return out


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    section = data.get("conveyor", data)
    unknown = set(section) - set(_FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}")
    return dict(section)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        default = _FIELDS[name].default
        try:
            if name == "heartbeat" or isinstance(default, float):
                out[name] = float(raw)
            elif isinstance(default, bool):
                out[name] = _boolean(raw)
            elif isinstance(default, int):
                out[name] = int(raw)
            else:
                out[name] = raw
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name}={raw!r} is not a valid "
                              f"{type(default).__name__}") from exc
    return out


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(text)
    return text in ("1", "true", "yes", "on")
