"""POST /api/v1/batches: atomic, 422 naming the bad member, 413 over the limit."""

from __future__ import annotations

import uuid

import httpx

from .harness import Live, assert_error


def count(live: Live, correlation: str) -> int:
    from conveyor.job import JobFilter

    return len(live.app.list_jobs(JobFilter(correlation_id=correlation), limit=5000))


def test_batch_is_enqueued_atomically(live: Live, admin: httpx.Client) -> None:
    correlation = uuid.uuid4().hex
    jobs = [{"task": "echo", "payload": {"i": i}, "correlation_id": correlation, "delay": 60}
            for i in range(3)]
    response = admin.post("/api/v1/batches", json={"jobs": jobs})
    assert response.status_code == 202
    body = response.json()
    assert len(body["jobs"]) == 3 and body["batch_id"]
    assert all(j["status_url"].endswith(j["id"]) for j in body["jobs"])
    listed = admin.get("/api/v1/jobs", params={"batch_id": body["batch_id"]}).json()["jobs"]
    assert len(listed) == 3


def test_one_invalid_member_stores_nothing(live: Live, admin: httpx.Client) -> None:
    correlation = uuid.uuid4().hex
    good = {"task": "echo", "correlation_id": correlation}
    bad_schema = {"task": "evaluate", "payload": {"assessment_id": 5},
                  "correlation_id": correlation}
    error = assert_error(admin.post("/api/v1/batches", json={"jobs": [good, good, bad_schema]}),
                         422, "payload_invalid")
    assert error["details"]["index"] == 2
    assert any(e["field"].startswith("jobs[2].") for e in error["details"]["errors"])
    error = assert_error(admin.post("/api/v1/batches", json={"jobs": [
        good, {"task": "echo", "priority": "high", "correlation_id": correlation}]}),
        422, "invalid_request")
    assert error["details"]["errors"][0]["field"] == "jobs[1].priority"
    error = assert_error(admin.post("/api/v1/batches", json={"jobs": [
        good, {"task": "no_such_task", "correlation_id": correlation}]}), 422, "unknown_task")
    assert error["details"]["index"] == 1 and "jobs[1]" in error["message"]
    assert count(live, correlation) == 0


def test_over_the_batch_limit_is_413(live: Live, admin: httpx.Client) -> None:
    limit = live.app.settings.max_batch
    correlation = uuid.uuid4().hex
    jobs = [{"task": "echo", "correlation_id": correlation}] * (limit + 1)
    error = assert_error(admin.post("/api/v1/batches", json={"jobs": jobs}), 413,
                         "batch_too_large")
    assert error["details"] == {"size": limit + 1, "limit": limit}
    assert count(live, correlation) == 0


def test_malformed_batches(admin: httpx.Client) -> None:
    assert_error(admin.post("/api/v1/batches", json={"jobs": "nope"}), 422)
    assert_error(admin.post("/api/v1/batches", json=[{"task": "echo"}]), 422)
    assert_error(admin.post("/api/v1/batches", json={"jobs": []}), 422)
    assert_error(admin.post("/api/v1/batches", json={"jobs": [], "extra": 1}), 422)
    assert_error(admin.post("/api/v1/batches", content=b"{not json",
                            headers={"Content-Type": "application/json"}), 400,
                 "malformed_json")
