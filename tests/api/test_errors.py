"""Bad input is answered 4xx with the error body, never a stack trace, and stores nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from conveyor.job import JobFilter

from .harness import Live, assert_error, sign_in

JSON = {"Content-Type": "application/json"}


def stored(live: Live, correlation: str) -> int:
    return len(live.app.list_jobs(JobFilter(correlation_id=correlation), limit=100))


@pytest.mark.parametrize(("body", "field"), [
    ({"payload": {}}, "task"),
    ({"task": 5}, "task"),
    ({"task": ""}, "task"),
    ({"task": "echo", "priority": "high"}, "priority"),
    ({"task": "echo", "priority": True}, "priority"),
    ({"task": "echo", "priority": 1.5}, "priority"),
    ({"task": "echo", "delay": -1}, "delay"),
    ({"task": "echo", "delay": "soon"}, "delay"),
    ({"task": "echo", "run_at": "tomorrow"}, "run_at"),
    ({"task": "echo", "run_at": "2030-01-01T00:00:00"}, "run_at"),
    ({"task": "echo", "queue": ["a"]}, "queue"),
    ({"task": "echo", "queue": "x" * 101}, "queue"),
    ({"task": "echo", "idempotency_key": "k" * 256}, "idempotency_key"),
    ({"task": "echo", "queue": "line\nbreak"}, "queue"),
    ({"task": "echo", "queue": "with space"}, "queue"),
    ({"task": "echo", "queue": "[/]"}, "queue"),
    ({"task": "echo", "queue": "émails"}, "queue"),
    ({"task": "echo", "max_attempts": 0}, "max_attempts"),
    ({"task": "echo", "ttl": 0}, "ttl"),
    ({"task": "echo", "colour": "red"}, "colour"),
])
def test_wrong_types_are_422_naming_the_field(live: Live, admin: httpx.Client,
                                              body: dict[str, object], field: str) -> None:
    correlation = uuid.uuid4().hex
    error = assert_error(admin.post("/api/v1/jobs", json={**body, "correlation_id": correlation}),
                         422, "invalid_request")
    assert error["details"]["errors"][0]["field"] == field
    assert stored(live, correlation) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", "{\"task\": \"é".encode("latin-1")])
def test_malformed_json_is_400(admin: httpx.Client, raw: bytes) -> None:
    assert_error(admin.post("/api/v1/jobs", content=raw,
                            headers={"Content-Type": "application/json"}), 400, "malformed_json")


def test_body_that_is_not_an_object_is_422(admin: httpx.Client) -> None:
    for body in (b"[1, 2]", b'"echo"', b"3", b"null"):
        assert_error(admin.post("/api/v1/jobs", content=body, headers=JSON), 422,
                     "invalid_request")


def test_unknown_task_is_422(live: Live, admin: httpx.Client) -> None:
    correlation = uuid.uuid4().hex
    error = assert_error(admin.post("/api/v1/jobs", json={"task": "no_such_task",
                                                          "correlation_id": correlation}),
                         422, "unknown_task")
    assert "echo" in error["message"]
    assert stored(live, correlation) == 0


def test_schema_violation_is_422_with_fields(admin: httpx.Client) -> None:
    error = assert_error(admin.post("/api/v1/jobs", json={
        "task": "evaluate", "payload": {"assessment_id": "a"}}), 422, "payload_invalid")
    assert error["details"]["errors"][0]["field"] == "transcript"


def test_huge_payload_is_413(live: Live, admin: httpx.Client) -> None:
    limit = live.app.settings.max_payload_bytes
    correlation = uuid.uuid4().hex
    just_over = {"task": "echo", "payload": {"blob": "x" * limit}, "correlation_id": correlation}
    assert_error(admin.post("/api/v1/jobs", json=just_over), 413, "payload_too_large")
    way_over = b'{"task": "echo", "payload": "' + b"x" * (3 * limit) + b'"}'
    assert_error(admin.post("/api/v1/jobs", content=way_over, headers=JSON), 413,
                 "payload_too_large")
    assert stored(live, correlation) == 0


@pytest.mark.parametrize("text", [
    "'; DROP TABLE conveyor_jobs; --", "<script>alert(1)</script>", "../../etc/passwd",
    "{{7*7}}", "%00", "\u202e\u0000".strip("\u0000"), "Robert'); --"])
def test_injection_like_strings_are_only_data(live: Live, admin: httpx.Client,
                                              text: str) -> None:
    body = admin.post("/api/v1/jobs", json={"task": "echo", "payload": {"text": text},
                                            "correlation_id": text, "delay": 3600})
    assert body.status_code == 202, body.text
    job = admin.get(body.json()["status_url"]).json()
    assert job["payload"] == {"text": text} and job["correlation_id"] == text
    listed = admin.get("/api/v1/jobs", params={"correlation_id": text}).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    page = admin.get(f"/jobs/{job['id']}", headers={"Accept": "text/html"}).text
    assert "<script>alert(1)</script>" not in page
    assert admin.get("/api/v1/stats").status_code == 200  # the table is still there
    assert_error(admin.get("/api/v1/jobs/" + "' OR 1=1 --"), 404, "not_found")


def test_bad_query_parameters_are_400(admin: httpx.Client) -> None:
    assert_error(admin.get("/api/v1/jobs", params={"state": "exploded"}), 400, "bad_query")
    assert_error(admin.get("/api/v1/jobs", params={"limit": "0"}), 400, "bad_query")
    assert_error(admin.get("/api/v1/jobs", params={"limit": "many"}), 400, "bad_query")
    assert_error(admin.get("/api/v1/jobs", params={"cursor": "' OR 1=1"}), 400, "bad_query")


def test_auth_errors(live: Live) -> None:
    with live.client() as anonymous:
        error = assert_error(anonymous.get("/api/v1/jobs"), 401, "unauthorized")
        assert "Bearer" in error["message"]
        assert_error(anonymous.post("/api/v1/jobs", json={"task": "echo"}), 401)
        assert_error(anonymous.get("/api/v1/events"), 401)
        assert_error(anonymous.get("/metrics"), 401)
    with live.client("not-a-token") as wrong:
        assert_error(wrong.get("/api/v1/stats"), 401, "unauthorized")


def test_cookie_alone_cannot_change_state(live: Live) -> None:
    session = sign_in(live.url, "admin-token")
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": session}) as browser:
        assert browser.get("/api/v1/stats").status_code == 200
        assert_error(browser.post("/api/v1/jobs", json={"task": "echo"}), 401)


def test_unknown_routes_and_methods(admin: httpx.Client) -> None:
    assert_error(admin.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(admin.delete("/api/v1/jobs"), 405, "method_not_allowed")
