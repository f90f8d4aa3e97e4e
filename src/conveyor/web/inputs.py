"""Reading and checking request bodies and query strings before anything reaches the app."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from ..job import JobFilter, parse_states
from ..names import QUEUE_NAME_RULE, is_queue_name
from .auth import Principal
from .problems import ApiError

INT_RANGE = (-(2**31), 2**31 - 1)
YEAR = 365 * 24 * 3600.0
STRING_FIELDS = {"task": 200, "queue": 100, "idempotency_key": 255, "correlation_id": 255,
                 "tenant": 255}
NUMBER_FIELDS = {"delay": (0.0, 10 * YEAR), "ttl": (0.001, 10 * YEAR),
                 "unique_for": (0.001, 10 * YEAR)}
INT_FIELDS = {"priority": INT_RANGE, "max_attempts": (1, 1000)}
JOB_FIELDS = frozenset({*STRING_FIELDS, *NUMBER_FIELDS, *INT_FIELDS, "payload", "run_at"})


def job_spec(data: Any, principal: Principal, where: str = "") -> tuple[str, Any, dict[str, Any]]:
    """(task, payload, options) from one job object; 422 naming every bad field."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, dict):
        _invalid([{"field": where or "(body)", "message": "must be a JSON object"}])
    errors = [{"field": prefix + k, "message": "unknown field"} for k in data
              if k not in JOB_FIELDS]
    options: dict[str, Any] = {}
    for name, value in data.items():
        if name in JOB_FIELDS and name != "payload" and value is not None:
            problem = _check(name, value)
            if problem:
                errors.append({"field": prefix + name, "message": problem})
            else:
                options[name] = _convert(name, value)
    if "task" not in options and not any(e["field"] == prefix + "task" for e in errors):
        errors.append({"field": prefix + "task", "message": "is required"})
    tenant_problem = _apply_tenant(options, principal)
    if tenant_problem:
        raise ApiError(403, "forbidden", tenant_problem, {"field": prefix + "tenant"})
    if errors:
        _invalid(errors)
    return options.pop("task"), data.get("payload"), options


def _invalid(errors: list[dict[str, str]]) -> None:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ApiError(422, "invalid_request", f"{first['field']}: {first['message']}{more}",
                   {"errors": errors})


def _check(name: str, value: Any) -> str | None:
    if name in STRING_FIELDS:
        if not isinstance(value, str):
            return "must be a string"
        if not 0 < len(value) <= STRING_FIELDS[name]:
            return f"must be 1 to {STRING_FIELDS[name]} characters"
        if _has_control(value):
            return "must not contain control characters"
        return None if name != "queue" or is_queue_name(value) else f"must be {QUEUE_NAME_RULE}"
    if name in INT_FIELDS:
        low, high = INT_FIELDS[name]
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        return None if low <= value <= high else f"must be between {low} and {high}"
    if name in NUMBER_FIELDS:
        low_f, high_f = NUMBER_FIELDS[name]
        if not _is_number(value):
            return "must be a number of seconds"
        return None if low_f <= value <= high_f else f"must be between {low_f:g} and {high_f:g}"
    return _check_run_at(value)


RUN_AT_RANGE = (0.0, 1e11)  # 1970 to the year 5138, as a number or as an ISO 8601 time
RUN_AT_RULE = "must be from 1970-01-01T00:00:00Z to epoch second 1e11 (year 5138)"


def _check_run_at(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return "must be epoch seconds or an ISO 8601 time with a UTC offset"
        if not parsed.tzinfo:
            return "needs a UTC offset, e.g. 2030-01-01T00:00:00Z"
        try:
            value = parsed.timestamp()
        except (OverflowError, ValueError):
            return RUN_AT_RULE
    if _is_number(value):
        return None if RUN_AT_RANGE[0] <= value < RUN_AT_RANGE[1] else RUN_AT_RULE
    return "must be epoch seconds or an ISO 8601 time"


def _convert(name: str, value: Any) -> Any:
    if name == "run_at" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def _apply_tenant(options: dict[str, Any], principal: Principal) -> str | None:
    """A tenant token's jobs always get its tenant; it may not name another one."""
    if principal.admin:
        return None
    asked = options.get("tenant")
    if asked is not None and asked != principal.tenant:
        return f"a token of tenant {principal.tenant!r} cannot enqueue for tenant {asked!r}"
    options["tenant"] = principal.tenant
    return None


# --- query strings ----------------------------------------------------------------------------


def job_filter(params: Any, principal: Principal) -> JobFilter:
    """The JobFilter of a jobs query; a tenant token is always limited to its tenant.
    `state` is comma-separated and may repeat (the dashboard's checkboxes); `retrying`
    selects jobs waiting to retry, as well as the states named."""
    raw = getattr(params, "getlist", lambda name: [params.get(name) or ""])("state")
    try:
        states, retrying = parse_states(",".join(raw))
    except ValueError as exc:
        raise ApiError(400, "bad_query", str(exc), {"field": "state"}) from None
    tenant = principal.scope if principal.scope is not None else (params.get("tenant") or None)
    return JobFilter(states=states, queue=_text(params, "queue"), task=_text(params, "task"),
                     tenant=tenant, correlation_id=_text(params, "correlation_id"),
                     idempotency_key=_text(params, "idempotency_key"),
                     batch_id=_text(params, "batch_id"), retrying=retrying)


def _text(params: Any, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > 255:
        raise ApiError(400, "bad_query", f"{name} is longer than 255 characters",
                       {"field": name})
    return str(value)


def limit_of(params: Any, default: int = 50, most: int = 500) -> int:
    return whole_number(params, "limit", 1, most, default)


def whole_number(params: Any, name: str, low: int, high: int, default: int) -> int:
    """A numeric query parameter: ASCII digits only (superscripts, Arabic-Indic or
    mathematical digits are refused, as `+1`, `1.0` and ` 1` are), from `low` to `high`;
    400 otherwise."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not is_ascii_digits(raw) or len(raw) > 18 or not low <= int(raw) <= high:
        raise ApiError(400, "bad_query", f"{name} must be a whole number from {low} to {high}",
                       {"field": name})
    return int(raw)


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty string of 0-9 only (str.isdigit alone lets `²` and `٣` in)."""
    return text.isascii() and text.isdigit()


def cursor_of(params: Any) -> str | None:
    raw = params.get("cursor") or None
    if raw is not None and (len(raw) > 64 or not all(c in "0123456789abcdef-" for c in raw)):
        raise ApiError(400, "bad_query", "cursor is not one this API gave out",
                       {"field": "cursor"})
    return raw


def trail_of(params: Any) -> list[str]:
    """The cursors of the pages before this one, newest first ("0": the first page), so a
    keyset-paged list can go back a page as well as forward; at most 100 kept."""
    raw = params.get("trail") or ""
    trail = [c for c in raw.split(",") if c][-100:]
    if len(raw) > 6500 or not all(c == "0" or cursor_of({"cursor": c}) for c in trail):
        raise ApiError(400, "bad_query", "trail is not one this dashboard gave out",
                       {"field": "trail"})
    return trail
