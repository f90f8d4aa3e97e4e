"""The dashboard in headless Chromium: live updates, retry with a click, pause a queue."""

from __future__ import annotations

import time
from typing import Any

import httpx

from api.harness import Live, wait_state

from .conftest import shot, signed_in


def api(live: Live) -> httpx.Client:
    return live.client("admin-token")


def live_on(page: Any) -> None:
    page.wait_for_selector("#live[data-state=on]")


def test_sign_in_with_a_token(browser: Any, live: Live) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(live.url + "/jobs")
    assert page.url.startswith(live.url + "/login")
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("text=That token is not valid")
    shot(page, "login-error")
    page.fill("#token", "admin-token")
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/jobs")
    cookie = next(c for c in context.cookies() if c["name"] == "conveyor_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    context.close()


def test_job_goes_from_queued_to_completed_without_reload(page: Any, live: Live) -> None:
    page.goto(live.url + "/jobs")
    live_on(page)
    page.evaluate("window.notReloaded = true")
    with api(live) as client:
        job_id = client.post("/api/v1/jobs", json={
            "task": "slow", "payload": {"steps": 6, "pause": 0.25}}).json()["id"]
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    row.locator(".badge", has_text="running").wait_for()
    shot(page, "jobs-live-running")
    row.locator(".badge", has_text="completed").wait_for()
    assert page.evaluate("window.notReloaded") is True
    shot(page, "jobs-live-completed")


def test_job_page_shows_progress_live(page: Any, live: Live) -> None:
    with api(live) as client:
        job_id = client.post("/api/v1/jobs", json={
            "task": "slow", "payload": {"steps": 8, "pause": 0.3}, "delay": 1}).json()["id"]
    page.goto(f"{live.url}/jobs/{job_id}")
    live_on(page)
    page.evaluate("window.notReloaded = true")
    bar = page.locator(".progress[role=progressbar]")
    deadline = time.monotonic() + 10
    while int(bar.get_attribute("aria-valuenow") or 0) < 25:  # moved by progress events
        assert time.monotonic() < deadline
        time.sleep(0.05)
    shot(page, "job-progress")
    page.locator("[data-job-state] .badge", has_text="completed").wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("text=Completed").first.is_visible()


def test_retry_a_dead_job_with_a_click(page: Any, live: Live) -> None:
    live.flags["fail"] = True
    with api(live) as client:
        job_id = client.post("/api/v1/jobs", json={"task": "flaky"}).json()["id"]
        wait_state(client, job_id, {"dead"})
    page.goto(live.url + "/dead")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    row.wait_for()
    shot(page, "dead-letters")
    page.goto(f"{live.url}/jobs/{job_id}")
    page.locator("summary", has_text="Traceback").click()
    page.wait_for_selector("text=RuntimeError")
    shot(page, "job-dead-traceback")
    live.flags["fail"] = False
    try:
        page.get_by_role("button", name="Retry").click()
        page.wait_for_selector(".flash")
        page.locator("[data-job-state] .badge", has_text="completed").wait_for()
    finally:
        live.flags["fail"] = True
    shot(page, "job-retried-completed")
    with api(live) as client:
        assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "completed"


def test_retry_many_dead_jobs_at_once(page: Any, live: Live) -> None:
    live.flags["fail"] = True
    with api(live) as client:
        ids = [client.post("/api/v1/jobs", json={"task": "flaky", "queue": "bulk"}).json()["id"]
               for _ in range(3)]
        for job_id in ids:
            wait_state(client, job_id, {"dead"})
    page.goto(live.url + "/dead?queue=bulk")
    live_on(page)
    for job_id in ids[:2]:
        page.check(f'tr[data-job-id="{job_id}"] input[name=ids]')
    assert page.locator("[data-selected-count]").inner_text() == "2 selected"
    live.flags["fail"] = False
    try:
        page.get_by_role("button", name="Retry selected").click()
        page.wait_for_selector("text=Retried 2 jobs.")
        with api(live) as client:
            states = [wait_state(client, i, {"completed", "dead"})["state"] for i in ids]
    finally:
        live.flags["fail"] = True
    assert states[:2] == ["completed", "completed"]
    with api(live) as client:
        assert client.get(f"/api/v1/jobs/{ids[2]}").json()["state"] == "dead"


def test_pause_and_resume_a_queue(page: Any, live: Live) -> None:
    with api(live) as client:
        client.post("/api/v1/jobs", json={"task": "echo", "queue": "mail", "delay": 600})
    page.goto(live.url + "/queues")
    page.get_by_role("button", name="Pause queue mail").click()
    page.wait_for_selector("text=Paused queue mail.")
    page.locator('tr[data-queue="mail"] .tag', has_text="paused").wait_for()
    shot(page, "queues-paused")
    with api(live) as client:
        queues = {q["name"]: q for q in client.get("/api/v1/queues").json()["queues"]}
        assert queues["mail"]["paused"] is True
    page.get_by_role("button", name="Resume queue mail").click()
    page.locator('tr[data-queue="mail"] .tag', has_text="active").wait_for()


def test_overview_charts_and_keyboard(page: Any, live: Live) -> None:
    with api(live) as client:
        client.post("/api/v1/batches", json={"jobs": [
            {"task": "echo", "payload": {"i": i}, "queue": q} for i in range(20)
            for q in ("default", "reports")]})
        client.post("/api/v1/jobs", json={"task": "evaluate", "payload": {
            "assessment_id": "a-9", "transcript": "never shown"}})
    time.sleep(2.0)  # a few history samples at 0.5 s
    page.goto(live.url + "/")
    live_on(page)
    assert page.locator("figure.chart svg").count() >= 5
    assert page.locator(".card .badge", has_text="completed").is_visible()
    shot(page, "overview")
    page.keyboard.press("g")
    page.keyboard.press("j")
    page.wait_for_url(live.url + "/jobs")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "id"
    page.goto(live.url + "/workers")
    page.locator("text=ok").first.wait_for()
    shot(page, "workers")


def test_tenant_sees_only_its_jobs(browser: Any, live: Live) -> None:
    with live.client("token-a") as a, live.client("token-b") as b:
        mine = a.post("/api/v1/jobs", json={"task": "echo", "delay": 600}).json()["id"]
        theirs = b.post("/api/v1/jobs", json={"task": "echo", "delay": 600}).json()["id"]
    context = signed_in(browser, live, "token-a")
    page = context.new_page()
    page.goto(live.url + "/jobs")
    page.locator(f'tr[data-job-id="{mine}"]').wait_for()
    assert page.locator(f'tr[data-job-id="{theirs}"]').count() == 0
    tenants = set(page.locator("table.jobs tbody tr td:nth-child(7)").all_inner_texts())
    assert tenants == {"acme"}
    assert page.locator("text=tenant acme").is_visible()
    shot(page, "tenant-jobs")
    response = page.goto(f"{live.url}/jobs/{theirs}")
    assert response is not None and response.status == 404
    context.close()
