"""Finding jobs over HTTP: GET /api/v1/jobs with task_contains, queue_contains,
payload=field:value, error and scan, and GET /api/v1/names for autocomplete. Every answer
is tenant-scoped; a Sensitive field is refused with a 400 that says so; a bounded scan says
how far it read. SQLite, and PostgreSQL in CI."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from tests.polling import wait_until

from .harness import Live, sign_in


def jobs(client: httpx.Client, **params: Any) -> dict[str, Any]:
    reply = client.get("/api/v1/jobs", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_payload_search_is_tenant_scoped(admin: httpx.Client, tenant_a: httpx.Client,
                                         tenant_b: httpx.Client) -> None:
    order = f"ord-{secrets.token_hex(4)}"
    mine = tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                               "payload": {"order_id": order}}).json()["id"]
    theirs = tenant_b.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                                 "payload": {"order_id": order}}).json()["id"]
    tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                        "payload": {"order_id": order + "x"}})
    found = jobs(tenant_a, payload=f"order_id:{order}")
    assert [j["id"] for j in found["jobs"]] == [mine]
    assert found["search"]["scanned"] >= 2 and found["search"]["scan_limit"] == 1000
    assert isinstance(found["search"]["note"], str)
    assert [j["id"] for j in jobs(tenant_b, payload=f"order_id:{order}")["jobs"]] == [theirs]
    both = jobs(admin, payload=f"order_id:{order}", task="echo", fields="id,payload")
    assert [j["id"] for j in both["jobs"]] == [theirs, mine]
    assert both["jobs"][0]["payload"] == {"order_id": order}
    # an admin naming a tenant gets that tenant's; a tenant token cannot widen its scope
    assert [j["id"] for j in jobs(admin, payload=f"order_id:{order}",
                                  tenant="acme")["jobs"]] == [mine]
    assert [j["id"] for j in jobs(tenant_a, payload=f"order_id:{order}",
                                  tenant="globex")["jobs"]] == [mine]


def test_a_sensitive_field_is_refused_with_400(admin: httpx.Client,
                                               tenant_a: httpx.Client) -> None:
    tenant_a.post("/api/v1/jobs", json={"task": "evaluate", "delay": 600, "payload": {
        "assessment_id": "a-1", "transcript": "secret words"}})
    for client in (admin, tenant_a):
        for params in ({"payload": "transcript:secret words"},
                       {"payload": "transcript:x", "task": "evaluate"}):
            refused = client.get("/api/v1/jobs", params=params)
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["code"] == "search_refused"
            assert "'transcript' is marked Sensitive" in error["message"]
            assert error["details"] == {"field": "payload"}
    assert jobs(tenant_a, payload="assessment_id:a-1", task="evaluate")["jobs"]


def test_unreadable_search_parameters_are_400(admin: httpx.Client) -> None:
    for params, field in (({"payload": "no-colon"}, "payload"), ({"scan": "0"}, "scan"),
                          ({"scan": "10001"}, "scan"), ({"error": "x" * 201}, "error"),
                          ({"task_contains": "a\x01"}, "task_contains")):
        refused = admin.get("/api/v1/jobs", params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["error"]["details"]["field"] == field, params


def test_a_bounded_scan_goes_on_from_its_cursor(tenant_a: httpx.Client) -> None:
    mark = secrets.token_hex(4)
    ids = [tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600, "payload": {
        "mark": mark if n % 2 == 0 else "other"}}).json()["id"] for n in range(5)]
    first = jobs(tenant_a, payload=f"mark:{mark}", scan=2)
    assert [j["id"] for j in first["jobs"]] == [ids[4]]
    assert first["search"]["scanned"] == 2 and not first["search"]["exhausted"]
    assert "newest 2 candidate jobs" in first["search"]["note"]
    assert first["next_cursor"] == ids[3]
    second = jobs(tenant_a, payload=f"mark:{mark}", scan=2, cursor=first["next_cursor"])
    assert [j["id"] for j in second["jobs"]] == [ids[2]]


def test_error_search_reads_the_last_error(live: Live, worker: Any, admin: httpx.Client,
                                           tenant_a: httpx.Client,
                                           tenant_b: httpx.Client) -> None:
    live.flags["fail"] = True
    failed = tenant_a.post("/api/v1/jobs", json={"task": "flaky", "payload": {}}).json()["id"]
    wait_until(lambda: tenant_a.get(f"/api/v1/jobs/{failed}").json()["state"] == "dead",
               30, "the flaky job to die")
    found = jobs(tenant_a, error="FAILED ON PURPOSE", fields="id,errors")
    assert failed in [j["id"] for j in found["jobs"]]
    assert all("failed on purpose" in j["errors"][-1]["message"] for j in found["jobs"])
    assert found["search"]["exhausted"]
    assert failed not in [j["id"] for j in jobs(tenant_b, error="on purpose")["jobs"]]
    assert failed in [j["id"] for j in jobs(admin, error="RuntimeError: flaky")["jobs"]]
    assert jobs(tenant_a, error=f"never-{secrets.token_hex(4)}")["jobs"] == []


def test_name_fragments_and_autocomplete_are_tenant_scoped(
        live: Live, admin: httpx.Client, tenant_a: httpx.Client, tenant_b: httpx.Client) -> None:
    queue = f"qa-{secrets.token_hex(3)}"
    mine = tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                               "queue": queue}).json()["id"]
    found = jobs(tenant_a, queue_contains=queue[:6].upper() + queue[6:])
    assert [j["id"] for j in found["jobs"]] == [mine]
    assert found["search"] == {"tasks": [], "queues": [queue]}
    assert jobs(tenant_b, queue_contains=queue) == {
        "jobs": [], "next_cursor": None, "truncated": False, "search": {"tasks": [],
                                                                        "queues": []}}
    echoes = jobs(tenant_a, task_contains="ECH", queue_contains=queue)
    assert [j["id"] for j in echoes["jobs"]] == [mine]

    names = tenant_a.get("/api/v1/names", params={"q": queue[:5]})
    assert names.status_code == 200 and queue in names.json()["queues"]
    assert queue not in tenant_b.get("/api/v1/names", params={"q": "qa-"}).json()["queues"]
    everything = admin.get("/api/v1/names", params={"q": "EVAL"}).json()
    assert everything["tasks"] == ["evaluate"]  # the app's own tasks, for an admin
    assert tenant_b.get("/api/v1/names", params={"q": "evaluate"}).json()["tasks"] == []
    limited = admin.get("/api/v1/names", params={"limit": "1"}).json()
    assert len(limited["tasks"]) == 1 and len(limited["queues"]) == 1
    assert admin.get("/api/v1/names", params={"limit": "0"}).status_code == 400
    assert httpx.get(f"{live.url}/api/v1/names").status_code == 401


def test_the_jobs_page_searches(live: Live, tenant_a: httpx.Client,
                                tenant_b: httpx.Client) -> None:
    order = f"ord-{secrets.token_hex(4)}"
    mine = tenant_a.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                               "payload": {"order_id": order}}).json()["id"]
    theirs = tenant_b.post("/api/v1/jobs", json={"task": "echo", "delay": 600,
                                                 "payload": {"order_id": order}}).json()["id"]
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": sign_in(
            live.url, "token-a")}, headers={"Accept": "text/html"}) as page:
        found = page.get("/jobs", params={"payload": f"order_id:{order}"})
        assert found.status_code == 200
        assert mine in found.text and theirs not in found.text
        assert "data-search-note" in found.text and "candidate jobs" in found.text
        assert "1 job found" in found.text
        assert "all:" not in found.text  # no action on "all matching" for a search
        refused = page.get("/jobs", params={"payload": "transcript:x"})
        assert refused.status_code == 400
        assert "Search refused" in refused.text and "marked Sensitive" in refused.text
        assert 'value="transcript:x"' in refused.text  # the form keeps what was typed
        named = page.get("/jobs", params={"task_contains": "ech", "state": "scheduled"})
        assert named.status_code == 200 and mine in named.text and theirs not in named.text
        assert "job found" not in named.text and "match" in named.text
        # the autocomplete's requests: the signed-in cookie reads the names API
        names = page.get("/api/v1/names", params={"q": "ech"}, headers={
            "Accept": "application/json"})
        assert names.status_code == 200 and names.json()["tasks"] == ["echo"]
        script = page.get("/static/search.js")
        assert script.status_code == 200 and "/api/v1/names" in script.text
