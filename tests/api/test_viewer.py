"""The read-only role: a viewer token (`*:viewer` for every tenant, `acme:viewer` for one)
reads what its scope shows in the API and the dashboard, and every change it asks for is
refused with 403 read_only and changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from conveyor.errors import ConfigError
from conveyor.web.auth import parse_tokens

from .harness import Live, assert_error, sign_in


def test_viewer_tokens_parse() -> None:
    tokens = parse_tokens("v=*:viewer,va=acme:viewer")
    assert tokens["v"].read_only and tokens["v"].scope is None and not tokens["v"].admin
    assert tokens["va"].read_only and tokens["va"].scope == "acme"
    for bad in ("t=*:tenant", "v=*:viewer;queues=a"):
        with pytest.raises(ConfigError):
            parse_tokens(bad)


def test_viewer_reads_and_changes_nothing(live: Live, admin: httpx.Client,
                                          tenant_a: httpx.Client,
                                          tenant_b: httpx.Client) -> None:
    queue = f"view-{uuid.uuid4().hex[:8]}"
    mine = tenant_a.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                               "delay": 600}).json()["id"]
    theirs = tenant_b.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                                 "delay": 600}).json()["id"]
    with live.client("viewer-token") as viewer, live.client("viewer-a") as viewer_a:
        listed = {j["id"] for j in viewer.get("/api/v1/jobs", params={"queue": queue}).json()
                  ["jobs"]}
        assert listed == {mine, theirs}
        assert viewer.get(f"/api/v1/jobs/{theirs}").status_code == 200
        assert {j["id"] for j in viewer_a.get("/api/v1/jobs", params={"queue": queue}).json()
                ["jobs"]} == {mine}
        assert viewer_a.get(f"/api/v1/jobs/{theirs}").status_code == 404
        assert viewer.get("/api/v1/stats").status_code == 200

        for client in (viewer, viewer_a):
            assert_error(client.post("/api/v1/jobs", json={"task": "echo", "queue": queue}),
                         403, "read_only")
            assert_error(client.post(f"/api/v1/jobs/{mine}/cancel"), 403, "read_only")
            assert_error(client.post(f"/api/v1/queues/{queue}/pause"), 403, "read_only")
    jobs = admin.get("/api/v1/jobs", params={"queue": queue}).json()["jobs"]
    assert len(jobs) == 2 and {j["state"] for j in jobs} == {"scheduled"}
    paused = {q["name"]: q["paused"] for q in admin.get("/api/v1/queues").json()["queues"]}
    assert not paused.get(queue)


def test_viewer_dashboard_offers_no_actions_and_refuses_forms(live: Live,
                                                               tenant_a: httpx.Client,
                                                               admin: httpx.Client) -> None:
    job_id = tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600}).json()["id"]
    session = sign_in(live.url, "viewer-token")
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": session},
                      timeout=10.0) as browser:
        page = browser.get("/jobs")
        assert page.status_code == 200 and job_id in page.text
        assert 'id="bulk"' not in page.text and "Cancel selected" not in page.text
        detail = browser.get(f"/jobs/{job_id}").text
        assert 'value="cancel:' not in detail
        assert "viewer" in page.text  # who is signed in
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None  # the sign-out form's: a genuine form token of this session
        refused = browser.post("/actions", data={"csrf": csrf[1], "one": f"cancel:{job_id}",
                                                 "next": "/jobs"})
        assert refused.status_code == 403 and "read_only" in refused.text
        refused = browser.post("/queues/default/pause", data={"csrf": csrf[1]})
        assert refused.status_code == 403
        out = browser.post("/logout", data={"csrf": csrf[1]})
        assert out.status_code == 303
    assert admin.get(f"/api/v1/jobs/{job_id}").json()["state"] == "scheduled"
