"""The OpenAPI 3.1 description of the API, served at /openapi.json (hand-written)."""

from __future__ import annotations

from typing import Any

from ..names import QUEUE_NAME_PATTERN, QUEUE_NAME_RULE
from . import queue_limits
from .analytics import openapi_paths as analytics_paths
from .cron_api import openapi_paths as cron_paths
from .search_api import openapi_params as search_params
from .search_api import openapi_paths as search_paths

ERROR = {"$ref": "#/components/schemas/Error"}
JOB = {"$ref": "#/components/schemas/Job"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed request", 401: "Missing or invalid token",
            403: "Not allowed for this token", 404: "No such job (or another tenant's)",
            409: "Not allowed in the job's state", 413: "Over the size or batch limit",
            415: "The body is not application/json", 422: "Invalid job: names the field",
            503: "Busy with large bodies (Retry-After says when to retry), or the store is down"}
    return {str(c): _json(ERROR, text[c]) for c in codes}


def _op(summary: str, ok: tuple[int, dict[str, Any], str], *errors: int,
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None
        ) -> dict[str, Any]:
    status, schema, text = ok
    op: dict[str, Any] = {"summary": summary,
                          "responses": {str(status): _json(schema, text), **_errors(*errors)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _query(name: str, text: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": {"type": kind}}


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
QUEUE = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
OBJ = {"type": "object"}
QUEUE_NAME = {"type": "string", "pattern": QUEUE_NAME_PATTERN, "maxLength": 100,
              "description": f"{QUEUE_NAME_RULE}; a tenant token may be granted only some"}


def _schemas() -> dict[str, Any]:
    s, n, i = {"type": "string"}, {"type": "number"}, {"type": "integer"}
    nullable_s = {"type": ["string", "null"]}
    nullable_n = {"type": ["number", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "details"],
            "properties": {"code": s, "message": s, "details": OBJ}}}},
        "NewJob": {"type": "object", "required": ["task"], "additionalProperties": False,
                   "properties": {
                       "task": s, "payload": {}, "queue": QUEUE_NAME, "idempotency_key": s,
                       "correlation_id": s, "delay": n,
                       "run_at": {"type": ["number", "string"],
                                  "description": "epoch seconds or ISO 8601 with offset"},
                       "priority": i, "max_attempts": i, "ttl": n,
                       "unique_for": {"type": "number", "description": "seconds the "
                                      "idempotency key stays taken after the job ends"},
                       "tenant": {"type": "string",
                                  "description": "admin tokens only; a tenant token's jobs "
                                                 "always get its tenant"}}},
        "Accepted": {"type": "object", "properties": {
            "id": s, "state": s, "status_url": s, "duplicate": {"type": "boolean"},
            "dropped": {"type": "boolean", "description": "present and true when the job was "
                        "not stored: its key was at its limit under the drop strategy"}}},
        "Job": {"type": "object", "properties": {
            "id": s, "task": s, "queue": s, "payload": {"description": "sensitive fields "
                                                        "read [redacted]"},
            "state": {"enum": ["scheduled", "queued", "running", "completed", "dead",
                               "cancelled"]},
            "priority": i, "attempt": i, "max_attempts": i, "tenant": nullable_s,
            "correlation_id": nullable_s, "idempotency_key": nullable_s,
            "created_at": nullable_n, "run_at": nullable_n, "started_at": nullable_n,
            "finished_at": nullable_n, "expires_at": nullable_n, "progress": nullable_n,
            "progress_step": nullable_s, "duplicate": {"type": "boolean"},
            "result": {}, "errors": {"type": "array", "items": OBJ}, "worker": OBJ,
            "dead_reason": nullable_s, "batch_id": nullable_s, "parent_id": nullable_s,
            "retrying": {"type": "boolean", "description": "waiting to retry: scheduled "
                         "again after a failed attempt, next try at run_at"},
            "status_url": s}},
    }


