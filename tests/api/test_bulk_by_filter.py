"""Acting on every job a filter matches (web/bulk.py): the jobs page says how many match and
offers only the actions that fit every selected state; "all matching" runs on the server by
the filter, within the caller's tenant. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote

import httpx

from conveyor.job import JobFilter, JobState
from conveyor.web.bulk import fitting_actions

from .harness import Live, sign_in


def browser(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=30.0,
                        cookies={"conveyor_session": sign_in(live.url, token)})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def states_of(admin: httpx.Client, queue: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in admin.get("/api/v1/jobs", params={"queue": queue, "limit": 500}).json()["jobs"]:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    return counts


def test_actions_offered_fit_every_selected_state() -> None:
    def offered(*states: str, retrying: bool = False) -> list[str]:
        where = JobFilter(states=tuple(JobState(s) for s in states), retrying=retrying)
        return fitting_actions(where, can_discard=True)

    assert offered("dead") == ["retry", "discard"]
    assert offered("dead", "cancelled") == ["retry", "discard"]
    assert offered("queued", "scheduled") == ["cancel"]
    assert offered(retrying=True) == ["retry", "cancel"]
    assert offered("dead", "queued") == []  # nothing fits both
    assert offered() == []                  # no states chosen: no action on "all"


def test_all_matching_by_filter_with_the_count(live: Live, admin: httpx.Client,
                                               tenant_a: httpx.Client,
                                               tenant_b: httpx.Client) -> None:
    queue = f"bulk-{uuid.uuid4().hex[:8]}"
    for _ in range(7):
        tenant_a.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 600})
    for _ in range(2):
        tenant_b.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 600})

    with browser(live, "token-a") as page:
        html = page.get("/jobs", params={"state": "scheduled", "queue": queue}).text
        assert "7 jobs match" in html
        assert 'value="all:cancel"' in html and 'data-confirm="Cancel all 7 matching jobs?"' in html
        assert 'value="all:retry"' not in html and 'value="all:discard"' not in html
        mixed = page.get("/jobs", params=[("state", "scheduled"), ("state", "dead"),
                                          ("queue", queue)]).text
        assert "all:" not in mixed  # no action fits both states
        went = page.post("/actions", data={
            "csrf": csrf_of(html), "action": "all:cancel", "state": "scheduled", "queue": queue,
            "next": f"/jobs?queue={queue}"})
        assert went.status_code == 303
        assert unquote(went.cookies["conveyor_flash"]).startswith("Cancelled 7 jobs.")
    assert states_of(admin, queue) == {"cancelled": 7, "scheduled": 2}  # B's untouched

    with browser(live, "admin-token") as page:
        html = page.get("/jobs", params={"state": "cancelled", "queue": queue}).text
        assert "7 jobs match" in html and 'value="all:retry"' in html
        went = page.post("/actions", data={
            "csrf": csrf_of(html), "action": "all:retry", "state": "cancelled", "queue": queue,
            "next": "/jobs"})
        assert unquote(went.cookies["conveyor_flash"]).startswith("Retried 7 jobs.")
        refused = page.post("/actions", data={
            "csrf": csrf_of(html), "action": "all:retry", "state": "queued", "queue": queue,
            "next": "/jobs"})
        assert "does not fit" in unquote(refused.cookies["conveyor_flash"])
    counts = states_of(admin, queue)
    assert counts.get("cancelled", 0) == 0 and sum(counts.values()) == 9


def test_pages_go_older_and_back_newer_keeping_every_state(live: Live,
                                                           admin: httpx.Client) -> None:
    queue = f"pages-{uuid.uuid4().hex[:8]}"
    admin.post("/api/v1/batches", json={"jobs": [
        {"task": "echo", "queue": queue, "delay": 600} for _ in range(120)]})

    def rows(html: str) -> list[str]:
        return re.findall(r'<tr data-job-id="([^"]+)"', html)

    def link(html: str, rel: str) -> str:
        found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
        assert found is not None, rel
        return found[1].replace("&amp;", "&")

    with browser(live, "admin-token") as page:
        first = page.get(f"/jobs?state=scheduled&state=queued&queue={queue}").text
        assert "120 jobs match" in first and 'rel="prev"' not in first
        second = page.get(link(first, "next")).text
        third = page.get(link(second, "next")).text
        assert len(rows(first)) == len(rows(second)) == 50 and len(rows(third)) == 20
        assert not set(rows(first)) & set(rows(second))
        assert 'rel="next"' not in third and "120 jobs match" in third  # states kept
        assert rows(page.get(link(third, "prev")).text) == rows(second)
        assert rows(page.get(link(second, "prev")).text) == rows(first)
