"""The dashboard's HTML and forms over plain HTTP: sign-in cookie, CSRF, tenant scoping."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from .harness import Live, sign_in


@pytest.fixture
def browser_a(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": sign_in(live.url, "token-a")},
                      headers={"Accept": "text/html"}) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no csrf field"
    return found.group(1)


def test_pages_need_sign_in(live: Live) -> None:
    with httpx.Client(base_url=live.url) as anonymous:
        for path in ("/", "/jobs", "/dead", "/queues", "/workers"):
            response = anonymous.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login")
        assert anonymous.get("/login").status_code == 200


def test_login_sets_an_httponly_cookie(live: Live) -> None:
    with httpx.Client(base_url=live.url) as client:
        bad = client.post("/login", data={"token": "nope", "next": "/jobs"})
        assert bad.status_code == 401 and "not valid" in bad.text
        good = client.post("/login", data={"token": "token-a", "next": "//evil.example/x"})
        assert good.status_code == 303 and good.headers["location"] == "/"
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_forms_need_the_csrf_token(live: Live, browser_a: httpx.Client,
                                   admin: httpx.Client) -> None:
    job = browser_a.post("/api/v1/jobs", json={"task": "echo"})
    assert job.status_code == 401  # the cookie alone cannot use the JSON API to write
    job_id = admin.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                              "tenant": "acme"}).json()["id"]
    forged = browser_a.post("/actions", data={"one": f"cancel:{job_id}"})
    assert forged.status_code == 403
    assert admin.get(f"/api/v1/jobs/{job_id}").json()["state"] == "scheduled"
    token = csrf_of(browser_a.get("/jobs").text)
    done = browser_a.post("/actions", data={"one": f"cancel:{job_id}", "csrf": token,
                                            "next": "/jobs"})
    assert done.status_code == 303
    assert admin.get(f"/api/v1/jobs/{job_id}").json()["state"] == "cancelled"


def test_tenant_forms_cannot_touch_other_tenants(browser_a: httpx.Client,
                                                 admin: httpx.Client) -> None:
    theirs = admin.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                              "tenant": "globex"}).json()["id"]
    token = csrf_of(browser_a.get("/jobs").text)
    response = browser_a.post("/actions", data={"ids": [theirs], "action": "cancel",
                                                "csrf": token})
    assert response.status_code == 303
    assert admin.get(f"/api/v1/jobs/{theirs}").json()["state"] == "scheduled"
    assert f'data-job-id="{theirs}"' not in browser_a.get("/jobs").text
    paused = browser_a.post("/queues/default/pause", data={"csrf": token})
    assert paused.status_code == 403
    assert browser_a.get(f"/jobs/{theirs}/row").status_code == 404


def test_row_fragment_is_redacted(admin: httpx.Client) -> None:
    job_id = admin.post("/api/v1/jobs", json={"task": "evaluate", "delay": 600, "payload": {
        "assessment_id": "r", "transcript": "top secret words"}}).json()["id"]
    row = admin.get(f"/jobs/{job_id}/row?select=1")
    assert row.status_code == 200 and row.text.startswith("<tr")
    assert "top secret" not in admin.get(f"/jobs/{job_id}").text


def test_job_id_search_goes_to_the_job(admin: httpx.Client) -> None:
    job_id = admin.post("/api/v1/jobs", json={"task": "echo", "delay": 600}).json()["id"]
    response = admin.get("/jobs", params={"id": f" {job_id} "})
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job_id}"
