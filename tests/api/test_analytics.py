"""The analytics API over a live server and a real worker: tasks, errors, workers, slow
attempts and a job's attempts, every figure scoped to a tenant token's tenant; the error
group actions; bad ranges refused."""

from __future__ import annotations

from typing import Any

import httpx

from .harness import Live, assert_error, wait_state


def _run(client: httpx.Client, task: str, **fields: Any) -> str:
    body = client.post("/api/v1/jobs", json={"task": task, **fields}).json()
    wait_state(client, body["id"], {"completed", "dead"})
    return str(body["id"])


def test_analytics_by_tenant_and_the_group_actions(
        live: Live, admin: httpx.Client, tenant_a: httpx.Client, tenant_b: httpx.Client,
        worker: object) -> None:
    live.flags["fail"] = True
    mine = _run(tenant_a, "flaky")
    theirs = [_run(tenant_b, "flaky") for _ in range(2)]
    _run(tenant_a, "echo", payload={"n": 1})

    everyone = admin.get("/api/v1/analytics/errors?range=1h").json()["errors"]
    [group] = [g for g in everyone if g["type"] == "RuntimeError"]
    assert group["count"] == 3 and group["tasks"] == ["flaky"] and group["dead_jobs"] == 3
    [seen_by_a] = tenant_a.get("/api/v1/analytics/errors").json()["errors"]
    assert (seen_by_a["count"], seen_by_a["sample_job"]) == (1, mine)

    tasks = {t["task"]: t for t in tenant_a.get("/api/v1/analytics/tasks?range=24h")
             .json()["tasks"]}
    assert tasks["flaky"]["counts"]["dead"] == 1 and tasks["echo"]["counts"]["completed"] == 1
    assert len(tasks["echo"]["series"]) == 25 and tasks["echo"]["p50"] is not None  # hours
    slow = tenant_b.get("/api/v1/analytics/slow?range=1h&limit=5").json()["attempts"]
    assert {a["job_id"] for a in slow} == set(theirs)
    [worker_row] = tenant_a.get("/api/v1/analytics/workers").json()["workers"]
    assert worker_row["attempts"] == 2 and worker_row["failures"] == 1
    [attempt] = tenant_a.get(f"/api/v1/jobs/{mine}/attempts").json()["attempts"]
    assert attempt["outcome"] == "dead" and attempt["fingerprint"] == group["fingerprint"]
    assert tenant_a.get(f"/api/v1/jobs/{theirs[0]}/attempts").json()["attempts"] == []

    live.flags["fail"] = False
    retried = tenant_a.post(f"/api/v1/analytics/errors/{group['fingerprint']}/retry")
    assert retried.json() == {"fingerprint": group["fingerprint"], "action": "retry",
                              "jobs": 1}
    wait_state(tenant_a, mine, {"completed"})
    assert admin.get(f"/api/v1/jobs/{theirs[0]}").json()["state"] == "dead"
    discarded = admin.post(f"/api/v1/analytics/errors/{group['fingerprint']}/discard")
    assert discarded.json()["jobs"] == 2
    assert admin.get(f"/api/v1/jobs/{theirs[0]}").status_code == 404
    assert len(admin.get(f"/api/v1/jobs/{theirs[0]}/attempts").json()["attempts"]) == 1


def test_bad_ranges_and_fingerprints_are_refused(admin: httpx.Client) -> None:
    for query in ("range=1y", "range=0h", "range=90d", "limit=0"):
        assert_error(admin.get(f"/api/v1/analytics/tasks?{query}"), 400, "bad_query")
    assert_error(admin.post("/api/v1/analytics/errors/not-a-print/retry"), 400,
                 "bad_fingerprint")


def test_openapi_lists_the_analytics(live: Live) -> None:
    with live.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    for name in ("tasks", "errors", "workers", "slow"):
        assert f"/api/v1/analytics/{name}" in paths
    assert "/api/v1/analytics/errors/{fingerprint}/{action}" in paths


def test_analytics_need_a_token(live: Live) -> None:
    with live.client() as anonymous:
        assert anonymous.get("/api/v1/analytics/tasks").status_code == 401
