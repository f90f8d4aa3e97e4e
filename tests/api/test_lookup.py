"""Finding a job in the dashboard by any unique start or end of its id (`…9c2f41ab`, as the
lists show it), within the caller's tenant. SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import unquote

import httpx

from .harness import Live, sign_in


def browser(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10.0,
                        cookies={"conveyor_session": sign_in(live.url, token)})


def test_go_to_a_job_by_the_start_or_end_of_its_id(live: Live, tenant_a: httpx.Client,
                                                    tenant_b: httpx.Client) -> None:
    mine = tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600}).json()["id"]
    theirs = tenant_b.post("/api/v1/jobs", json={"task": "echo", "delay": 600}).json()["id"]
    with browser(live, "token-a") as page:
        for fragment in (mine, mine[-8:], "…" + mine[-8:], mine[-12:].upper(), mine[:30]):
            went = page.get("/jobs", params={"id": fragment})
            assert went.status_code == 303, (fragment, went.text)
            assert went.headers["location"] == f"/jobs/{mine}", fragment
        missing = page.get("/jobs", params={"id": theirs[-8:]})  # another tenant's job
        assert missing.headers["location"] == "/jobs"
        assert "No job id starts or ends with" in unquote(missing.cookies["conveyor_flash"])
        shared = page.get("/jobs", params={"id": mine[:8]})  # the time prefix of a minute
        if shared.headers["location"] == "/jobs":  # several of this tenant's jobs share it
            assert "give more of it" in unquote(shared.cookies["conveyor_flash"])
        else:
            assert shared.headers["location"] == f"/jobs/{mine}"
        assert page.get("/jobs", params={"id": "zz"}).headers["location"] == "/jobs"
    with browser(live, "admin-token") as page:
        went = page.get("/jobs", params={"id": theirs[-10:]})
        assert went.headers["location"] == f"/jobs/{theirs}"
