"""PATCH /api/v1/queues/{name} and /api/v1/tasks/{name}: limits changed over HTTP (admin
only), stored for every worker; GET /api/v1/limits shows them with their use."""

from __future__ import annotations

import re
import uuid

import httpx

from conveyor.job import NewJob, new_id

from .harness import Live, assert_error, sign_in


def test_an_admin_sets_changes_and_resets_a_queue_limit(live: Live,
                                                        admin: httpx.Client) -> None:
    name = f"ai-{uuid.uuid4().hex[:8]}"
    set_ = admin.patch(f"/api/v1/queues/{name}", json={"concurrency": 3, "rate": "20/min"})
    assert set_.status_code == 200, set_.text
    limit = set_.json()["limit"]
    assert (limit["concurrency"], limit["rate"], limit["source"]) == (3, "20/min", "operator")
    assert (limit["running"], limit["started_in_window"]) == (0, 0)

    kept = admin.patch(f"/api/v1/queues/{name}", json={"rate": None}).json()["limit"]
    assert (kept["concurrency"], kept["rate"]) == (3, None)
    found = live.app.limits.find("queue", name)
    assert found is not None and found.limit.concurrency == 3
    listed = admin.get("/api/v1/limits").json()["limits"]
    assert any(item["name"] == name for item in listed)

    reset = admin.patch(f"/api/v1/queues/{name}", json={"reset": True})
    assert reset.json() == {"kind": "queue", "name": name, "limit": None}
    assert live.app.limits.find("queue", name) is None


def test_a_task_limit_over_http(live: Live, admin: httpx.Client) -> None:
    response = admin.patch("/api/v1/tasks/echo", json={"concurrency": 1})
    assert response.status_code == 200, response.text
    assert response.json()["limit"]["concurrency"] == 1
    admin.patch("/api/v1/tasks/echo", json={"concurrency": None})
    assert live.app.limits.find("task", "echo") is None


