"""Enqueue, read, list, cancel and retry over HTTP against a real server."""

from __future__ import annotations

import uuid

import httpx

from .harness import Live, assert_error, wait_state


def key() -> str:
    return uuid.uuid4().hex


def test_enqueue_answers_202_with_status_url(live: Live, admin: httpx.Client, worker: object
                                              ) -> None:
    response = admin.post("/api/v1/jobs", json={"task": "echo", "payload": {"n": 1}})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "state", "status_url", "duplicate"}
    assert body["state"] in ("queued", "running", "completed") and body["duplicate"] is False
    assert response.headers["location"] == body["status_url"]
    done = wait_state(admin, body["id"], {"completed"})
    assert done["result"] == {"echo": {"n": 1}}
    assert done["status_url"] == body["status_url"]
    assert done["worker"]["id"]


def test_repeated_idempotency_key_answers_the_existing_job(admin: httpx.Client) -> None:
    job = {"task": "echo", "payload": {}, "idempotency_key": key(), "delay": 3600}
    first = admin.post("/api/v1/jobs", json=job).json()
    second = admin.post("/api/v1/jobs", json=job)
    assert second.status_code == 202
    assert second.json()["id"] == first["id"]
    assert second.json()["duplicate"] is True
    assert first["state"] == "scheduled"


def test_options_are_applied(admin: httpx.Client) -> None:
    body = admin.post("/api/v1/jobs", json={
        "task": "echo", "payload": {"x": "y"}, "queue": "custom", "priority": 7,
        "correlation_id": "req-42", "max_attempts": 5, "run_at": "2099-01-01T00:00:00Z",
        "tenant": "acme"}).json()
    job = admin.get(body["status_url"]).json()
    assert (job["queue"], job["priority"], job["correlation_id"], job["max_attempts"],
            job["tenant"], job["state"]) == ("custom", 7, "req-42", 5, "acme", "scheduled")
    assert job["run_at"] == 4070908800.0


def test_sensitive_fields_are_redacted_everywhere(live: Live, admin: httpx.Client) -> None:
    secret = "the candidate said something private"
    body = admin.post("/api/v1/jobs", json={
        "task": "evaluate", "payload": {"assessment_id": "a-1", "transcript": secret},
        "delay": 3600}).json()
    job = admin.get(body["status_url"]).json()
    assert job["payload"] == {"assessment_id": "a-1", "transcript": "[redacted]", "score": 0}
    listing = admin.get("/api/v1/jobs", params={"task": "evaluate", "fields": "payload"}).text
    assert secret not in listing and "[redacted]" in listing
    page = admin.get(f"/jobs/{body['id']}").text
    assert secret not in page and "[redacted]" in page
    assert live.app.get(body["id"]).payload["transcript"] == secret  # stored intact


def test_list_filters_and_cursor(admin: httpx.Client) -> None:
    correlation = key()
    ids = [admin.post("/api/v1/jobs", json={"task": "echo", "delay": 3600, "queue": "paging",
                                            "correlation_id": correlation}).json()["id"]
           for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"correlation_id": correlation, "limit": "2", "state": "scheduled"}
        if cursor:
            params["cursor"] = cursor
        page = admin.get("/api/v1/jobs", params=params).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    only = admin.get("/api/v1/jobs", params={"queue": "paging", "state": "completed"}).json()
    assert only["jobs"] == []


def test_cancel_and_retry(admin: httpx.Client) -> None:
    body = admin.post("/api/v1/jobs", json={"task": "echo", "delay": 3600}).json()
    cancelled = admin.post(f"/api/v1/jobs/{body['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = admin.post(f"/api/v1/jobs/{body['id']}/cancel")  # idempotent
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    retried = admin.post(f"/api/v1/jobs/{body['id']}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] in ("queued", "running", "completed")


def test_dead_job_retried_completes(live: Live, admin: httpx.Client, worker: object) -> None:
    live.flags["fail"] = True
    body = admin.post("/api/v1/jobs", json={"task": "flaky"}).json()
    dead = wait_state(admin, body["id"], {"dead"})
    assert dead["errors"][0]["type"] == "RuntimeError"
    assert "Traceback" in (dead["errors"][0]["traceback"] or "")
    live.flags["fail"] = False
    try:
        assert admin.post(f"/api/v1/jobs/{body['id']}/retry").status_code == 200
        assert wait_state(admin, body["id"], {"completed"})["result"] == "ok"
    finally:
        live.flags["fail"] = True
    assert_error(admin.post(f"/api/v1/jobs/{body['id']}/retry"), 409, "invalid_transition")
    error = assert_error(admin.post(f"/api/v1/jobs/{body['id']}/cancel"), 409,
                         "invalid_transition")
    assert error["details"]["state"] == "completed"


def test_unknown_job_is_404(admin: httpx.Client) -> None:
    missing = "01a00000-0000-7000-8000-000000000000"
    assert_error(admin.get(f"/api/v1/jobs/{missing}"), 404, "not_found")
    assert_error(admin.post(f"/api/v1/jobs/{missing}/cancel"), 404, "not_found")
    assert_error(admin.post(f"/api/v1/jobs/{missing}/retry"), 404, "not_found")
