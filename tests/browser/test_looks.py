"""Looks and reach in headless Chromium: dark mode (system and toggle), `?` help, a fixed
colour per queue, ids shown by their distinctive tail, and a phone layout with no sideways
scrolling (rows become cards)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from api.harness import Live
from conveyor.web.views import hue

from .conftest import new_page, shot

PAGES = ("/", "/jobs", "/dead", "/queues", "/tasks", "/errors", "/workers", "/cron")


def background(page: Any) -> str:
    return page.evaluate("getComputedStyle(document.documentElement).backgroundColor")


def is_dark(rgb: str) -> bool:
    assert rgb.startswith("rgb(") and "rgba" not in rgb, rgb  # an opaque colour, not none
    r, g, b = (int(part) for part in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
    return (r + g + b) / 3 < 80


def test_dark_mode_follows_the_system_and_the_toggle_sticks(browser: Any, live: Live) -> None:
    context, page = new_page(browser, live, color_scheme="dark")
    page.goto(live.url + "/")
    assert is_dark(background(page)), background(page)
    assert page.locator("[data-theme-toggle]").inner_text() == "Theme: system"
    shot(page, "overview-dark")
    page.click("[data-theme-toggle]")  # system -> dark
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.click("[data-theme-toggle]")  # dark -> light, against the system's dark
    assert not is_dark(background(page))
    page.reload()
    assert page.locator("[data-theme-toggle]").inner_text() == "Theme: light"
    assert not is_dark(background(page))
    page.keyboard.press("t")  # light -> system: dark again
    assert is_dark(background(page))
    assert not page.errors
    context.close()

    context, page = new_page(browser, live, color_scheme="light")
    page.goto(live.url + "/jobs")
    assert not is_dark(background(page))
    context.close()


def test_question_mark_opens_keyboard_help(browser: Any, live: Live) -> None:
    context, page = new_page(browser, live)
    page.goto(live.url + "/jobs")
    assert not page.locator("#keys-help").is_visible()
    page.keyboard.press("?")
    page.locator("#keys-help").wait_for(state="visible")
    assert "Dead letters" in page.locator("#keys-help").inner_text()
    shot(page, "keyboard-help")
    page.keyboard.press("Escape")
    page.locator("#keys-help").wait_for(state="hidden")
    assert not page.errors
    context.close()


def test_queue_colour_is_fixed_and_ids_show_their_tail(browser: Any, live: Live) -> None:
    with live.client("admin-token") as client:
        ids = [client.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 600})
               .json()["id"] for queue in ("colour-a", "colour-b", "colour-a")]
    context, page = new_page(browser, live)
    page.goto(live.url + "/jobs?state=scheduled")
    for job_id, queue in zip(ids, ("colour-a", "colour-b", "colour-a"), strict=True):
        row = page.locator(f'tr[data-job-id="{job_id}"]')
        assert row.locator("td.id").inner_text() == "…" + job_id[-8:]
        style = row.locator("a.q").get_attribute("style")
        assert style == f"--qh: {hue(queue)}"
    assert hue("colour-a") != hue("colour-b")
    swatch = page.evaluate("""getComputedStyle(document.querySelector('a.q'), '::before')
                              .backgroundColor""")
    assert swatch.startswith("rgb") and swatch != "rgba(0, 0, 0, 0)"
    context.close()


def test_phone_has_no_sideways_scrolling_and_rows_are_cards(browser: Any, live: Live) -> None:
    with live.client("admin-token") as client:
        job_id = client.post("/api/v1/jobs", json={
            "task": "echo", "queue": "a-rather-long-queue-name-for-a-phone",
            "payload": {"note": "x" * 300}, "delay": 600}).json()["id"]
    context, page = new_page(browser, live, viewport={"width": 390, "height": 844},
                             is_mobile=True, has_touch=True)
    for path in (*PAGES, f"/jobs/{job_id}"):
        page.goto(live.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        shot(page, "phone" + (path.replace("/", "-") if path != "/" else "-overview")[:40])
    page.goto(live.url + "/jobs?state=scheduled")
    page.wait_for_selector("#live[data-state=on]")
    page.wait_for_timeout(1000)  # the live catch-up redraws unfinished rows once, after 250 ms
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    row.wait_for(state="visible")
    assert row.evaluate("r => getComputedStyle(r).display") == "block"
    for cell in (row, row.locator("a.q")):  # a long queue name wraps inside its card
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.wait_for_function(  # each cell of the card says what it is
        """id => { const td = document.querySelector(
                       `tr[data-job-id="${id}"] td[data-label=Queue]`);
                   return td && getComputedStyle(td, '::before').content === '"Queue"'; }""",
        arg=job_id)
    assert not page.errors
    context.close()


def test_a_job_waiting_to_retry_shows_as_retrying_and_filters(browser: Any, live: Live) -> None:
    with live.client("admin-token") as client:
        job_id = client.post("/api/v1/jobs", json={"task": "patient"}).json()["id"]
        deadline = time.monotonic() + 15
        while not client.get(f"/api/v1/jobs/{job_id}").json()["retrying"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    context, page = new_page(browser, live)
    page.goto(live.url + "/jobs")
    page.check('input[name=state][value="retrying"]')
    page.click(".filters button[type=submit]")
    page.wait_for_url(lambda url: "state=retrying" in url)
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    assert row.locator(".badge").inner_text().strip() == "retrying"
    assert row.locator(".next-try").inner_text().startswith("next try in ")
    assert page.locator("table.jobs tbody tr").count() == page.locator(
        "table.jobs .badge.s-retrying").count()
    shot(page, "jobs-retrying")
    assert not page.errors
    context.close()


def test_bulk_action_on_every_matching_job_states_the_count(browser: Any, live: Live) -> None:
    queue = f"bulk-{uuid.uuid4().hex[:8]}"
    with live.client("admin-token") as client:
        client.post("/api/v1/batches", json={"jobs": [
            {"task": "echo", "queue": queue, "delay": 600} for _ in range(60)]})
    context, page = new_page(browser, live)
    page.goto(f"{live.url}/jobs?state=scheduled&queue={queue}")
    assert page.locator(".match-count").inner_text() == "60 jobs match"
    assert page.locator("table.jobs tbody tr").count() == 50  # one page shown, 60 acted on
    assert page.locator('button[value="all:retry"]').count() == 0  # does not fit scheduled
    messages: list[str] = []
    page.on("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.click('button[value="all:cancel"]')
    page.locator(".flash").wait_for()
    assert messages == ["Cancel all 60 matching jobs?"]
    assert page.locator(".flash").inner_text().startswith("Cancelled 60 jobs.")
    shot(page, "bulk-by-filter")
    with live.client("admin-token") as client:
        jobs = client.get("/api/v1/jobs", params={"queue": queue, "limit": 100}).json()["jobs"]
    assert len(jobs) == 60 and {j["state"] for j in jobs} == {"cancelled"}
    assert not page.errors
    context.close()


def test_an_admin_enqueues_through_the_tasks_schema(browser: Any, live: Live) -> None:
    context, page = new_page(browser, live)
    page.goto(live.url + "/jobs")
    page.click("text=Enqueue a job")
    page.select_option("select[name=task]", "evaluate")
    page.click("text=Show its form")
    page.fill("#f-assessment_id", "a-77")
    page.fill("#f-transcript", "kept secret")
    page.fill("#f-score", "5")
    shot(page, "enqueue-form")
    page.click("#enqueue-form button[type=submit]")
    page.wait_for_url(lambda url: "/jobs/" in url)
    assert "Enqueued evaluate" in page.locator(".flash").inner_text()
    job_id = page.url.rsplit("/", 1)[-1]
    assert live.app.get(job_id).payload["assessment_id"] == "a-77"
    assert "kept secret" not in page.content()  # the job page redacts the Sensitive field
    assert not page.errors
    context.close()
