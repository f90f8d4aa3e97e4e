"""Jobs waiting to retry: shown as `retrying` with their next try, with a filter of their own
(`state=retrying`, alone or with other states), in the API, the dashboard and the CLI's
views. SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from .harness import Live, assert_error, sign_in


def wait_retrying(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body = client.get(f"/api/v1/jobs/{job_id}").json()
        if body["retrying"]:
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_job_waiting_to_retry_is_retrying_with_a_filter(live: Live, worker: Any,
                                                          admin: httpx.Client) -> None:
    mark = uuid.uuid4().hex[:8]
    failing = admin.post("/api/v1/jobs", json={"task": "patient", "correlation_id": mark}
                         ).json()["id"]
    later = admin.post("/api/v1/jobs", json={"task": "patient", "delay": 900}).json()["id"]
    body = wait_retrying(admin, failing)
    assert body["state"] == "scheduled" and body["attempt"] == 1
    assert 590 < body["run_at"] - time.time() <= 600
    assert admin.get(f"/api/v1/jobs/{later}").json()["retrying"] is False

    listed = admin.get("/api/v1/jobs", params={"state": "retrying", "queue": "patient"}).json()
    ids = [j["id"] for j in listed["jobs"]]
    assert failing in ids and later not in ids
    assert all(j["retrying"] for j in listed["jobs"])
    both = admin.get("/api/v1/jobs", params={"state": "dead,retrying", "queue": "patient"}
                     ).json()["jobs"]
    assert failing in [j["id"] for j in both]
    assert_error(admin.get("/api/v1/jobs", params={"state": "retried"}), 400, "bad_query")

    session = sign_in(live.url, "admin-token")
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": session},
                      timeout=10.0) as browser:
        page = browser.get("/jobs", params=[("state", "retrying"), ("queue", "patient")]).text
        row = page[page.index(f'data-job-id="{failing}"'):]
        row = row[:row.index("</tr>")]
        assert "s-retrying" in row and "next try in 9 min" in row
        assert f'data-job-id="{later}"' not in page
        assert 'value="retrying" checked' in page
