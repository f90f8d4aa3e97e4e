"""Issue 12, findings 5, 6 and 12 against the real server, on SQLite and PostgreSQL: NUL bytes,
strict numbers, 405 with Allow, run_at bounds, retrying a queued job, queue names with "/",
the OpenAPI document, errors logged once, Cache-Control on responses carrying payloads."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .harness import Live, assert_error

JSON = {"Content-Type": "application/json"}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[Records]:
    """Every record of conveyor's and uvicorn's loggers, whatever their propagation."""
    handler = Records()
    names = ["conveyor", "uvicorn", "uvicorn.error", "uvicorn.asgi"]
    for name in names:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)


# --- 5: a NUL byte ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["queue", "task", "tenant", "correlation_id",
                                   "idempotency_key", "batch_id", "state", "cursor"])
def test_nul_byte_in_a_filter_is_400(admin: httpx.Client, tenant_a: httpx.Client,
                                     field: str, logged: Records) -> None:
    for client in (admin, tenant_a):
        assert_error(client.get("/api/v1/jobs", params={field: "a\x00b"}), 400, "bad_query")
    assert_error(admin.get(f"/api/v1/jobs?{field}=%00"), 400, "bad_query")
    assert not [r for r in logged.records if r.levelno >= logging.ERROR]


def test_nul_byte_in_a_job_id_is_404(admin: httpx.Client, logged: Records) -> None:
    for path in ("/api/v1/jobs/ab%00cd", "/api/v1/jobs/%00", "/jobs/ab%00cd"):
        assert_error(admin.get(path), 404, "not_found")
    for action in ("cancel", "retry"):
        assert_error(admin.post(f"/api/v1/jobs/ab%00cd/{action}"), 404, "not_found")
    assert_error(admin.get("/api/v1/events?id=%00"), 400, "bad_query")
    assert not [r for r in logged.records if r.levelno >= logging.ERROR]


def test_nul_byte_in_a_payload_is_kept_as_data(live: Live, admin: httpx.Client) -> None:
    accepted = admin.post("/api/v1/jobs", json={"task": "echo", "payload": {"t": "a\x00b"},
                                                "queue": "nul-data"})
    assert accepted.status_code == 202, accepted.text
    job = admin.get(accepted.json()["status_url"]).json()
    assert job["payload"] == {"t": "a\x00b"}


# --- 6: numbers are ASCII ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["\u00b2", "\u0663", "\U0001d7d9", "1\u00b2", "\uff11", "+1",
                                 " 1", "1.0", "-1", "0", "501", "9" * 40])
def test_limit_takes_ascii_digits_only(admin: httpx.Client, raw: str) -> None:
    error = assert_error(admin.get("/api/v1/jobs", params={"limit": raw}), 400, "bad_query")
    assert error["details"] == {"field": "limit"}


def test_limit_in_ascii_works(admin: httpx.Client) -> None:
    assert admin.get("/api/v1/jobs", params={"limit": "007"}).status_code == 200


# --- 12: the smaller ones ---------------------------------------------------------------------


def test_405_says_which_methods_are_allowed(admin: httpx.Client) -> None:
    response = admin.delete("/api/v1/jobs")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    response = admin.put("/api/v1/jobs/abc/cancel", json={})
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    response = admin.post("/healthz", json={})
    assert response.status_code == 405 and "GET" in response.headers["allow"]


@pytest.mark.parametrize(("value", "ok"), [
    (0, True), ("1970-01-01T00:00:00Z", True),
    (-1, False), ("1969-12-31T23:59:59Z", False),
    (1e11, False), ("5138-11-16T09:46:40Z", False), ("9999-12-31T23:59:59+00:00", False),
    (99_999_999_999, True), ("5138-11-16T09:46:39Z", True),
])
def test_run_at_bounds_are_the_same_for_numbers_and_iso_times(
        live: Live, admin: httpx.Client, value: Any, ok: bool) -> None:
    response = admin.post("/api/v1/jobs", json={"task": "echo", "run_at": value,
                                                "queue": "run-at-bounds"})
    if ok:
        assert response.status_code == 202, response.text
        admin.post(response.json()["status_url"] + "/cancel")
    else:
        error = assert_error(response, 422, "invalid_request")
        assert error["details"]["errors"][0]["field"] == "run_at"


def test_retrying_a_queued_job_is_409(admin: httpx.Client) -> None:
    queue = f"paused-{uuid.uuid4().hex[:8]}"
    assert admin.post(f"/api/v1/queues/{queue}/pause").status_code == 200
    job = admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue}).json()
    error = assert_error(admin.post(job["status_url"] + "/retry"), 409, "invalid_transition")
    assert error["details"]["state"] == "queued"
    assert admin.get(job["status_url"]).json()["state"] == "queued"
    admin.post(job["status_url"] + "/cancel")
    assert admin.post(job["status_url"] + "/retry").status_code == 200  # cancelled: fine
    admin.post(job["status_url"] + "/cancel")


def test_a_queue_name_with_a_slash_can_be_paused_and_resumed(admin: httpx.Client) -> None:
    name = f"eu-west/slow-{uuid.uuid4().hex[:6]}"
    response = admin.post(f"/api/v1/queues/{name}/pause")
    assert response.status_code == 200, response.text
    assert response.json() == {"name": name, "paused": True}
    job = admin.post("/api/v1/jobs", json={"task": "echo", "queue": name}).json()
    queues = {q["name"]: q for q in admin.get("/api/v1/queues").json()["queues"]}
    assert queues[name]["paused"] is True
    assert admin.post(f"/api/v1/queues/{name}/resume").json() == {"name": name,
                                                                   "paused": False}
    admin.post(job["status_url"] + "/cancel")


def test_openapi_describes_progress_step_and_duplicate(admin: httpx.Client) -> None:
    document = admin.get("/openapi.json").json()
    job = document["components"]["schemas"]["Job"]["properties"]
    assert {"progress_step", "duplicate"} <= set(job)


def test_an_unhandled_error_is_logged_once(live: Live, admin: httpx.Client,
                                           logged: Records, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    def broken(**_: Any) -> Any:
        raise RuntimeError("a bug on purpose")

    monkeypatch.setattr(live.app, "stats", broken)
    response = admin.get("/api/v1/stats")
    assert_error(response, 500, "internal")
    assert "a bug on purpose" not in response.text
    errors = [r for r in logged.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].exc_info is not None


def test_responses_that_carry_payloads_are_not_stored_by_caches(admin: httpx.Client) -> None:
    accepted = admin.post("/api/v1/jobs", json={"task": "echo", "payload": {"secret": 1},
                                                "queue": "no-store"})
    for response in (accepted, admin.get(accepted.json()["status_url"]),
                     admin.get("/api/v1/jobs", params={"queue": "no-store"}),
                     admin.get("/api/v1/stats"),
                     admin.get(accepted.json()["status_url"].removeprefix("/api/v1"),
                               headers={"Accept": "text/html"})):
        assert response.headers.get("cache-control") == "no-store", response.url
