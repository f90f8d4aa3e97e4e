"""The cron page: each schedule with its expression, zone, next run and last runs with their
outcomes (found by their slot ids), and "Run now" for admins."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from conveyor.web.server import build_server

from .harness import TOKENS, Live, ServerThread, WorkerThread, close_app, free_port, sign_in
from .webapp import build_app


@pytest.fixture(scope="module")
def cron_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    app, flags = build_app(f"sqlite:///{tmp_path_factory.mktemp('cron') / 'cron.db'}")
    app.cron("* * * * * *", "echo", {"from": "cron"}, name="every-second")
    app.cron("0 7 * * mon-fri", "echo", {"from": "mornings"}, name="weekday-mornings",
             timezone="Europe/Paris")
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="warning")
    with ServerThread(server), WorkerThread(app):
        yield Live(app, f"http://127.0.0.1:{server.config.port}", flags, server)
    close_app(app)


def page_of(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10.0,
                        cookies={"conveyor_session": sign_in(live.url, token)})


def row_of(html: str, name: str) -> str:
    row = html[html.index(f'<tr data-schedule="{name}">'):]
    return row[:row.index("</tr>")]


def test_each_schedule_with_its_next_run_and_last_runs(cron_live: Live) -> None:
    deadline = time.monotonic() + 20
    with page_of(cron_live, "admin-token") as page:
        while True:
            html = page.get("/cron").text
            runs = re.findall(r'data-run-state="(\w+)"', row_of(html, "every-second"))
            if runs.count("completed") >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert runs.count("completed") >= 3, runs
    assert len(runs) == 5
    row = row_of(html, "every-second")
    assert "* * * * * *" in row and ">UTC<" in row and "echo" in row
    mornings = row_of(html, "weekday-mornings")
    assert "Europe/Paris" in mornings and " 07:00:00 " in mornings  # next run in its zone
    assert "Run now" in mornings


def test_run_now_enqueues_the_schedules_job(cron_live: Live) -> None:
    with page_of(cron_live, "admin-token") as page:
        html = page.get("/cron").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None
        went = page.post("/cron/weekday-mornings/run", data={"csrf": csrf[1]})
        assert went.status_code == 303
        flash = unquote(went.cookies["conveyor_flash"])
        job_id = re.search(r"job ([0-9a-f-]{36})", flash)
        assert job_id is not None, flash
    job = cron_live.app.wait(job_id[1], timeout=15)
    assert job.state == "completed" and job.payload == {"from": "mornings"}
    assert job.correlation_id == "cron:weekday-mornings:now"


def test_tenants_and_viewers_get_no_run_now(cron_live: Live) -> None:
    with page_of(cron_live, "viewer-token") as page:
        html = page.get("/cron").text
        assert "every-second" in html and "Run now" not in html


def test_a_server_without_schedules_says_where_they_live(live: Live, tmp_path: Path) -> None:
    with page_of(live, "admin-token") as page:
        html = page.get("/cron").text
    assert "No cron schedules in this server's app" in html


def slot_jobs(live: Live, name: str, since: float, until: float) -> list[str]:
    """The stored jobs of `name`'s slots from `since` to `until` (one a second)."""
    from conveyor.scheduler import slot_id

    found = []
    for second in range(int(since) + 1, int(until) + 1):
        job_id = slot_id(name, float(second))
        if live.app.call(lambda s, i=job_id: s.get(i)) is not None:
            found.append(job_id)
    return found


def test_pause_and_resume_over_the_api_and_the_page(cron_live: Live) -> None:
    with httpx.Client(base_url=cron_live.url, timeout=10.0,
                      headers={"Authorization": "Bearer admin-token"}) as admin, \
            httpx.Client(base_url=cron_live.url, timeout=10.0,
                         headers={"Authorization": "Bearer token-a"}) as tenant:
        listed = {s["name"]: s for s in admin.get("/api/v1/cron").json()["schedules"]}
        assert listed["every-second"]["paused"] is False
        assert tenant.get("/api/v1/cron").status_code == 200  # reading is for every token
        refused = tenant.post("/api/v1/cron/every-second/pause")
        assert refused.status_code == 403
        missing = admin.post("/api/v1/cron/no-such/pause")
        assert missing.status_code == 404 and "every-second" in missing.json()["error"]["message"]

        paused = admin.post("/api/v1/cron/every-second/pause")
        assert paused.json() == {"name": "every-second", "paused": True}
        since = time.time() + 1.5  # a pass already under way may still store one slot
        time.sleep(4)
        assert slot_jobs(cron_live, "every-second", since, time.time()) == []
        state = {s["name"]: s for s in admin.get("/api/v1/cron").json()["schedules"]}
        assert state["every-second"]["paused"] is True and state["every-second"]["changed_at"]
        with page_of(cron_live, "admin-token") as page:
            row = row_of(page.get("/cron").text, "every-second")
            assert "data-paused" in row and ">Resume<" in row and "none until resumed" in row
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', row)
            assert csrf is not None
            resumed = page.post("/cron/every-second/resume", data={"csrf": csrf.group(1)})
            assert resumed.status_code == 303
            assert "Resumed schedule every-second" in unquote(resumed.cookies["conveyor_flash"])
            assert page.post("/cron/every-second/bogus", data={
                "csrf": csrf.group(1)}).status_code == 404
        after = time.time()
        deadline = time.monotonic() + 15
        while not slot_jobs(cron_live, "every-second", after, time.time()):
            assert time.monotonic() < deadline, "no slot stored after the resume"
            time.sleep(0.5)
        with page_of(cron_live, "viewer-token") as viewer:
            assert ">Pause<" not in row_of(viewer.get("/cron").text, "every-second")
