"""A tenant token sees and acts on its own tenant's jobs only, everywhere."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from .harness import Live, assert_error


def enqueue(client: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", json={"task": "echo", "delay": 3600, **extra})
    assert response.status_code == 202, response.text
    return client.get(response.json()["status_url"]).json()  # type: ignore[no-any-return]


def test_jobs_get_the_token_tenant(tenant_a: httpx.Client) -> None:
    assert enqueue(tenant_a)["tenant"] == "acme"
    assert enqueue(tenant_a, tenant="acme")["tenant"] == "acme"
    assert_error(tenant_a.post("/api/v1/jobs", json={"task": "echo", "tenant": "globex"}),
                 403, "forbidden")
    assert_error(tenant_a.post("/api/v1/batches", json={"jobs": [
        {"task": "echo"}, {"task": "echo", "tenant": "globex"}]}), 403, "forbidden")


def test_tenant_cannot_see_or_touch_another_tenants_job(tenant_a: httpx.Client,
                                                         tenant_b: httpx.Client,
                                                         admin: httpx.Client) -> None:
    theirs = enqueue(tenant_b)
    path = f"/api/v1/jobs/{theirs['id']}"
    assert_error(tenant_a.get(path), 404, "not_found")
    assert_error(tenant_a.post(path + "/cancel"), 404, "not_found")
    assert_error(tenant_a.post(path + "/retry"), 404, "not_found")
    assert tenant_b.get(path).json()["state"] == "scheduled"  # untouched
    assert admin.get(path).status_code == 200
    page = tenant_a.get(f"/jobs/{theirs['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "data-job-id" not in page.text


def test_lists_and_stats_are_scoped(tenant_a: httpx.Client, tenant_b: httpx.Client) -> None:
    mine = enqueue(tenant_a, queue="scoped")
    theirs = enqueue(tenant_b, queue="scoped")
    listed = tenant_a.get("/api/v1/jobs", params={"limit": "500"}).json()["jobs"]
    assert {j["tenant"] for j in listed} == {"acme"}
    assert mine["id"] in {j["id"] for j in listed} and theirs["id"] not in {j["id"] for j in listed}
    # asking for another tenant is ignored: the token's tenant wins
    forced = tenant_a.get("/api/v1/jobs", params={"tenant": "globex"}).json()["jobs"]
    assert {j["tenant"] for j in forced} <= {"acme"}
    stats_a = tenant_a.get("/api/v1/stats").json()
    stats_b = tenant_b.get("/api/v1/stats").json()
    assert stats_a["by_queue"]["scoped"]["scheduled"] >= 1
    total_a = sum(stats_a["by_state"].values())
    total_b = sum(stats_b["by_state"].values())
    listed_b = tenant_b.get("/api/v1/jobs", params={"limit": "500"}).json()["jobs"]
    assert total_a == len(listed) and total_b == len(listed_b)
    queues = tenant_a.get("/api/v1/queues").json()["queues"]
    scoped = next(q for q in queues if q["name"] == "scoped")
    assert scoped["scheduled"] == sum(1 for j in listed if j["queue"] == "scoped")


def test_admin_only_endpoints_are_403_for_tenants(tenant_a: httpx.Client) -> None:
    assert_error(tenant_a.get("/api/v1/workers"), 403, "forbidden")
    assert_error(tenant_a.post("/api/v1/queues/default/pause"), 403, "forbidden")
    assert_error(tenant_a.post("/api/v1/queues/default/resume"), 403, "forbidden")
    assert_error(tenant_a.get("/metrics"), 403, "forbidden")


def read_events(live: Live, token: str, found: list[dict[str, Any]], ready: threading.Event,
                stop: threading.Event) -> None:
    with live.client(token) as client, client.stream("GET", "/api/v1/events") as response:
        for line in response.iter_lines():
            if line.startswith("event: ready"):
                ready.set()
            if line.startswith("data: ") and line != "data: {}":
                found.append(json.loads(line[6:]))
            if stop.is_set():
                return


def test_event_stream_is_scoped(live: Live, tenant_a: httpx.Client, tenant_b: httpx.Client
                                ) -> None:
    found: list[dict[str, Any]] = []
    ready, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=read_events, args=(live, "token-a", found, ready, stop),
                              daemon=True)
    reader.start()
    assert ready.wait(5)
    theirs = enqueue(tenant_b)
    mine = enqueue(tenant_a)
    tenant_b.post(f"/api/v1/jobs/{theirs['id']}/cancel")
    tenant_a.post(f"/api/v1/jobs/{mine['id']}/cancel")
    deadline = time.monotonic() + 5
    while not any(e["id"] == mine["id"] and e["state"] == "cancelled" for e in found):
        assert time.monotonic() < deadline, found
        time.sleep(0.02)
    stop.set()
    assert all(e["tenant"] == "acme" for e in found)
    assert theirs["id"] not in {e["id"] for e in found}
