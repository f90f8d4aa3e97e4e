"""The Tasks, Errors and Workers pages in headless Chromium: read from the stored attempt
history, an error group's dead jobs retried with a click, figures scoped to a tenant."""

from __future__ import annotations

from typing import Any

from api.harness import Live, wait_state

from .conftest import shot, signed_in


def _run(live: Live, token: str, task: str, n: int = 1) -> list[str]:
    ids = []
    with live.client(token) as client:
        for _ in range(n):
            job_id = client.post("/api/v1/jobs", json={"task": task}).json()["id"]
            wait_state(client, job_id, {"completed", "dead"})
            ids.append(job_id)
    return ids


def test_tasks_errors_and_workers_pages(page: Any, live: Live) -> None:
    live.flags["fail"] = True
    _run(live, "admin-token", "echo", 3)
    dead = _run(live, "token-a", "flaky", 2)

    page.goto(live.url + "/tasks?range=1h")
    row = page.locator('#tasks-table tr[data-task="flaky"]')
    row.wait_for()
    assert row.locator("svg.spark").count() == 2  # runs and failures
    assert page.locator('#tasks-table tr[data-task="echo"] td').nth(1).inner_text() == "3"
    stored = page.locator("figure", has_text="Attempts, last 1h (stored)")
    assert stored.locator("polyline").count() == 2  # attempts and failed, from the rollups
    shot(page, "analytics-tasks")
    page.goto(live.url + "/")
    assert page.locator("figure", has_text="Attempts, last 24h (stored)").locator(
        "polyline").count() == 2

    page.goto(live.url + "/errors?range=1h")
    group = page.locator("#errors-table tbody tr", has_text="RuntimeError")
    group.wait_for()
    assert "flaky failed on purpose" in group.inner_text()
    shot(page, "analytics-errors")
    live.flags["fail"] = False
    try:
        group.get_by_role("button", name="Retry the 2 dead jobs").click()
        page.wait_for_selector(".flash")
        assert "Retried 2 dead jobs of group" in page.locator(".flash").inner_text()
        with live.client("admin-token") as client:
            for job_id in dead:
                wait_state(client, job_id, {"completed"})
    finally:
        live.flags["fail"] = True

    page.goto(live.url + "/workers")
    figures = page.locator("#worker-figures tbody tr")
    figures.first.wait_for()
    text = figures.first.inner_text()
    assert "MiB" in text and "%" in text
    shot(page, "analytics-workers")


def test_a_tenant_sees_its_own_figures(browser: Any, live: Live) -> None:
    live.flags["fail"] = True
    _run(live, "token-b", "flaky", 1)
    _run(live, "token-a", "echo", 1)
    context = signed_in(browser, live, "token-b")
    page = context.new_page()
    page.goto(live.url + "/tasks?range=1h")
    page.locator('#tasks-table tr[data-task="flaky"]').wait_for()
    assert page.locator('#tasks-table tr[data-task="echo"]').count() == 0
    page.goto(live.url + "/errors?range=1h")
    counts = page.locator("#errors-table tbody tr td.num").first.inner_text()
    assert counts == "1"
    shot(page, "analytics-errors-tenant")
    context.close()
