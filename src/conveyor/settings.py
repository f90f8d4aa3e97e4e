"""One frozen Settings: defaults < conveyor.toml < CONVEYOR_* environment < arguments.

    settings = Settings.load(url="sqlite:///jobs.db")
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownSettingWarning

DEFAULT_URL = "sqlite:///./conveyor.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    queues: str | None = None  # `conveyor worker`'s queues: "a,b" or "critical:10,emails:5"
    grace: float = 25.0
    sqlite_durability: str = "auto"  # enqueues at FULL, worker writes at NORMAL
    sqlite_synchronous: str | None = None  # one level for every connection, if set
    sqlite_busy_timeout: float = 10.0  # seconds a SQLite write waits for the lock
    spool: str | None = None  # a folder: enqueue writes jobs here while the store is down
    spool_wait: float = 1.0  # with a spool: seconds an enqueue waits for the store's lock
    retention_completed: float = 24 * 3600.0
    retention_dead: float = 7 * 24 * 3600.0
    retention_cancelled: float = 24 * 3600.0
    behind_tls: bool = False  # the server is reached through HTTPS: cookies get Secure
    session_idle: float = 3600.0  # a dashboard sign-in ends after this long unused
    session_lifetime: float = 12 * 3600.0  # ... and this long after it began, in any case
    metrics_max_labels: int = 100  # distinct queues (and tasks) with series of their own
    dashboard_snapshot: float = 1.0  # seconds the overview and /metrics' gauges may be old
    dashboard_stale: float = 30.0  # ... past that, a page's older copy while a slow read runs
    job_logs: bool = True  # a line per attempt start and end (logger conveyor.jobs)
    log_sample: str = "60/min,100"  # after 60 attempts a minute per task, log every 100th
    log_hash_key: str = ""  # the key of the hash that replaces Sensitive values in logs
    keep_completed: str = ""  # "1000,emails=50,task:report=10": newest completed kept
    keep_dead: str = ""  # the same for dead jobs
    alert_url: str | None = None  # POST a signed JSON here when a job dies (alerts.py)
    alert_secret: str = ""  # the HMAC-SHA256 key of the alert signature
    alert_queue_wait: float = 0.0  # alert when a queue's oldest job waits longer (0: off)
    history: bool = True  # record every attempt (conveyor/history): rows, rollups, errors
    history_retention: float = 30 * 24 * 3600.0  # attempt rows, whatever became of the job
    rollup_retention: float = 56 * 24 * 3600.0  # minute rollups (the charts' history)
    api_enqueue_rate: str | None = None  # "100/s": jobs a token may enqueue over HTTP
    tracing: bool = False  # OpenTelemetry spans per enqueue and attempt (the otel extra)
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
                     "session_lifetime", "history_retention", "rollup_retention",
                     "sqlite_busy_timeout", "spool_wait"):
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
        for name in ("concurrency", "max_payload_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"CONVEYOR_{name.upper()} must be at least 1")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"CONVEYOR_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                              f"not {self.log_level!r}")
        if self.metrics_max_labels < 1:
            raise ConfigError("CONVEYOR_METRICS_MAX_LABELS must be at least 1")
        _check_observability(self)
        if self.api_enqueue_rate is not None:
            from .limits.model import parse_rate

            try:
                parse_rate(self.api_enqueue_rate)
            except ValueError as exc:
                raise ConfigError(f"CONVEYOR_API_ENQUEUE_RATE: {exc}") from None
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
        if (self.sqlite_synchronous is not None
                and self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA")):
            raise ConfigError("CONVEYOR_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA")
        if self.sqlite_durability.lower() not in ("auto", "full", "normal"):
            raise ConfigError(f"CONVEYOR_SQLITE_DURABILITY must be auto, full or normal, not "
                              f"{self.sqlite_durability!r}")

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
        warn_unknown_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _check_observability(settings: Settings) -> None:
    from .observability.joblogs import Sampler
    from .retention import KeepCounts

    Sampler(settings.log_sample)
    KeepCounts.parse(settings.keep_completed, "CONVEYOR_KEEP_COMPLETED")
    KeepCounts.parse(settings.keep_dead, "CONVEYOR_KEEP_DEAD")
    if settings.alert_url and not settings.alert_url.startswith(("http://", "https://")):
        raise ConfigError(f"CONVEYOR_ALERT_URL must be an http(s) URL, not "
                          f"{settings.alert_url!r}")
    if settings.alert_url and not settings.alert_secret:
        raise ConfigError("CONVEYOR_ALERT_URL needs CONVEYOR_ALERT_SECRET (the key of the "
                          "signature receivers check)")
    if not math.isfinite(settings.alert_queue_wait) or settings.alert_queue_wait < 0:
        raise ConfigError("CONVEYOR_ALERT_QUEUE_WAIT must be a non-negative number of seconds")
def _check_web_limits(s: Settings) -> None:
    for name in ("max_batch_body_bytes", "max_body_values", "max_large_bodies",
                 "max_list_bytes", "http_max_connections"):
        if getattr(s, name) < 1:
            raise ConfigError(f"CONVEYOR_{name.upper()} must be at least 1")
    if s.max_body_bytes < 0:
        raise ConfigError("CONVEYOR_MAX_BODY_BYTES must be 0 (derived) or a number of bytes")
    if not (math.isfinite(s.dashboard_snapshot) and 0 <= s.dashboard_snapshot <= 60):
        raise ConfigError("CONVEYOR_DASHBOARD_SNAPSHOT must be 0 (every request reads) to 60 "
                          "seconds")
    if not (math.isfinite(s.dashboard_stale) and 0 <= s.dashboard_stale <= 3600):
        raise ConfigError("CONVEYOR_DASHBOARD_STALE must be 0 (a page waits for every read) to "
                          "3600 seconds")
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


# CONVEYOR_* variables that are not settings: the settings file, and what a supervisor
# tells its worker processes (worker/supervisor.py); CONVEYOR_TEST_* belong to test suites
NOT_SETTINGS = frozenset({"CONVEYOR_CONFIG", "CONVEYOR_WORKER_SLOT", "CONVEYOR_SUPERVISOR_PID"})


def warn_unknown_env(env: Mapping[str, str]) -> None:
    """Warn (UnknownSettingWarning; Python shows each message once) about CONVEYOR_*
    variables that name no setting, and suggest the closest name: a typo is the usual
    cause, and unlike an unknown conveyor.toml key it would otherwise pass in silence."""
    known = [f"CONVEYOR_{name.upper()}" for name in _FIELDS]
    for key in sorted(env):
        if (not key.startswith("CONVEYOR_") or key in NOT_SETTINGS or key in known
                or key.startswith("CONVEYOR_TEST_")):
            continue
        names = [name.upper() for name in _FIELDS]  # compare without the common prefix
        close = difflib.get_close_matches(key[len("CONVEYOR_"):], names, n=1, cutoff=0.6)
        hint = (f"; did you mean CONVEYOR_{close[0]}?" if close
                else " (see the README's settings)")
        warnings.warn(f"{key} is not a Conveyor setting and is ignored{hint}",
                      UnknownSettingWarning, stacklevel=2)


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