def _paths() -> dict[str, Any]:
    page = {"type": "object", "properties": {"jobs": {"type": "array", "items": JOB},
                                             "next_cursor": {"type": ["string", "null"]},
                                             "truncated": {"type": "boolean"}}}
    list_params = [_query("state", "comma-separated states; `retrying` for jobs waiting to "
                          "retry (scheduled again after a failed attempt)"),
                   _query("queue", "queue"),
                   _query("task", "task name"), _query("tenant", "admin tokens only"),
                   _query("correlation_id", "correlation id"),
                   _query("idempotency_key", "idempotency key"),
                   _query("batch_id", "batch id"), _query("limit", "1 to 500", "integer"),
                   _query("cursor", "next_cursor of the previous page"),
                   _query("fields", "comma-separated fields of each job; payload, result, "
                          "errors and progress_step only when named here"),
                   *search_params(_query)]
    accepted = (202, {"$ref": "#/components/schemas/Accepted"}, "Accepted")
    return {
        "/api/v1/jobs": {
            "post": _op("Enqueue a job", accepted, 400, 401, 403, 413, 415, 422, 503,
                        body={"$ref": "#/components/schemas/NewJob"}),
            "get": _op("A page of jobs, newest first", (200, page, "Jobs"), 400, 401,
                       params=list_params)},
        "/api/v1/batches": {"post": _op(
            "Enqueue jobs atomically", (202, OBJ, "All accepted"), 400, 401, 403, 413, 415,
            422, 503,
            body={"type": "object", "required": ["jobs"], "properties": {"jobs": {
                "type": "array", "items": {"$ref": "#/components/schemas/NewJob"}}}})},
        "/api/v1/jobs/{id}": {"get": {**_op("One job", (200, JOB, "The job"), 401, 404),
                                      "parameters": [ID]}},
        "/api/v1/jobs/{id}/cancel": {"post": {**_op("Cancel a job", (200, JOB, "The job"),
                                                    401, 404, 409), "parameters": [ID]}},
        "/api/v1/jobs/{id}/retry": {"post": {**_op("Run a dead or failed job again",
                                                   (200, JOB, "The job"), 401, 404, 409),
                                             "parameters": [ID]}},
        "/api/v1/queues": {"get": _op("Queues: backlog, running, throughput, paused",
                                      (200, OBJ, "Queues"), 401)},
        "/api/v1/queues/{name}/pause": {"post": {**_op("Pause a queue", (200, OBJ, "Paused"),
                                                       400, 401, 403), "parameters": [QUEUE]}},
        "/api/v1/queues/{name}/resume": {"post": {**_op("Resume a queue",
                                                        (200, OBJ, "Resumed"), 400, 401, 403),
                                                  "parameters": [QUEUE]}},
        "/api/v1/stats": {"get": _op("Counts, duration percentiles, failure and retry "
                                     "success rates", (200, OBJ, "Stats"), 401)},
        "/api/v1/workers": {"get": _op("Live workers", (200, OBJ, "Workers"), 401, 403)},
        "/api/v1/events": {"get": {"summary": "Server-sent events: `job` (state change) and "
                                              "`progress`", "responses": {"200": {
                                                  "description": "text/event-stream"}},
                                   "parameters": [_query("queue", "comma-separated"),
                                                  _query("state", "comma-separated"),
                                                  _query("id", "comma-separated job ids")]}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Store reachable and schema current", "responses": {
            "200": {"description": "ready"}, "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (admin token)",
                             "responses": {"200": {"description": "text/plain"}}}},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Conveyor", "version": "1", "description":
                 "Submit, watch and steer background jobs. Errors are "
                 '{"error": {"code", "message", "details"}}. Request bodies are '
                 "application/json (415 otherwise); a change asked by a page of another "
                 "origin is 403 (cross_origin)."},
        "components": {"schemas": _schemas(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {**_paths(), **queue_limits.openapi_paths(QUEUE, _op), **analytics_paths(),
                  **search_paths(_query, _op), **cron_paths(_op)},
    }
