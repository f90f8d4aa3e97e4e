"""Finding jobs and pausing cron in headless Chromium, at 1440x900 and on a phone (390x844):
the task and queue inputs suggest names as one types (autocomplete from /api/v1/names), a
payload search finds a job and says how far it read, a search on a Sensitive field is
refused on the page, and the cron page pauses and resumes a schedule. At 390 px the document
is never wider than the screen. Screenshots go to /tmp/conveyor-shots."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.harness import TOKENS, Live, ServerThread, WorkerThread, close_app, free_port, sign_in
from api.webapp import build_app
from conveyor.web.server import build_server

SHOTS = Path("/tmp/conveyor-shots")
VIEWPORTS = {"desktop": {"viewport": {"width": 1440, "height": 900}},
             "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                       "has_touch": True}}


@pytest.fixture(scope="module")
def cron_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    app, flags = build_app(f"sqlite:///{tmp_path_factory.mktemp('ui-cron') / 'ui.db'}")
    app.cron("*/5 * * * *", "echo", {"from": "cron"}, name="every-five-minutes")
    app.cron("0 7 * * mon-fri", "echo", {"from": "mornings"}, name="weekday-mornings",
             timezone="Europe/Paris")
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, sample_every=0.5,
                          log_level="warning")
    with ServerThread(server), WorkerThread(app):
        yield Live(app, f"http://127.0.0.1:{server.config.port}", flags, server)
    close_app(app)


def open_page(browser: Any, live: Live, kind: str, token: str = "admin-token"
              ) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**VIEWPORTS[kind])
    context.add_cookies([{"name": "conveyor_session", "value": sign_in(live.url, token),
                          "url": live.url}])
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fits(page: Any, kind: str) -> None:
    if kind == "phone":
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (page.url, width)


@pytest.mark.parametrize("kind", ["desktop", "phone"])
def test_search_with_autocomplete(browser: Any, live: Live, kind: str) -> None:
    mark = secrets.token_hex(3)
    queue, order = f"srch-{mark}-orders", f"ord-{mark}"
    with live.client("token-a") as client:
        mine = client.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 600,
                                                 "payload": {"order_id": order}}).json()["id"]
        other = client.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 600,
                                                  "payload": {"order_id": "ord-other"}}
                            ).json()["id"]
        client.post("/api/v1/jobs", json={"task": "evaluate", "delay": 600, "payload": {
            "assessment_id": "a-1", "transcript": "private words"}})
    context, page, errors = open_page(browser, live, kind, "token-a")
    try:
        page.goto(live.url + "/jobs")
        queue_input = page.locator("input[name=queue_contains]")
        queue_input.click()
        queue_input.press_sequentially(f"srch-{mark}", delay=30)
        page.wait_for_function(
            "q => [...document.querySelectorAll('#names-queues option')]"
            ".some(o => o.value === q)", arg=queue)
        shot(page, f"search-autocomplete-{kind}")
        queue_input.fill(queue)
        page.fill("input[name=payload]", f"order_id:{order}")
        page.locator("form.filters button[type=submit]").click()
        page.wait_for_selector("[data-search-note]")
        assert page.locator(f'tr[data-job-id="{mine}"]').count() == 1
        assert page.locator(f'tr[data-job-id="{other}"]').count() == 0
        assert "candidate jobs" in page.locator("[data-search-note]").inner_text()
        assert page.locator("input[name=payload]").input_value() == f"order_id:{order}"
        fits(page, kind)
        shot(page, f"search-found-{kind}")

        page.fill("input[name=queue_contains]", "")
        page.fill("input[name=payload]", "transcript:private words")
        page.locator("form.filters button[type=submit]").click()
        refused = page.wait_for_selector("[data-search-error]")
        assert "marked Sensitive" in refused.inner_text()
        fits(page, kind)
        shot(page, f"search-refused-{kind}")
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.parametrize("kind", ["desktop", "phone"])
def test_minute_throughput_charts(browser: Any, live: Live, kind: str) -> None:
    """The overview's per-minute chart and the queues page's per-minute sparklines, from the
    stored rollups, drawn once jobs have run."""
    with live.client("admin-token") as client:
        ids = [client.post("/api/v1/jobs", json={"task": "echo", "payload": {"n": n}}
                           ).json()["id"] for n in range(5)]
        for job_id in ids:
            for _ in range(100):
                if client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "completed":
                    break
                time.sleep(0.05)
    context, page, errors = open_page(browser, live, kind)
    try:
        page.goto(live.url + "/")
        chart = page.locator("figure", has_text="Throughput per minute, last hour (stored)")
        assert chart.locator("svg polyline, svg path").count() >= 1
        fits(page, kind)
        shot(page, f"overview-{kind}")
        page.goto(live.url + "/queues")
        spark = page.locator('tr[data-queue="default"] td[data-minutes] svg')
        assert "attempts per minute in default" in (spark.get_attribute("aria-label") or "")
        fits(page, kind)
        shot(page, f"queues-{kind}")
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.parametrize("kind", ["desktop", "phone"])
def test_cron_pause_and_resume_on_the_page(browser: Any, cron_live: Live, kind: str) -> None:
    context, page, errors = open_page(browser, cron_live, kind)
    row = 'tr[data-schedule="every-five-minutes"]'
    try:
        page.goto(cron_live.url + "/cron")
        page.locator(f"{row} button", has_text="Pause").click()
        page.wait_for_selector(f"{row} [data-paused]")
        assert cron_live.app.schedule_states()["every-five-minutes"].paused
        assert "none until resumed" in page.locator(row).inner_text()
        assert page.locator('tr[data-schedule="weekday-mornings"] [data-paused]').count() == 0
        fits(page, kind)
        shot(page, f"cron-paused-{kind}")
        page.locator(f"{row} button", has_text="Resume").click()
        page.wait_for_selector(f"{row} button:has-text('Pause')")
        assert page.locator(f"{row} [data-paused]").count() == 0
        assert not cron_live.app.schedule_states()["every-five-minutes"].paused
        fits(page, kind)
        shot(page, f"cron-resumed-{kind}")
        assert not errors, errors
    finally:
        context.close()