def test_each_keys_limit_of_a_task_over_http(live: Live, admin: httpx.Client) -> None:
    response = admin.patch("/api/v1/tasks/echo", json={
        "key_concurrency": 1, "key_rate": "10/min", "key_strategy": "debounce"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["limit"] is None  # the task's own: none
    key = body["key_limit"]
    assert (key["kind"], key["concurrency"], key["rate"], key["strategy"],
            key["keys_at_limit"]) == ("key", 1, "10/min", "debounce", 0)
    found = live.app.limits.find("key", "echo")
    assert found is not None and found.limit.strategy == "debounce"
    assert_error(admin.patch("/api/v1/tasks/echo", json={"key_strategy": "newest"}), 422,
                 "bad_key_strategy")
    assert_error(admin.patch("/api/v1/tasks/echo", json={"key_concurrency": "1"}), 422,
                 "bad_key_concurrency")
    assert_error(admin.patch("/api/v1/queues/default", json={"key_concurrency": 1}), 422,
                 "unknown_field")  # keys belong to tasks
    reset = admin.patch("/api/v1/tasks/echo", json={"reset": True}).json()
    assert (reset["limit"], reset["key_limit"]) == (None, None)


def test_only_an_admin_changes_limits(live: Live, tenant_a: httpx.Client) -> None:
    assert_error(tenant_a.patch("/api/v1/queues/default", json={"concurrency": 1}), 403)
    with live.client() as anonymous:
        assert_error(anonymous.patch("/api/v1/queues/default", json={"concurrency": 1}), 401)
    assert live.app.limits.find("queue", "default") is None


def test_bad_bodies_are_precise_errors_and_store_nothing(live: Live,
                                                         admin: httpx.Client) -> None:
    url = "/api/v1/queues/strict"
    assert_error(admin.patch(url, json={}), 400, "bad_limits")
    assert_error(admin.patch(url, json=[1]), 400, "bad_limits")
    assert_error(admin.patch(url, json={"concurrency": "3"}), 422, "bad_concurrency")
    assert_error(admin.patch(url, json={"concurrency": -1}), 422, "bad_concurrency")
    assert_error(admin.patch(url, json={"concurrency": True}), 422, "bad_concurrency")
    assert_error(admin.patch(url, json={"rate": 10}), 422, "bad_rate")
    assert_error(admin.patch(url, json={"rate": "10 a minute"}), 422, "bad_limits")
    assert_error(admin.patch(url, json={"burst": 3}), 422, "unknown_field")
    assert_error(admin.patch("/api/v1/queues/bad%20name", json={"concurrency": 1}), 400,
                 "bad_queue")
    assert live.app.limits.find("queue", "strict") is None


def test_openapi_describes_the_limit_endpoints(live: Live) -> None:
    with live.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    assert "patch" in paths["/api/v1/queues/{name}"]
    assert "patch" in paths["/api/v1/tasks/{name}"]
    assert "get" in paths["/api/v1/limits"]


def _browser(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, cookies={"conveyor_session": sign_in(live.url, token)},
                        headers={"Accept": "text/html"})


def test_the_queue_page_shows_limits_and_an_admin_changes_them(live: Live) -> None:
    name = f"pics-{uuid.uuid4().hex[:6]}"
    live.app.limits.set("queue", name, concurrency=4, rate="30/min")
    with _browser(live, "admin-token") as browser:
        page = browser.get("/queues").text
        assert f'data-limit="queue:{name}"' in page
        row = page[page.index(f'data-limit="queue:{name}"'):]
        assert "0 / 4" in row[:600] and "0 / 30/min" in row[:600]
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf is not None
        saved = browser.post("/limits", data={"csrf": csrf.group(1), "kind": "queue",
                                              "name": name, "concurrency": "2", "rate": ""})
        assert saved.status_code == 303
        found = live.app.limits.find("queue", name)
        assert found is not None and (found.limit.concurrency, found.limit.rate) == (2, None)
        forged = browser.post("/limits", data={"kind": "queue", "name": name,
                                               "concurrency": "9"})
        assert forged.status_code == 403
        bad = browser.post("/limits", data={"csrf": csrf.group(1), "kind": "queue",
                                            "name": name, "rate": "lots"})
        assert bad.status_code == 303
    found = live.app.limits.find("queue", name)
    assert found is not None and found.limit.concurrency == 2


def test_the_queue_page_shows_each_keys_limit_and_how_many_keys_are_full(live: Live) -> None:
    task, queue = f"sync-{uuid.uuid4().hex[:6]}", f"keyq-{uuid.uuid4().hex[:6]}"
    live.app.limits.set("key", task, concurrency=1, strategy="drop")
    jobs = [NewJob(new_id(), task, queue, b"{}", limit_key=key) for key in ("a", "a", "b")]
    live.app.call(lambda store: store.enqueue_many(jobs))
    claimed = live.app.call(lambda store: store.claim([queue], "w-page", 10, 30.0))
    assert len(claimed) == 2  # one of each key: both keys now at their limit
    with _browser(live, "admin-token") as browser:
        page = browser.get("/queues").text
        row = page[page.index(f'data-limit="key:{task}"'):][:1500]
        assert "each key of task" in page[page.index(f'data-limit="key:{task}"') - 10:][:200]
        assert 'data-keys-at-limit="2"' in row and "2 keys at the limit" in row
        assert "1 per key" in row and "when full: drop" in row
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf is not None
        saved = browser.post("/limits", data={"csrf": csrf.group(1), "kind": "key",
                                              "name": task, "concurrency": "3",
                                              "strategy": "debounce"})
        assert saved.status_code == 303
    found = live.app.limits.find("key", task)
    assert found is not None and (found.limit.concurrency, found.limit.strategy) == (
        3, "debounce")


def test_a_tenant_sees_limits_but_cannot_change_them(live: Live) -> None:
    name = f"shared-{uuid.uuid4().hex[:6]}"
    live.app.limits.set("queue", name, concurrency=1)
    with _browser(live, "token-a") as browser:
        page = browser.get("/queues").text
        assert f'data-limit="queue:{name}"' in page and 'action="/limits"' not in page
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf is not None
        refused = browser.post("/limits", data={"csrf": csrf.group(1), "kind": "queue",
                                                "name": name, "concurrency": "5"})
        assert refused.status_code == 403
    found = live.app.limits.find("queue", name)
    assert found is not None and found.limit.concurrency == 1


def test_a_held_back_job_says_which_limit_holds_it(live: Live, admin: httpx.Client) -> None:
    name = f"held-{uuid.uuid4().hex[:6]}"
    admin.patch(f"/api/v1/queues/{name}", json={"concurrency": 0})
    job_id = admin.post("/api/v1/jobs", json={"task": "echo", "queue": name}).json()["id"]
    body = admin.get(f"/api/v1/jobs/{job_id}").json()
    assert body["state"] == "queued"
    assert body["held_back_by"] == [f"queue '{name}' concurrency 0 (0 running)"]
    with _browser(live, "admin-token") as browser:
        page = browser.get(f"/jobs/{job_id}").text
    assert "Held back by a limit" in page and f"queue &#39;{name}&#39; concurrency 0" in page
    admin.patch(f"/api/v1/queues/{name}", json={"concurrency": None})
    assert admin.get(f"/api/v1/jobs/{job_id}").json()["held_back_by"] == []
