"""The queues page and the dead page come from shared copies of their store reads, one per
scope, at most CONVEYOR_DASHBOARD_SNAPSHOT old (web/snapshot.py), dropped by every change made
through the server (web/fresh.py). Served here with copies kept 30 s, so that a change shown
at once was shown because its request dropped the copy, not because the copy had aged: a
pause, a resume, a limit, an enqueue, a retry of the dead, from the dashboard's forms and the
API; a change behind the server's back (the app itself: another process) waits for the age.
A tenant's page is its own copy, never another scope's. On SQLite and PostgreSQL (when asked).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from conveyor.testing import run_until_idle

from .harness import Live, make_url, serving, sign_in, store_urls

MAX_AGE = 30.0


@pytest.fixture(params=store_urls(), scope="module")
def kept(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Live]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONVEYOR_DASHBOARD_SNAPSHOT", str(MAX_AGE))
        with serving(make_url(request.param, tmp_path_factory.mktemp("copies"))) as live:
            yield live


def web(live: Live) -> Any:
    return live.server.config.app.state.web  # type: ignore[union-attr]


def signed(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10.0, headers={"Accept": "text/html"},
                        cookies={"conveyor_session": sign_in(live.url, token)})


def api(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10.0,
                        headers={"Authorization": f"Bearer {token}"})


def row(html: str, queue: str) -> str:
    start = html.index(f'<tr data-queue="{queue}">')
    return html[start:html.index("</tr>", start)]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no csrf field"
    return found.group(1)


def test_concurrent_queue_pages_share_one_read_and_say_its_age(kept: Live) -> None:
    copies = web(kept).queues_page
    assert copies.max_age == MAX_AGE
    with signed(kept, "admin-token") as page, ThreadPoolExecutor(8) as pool:
        copies.drop()
        before = copies.reads
        pages = list(pool.map(lambda _: page.get("/queues"), range(8)))
        again = page.get("/queues")
    assert all(p.status_code == 200 for p in [*pages, again])
    assert copies.reads - before == 1, copies.reads - before
    ages = [float(re.findall(r'data-snapshot-age="([0-9.]+)"', p.text)[0]) for p in pages]
    assert all(0 <= age <= MAX_AGE for age in ages), ages


def test_changes_through_the_server_show_on_the_queues_page_at_once(kept: Live) -> None:
    queue = f"copyq-{uuid.uuid4().hex[:8]}"
    copies = web(kept).queues_page
    with signed(kept, "admin-token") as page, api(kept, "admin-token") as admin:
        assert admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                                "delay": 3600}).status_code == 202
        html = page.get("/queues").text
        assert "tag active" in row(html, queue)
        # behind the server's back (as another process would): not seen within the age
        kept.app.pause(queue)
        reads = copies.reads
        assert "tag active" in row(page.get("/queues").text, queue)
        assert copies.reads == reads  # the copy, not a read
        kept.app.resume(queue)
        # the dashboard's form
        paused = page.post(f"/queues/{queue}/pause", data={"csrf": csrf_of(html)},
                           follow_redirects=False)
        assert paused.status_code == 303
        assert "tag paused" in row(page.get("/queues").text, queue)
        # the API
        assert admin.post(f"/api/v1/queues/{queue}/resume").status_code == 200
        assert "tag active" in row(page.get("/queues").text, queue)
        assert admin.patch(f"/api/v1/queues/{queue}", json={"concurrency": 3}
                           ).status_code == 200
        assert f'data-limit="queue:{queue}"' in page.get("/queues").text
        saved = page.post("/limits", data={"csrf": csrf_of(html), "kind": "queue",
                                           "name": queue, "concurrency": "7", "rate": ""},
                          follow_redirects=False)
        assert saved.status_code == 303
        limits = page.get("/queues").text
        limit_row = limits[limits.index(f'data-limit="queue:{queue}"'):][:600]
        assert "0 / 7" in limit_row, limit_row
        assert admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue}
                          ).status_code == 202
        queued = re.search(r'data-label="Queued">(\d+)<', row(page.get("/queues").text, queue))
        assert queued is not None and queued.group(1) == "1"


def test_a_retry_of_the_dead_shows_on_the_dead_page_at_once(kept: Live) -> None:
    queue = f"copyd-{uuid.uuid4().hex[:8]}"
    with signed(kept, "token-a") as page, api(kept, "token-a") as acme:
        died = acme.post("/api/v1/jobs", json={"task": "flaky", "queue": queue}).json()["id"]
        assert run_until_idle(kept.app, queues=[queue]) == 1
        html = page.get("/dead").text
        assert died in html
        retried = page.post("/actions", data={"csrf": csrf_of(html), "action": "retry-all-dead",
                                              "queue": queue, "next": "/dead"},
                            follow_redirects=False)
        assert retried.status_code == 303
        assert died not in page.get("/dead").text


def test_a_tenant_never_sees_another_scopes_copy(kept: Live) -> None:
    ours, theirs = f"acme-{uuid.uuid4().hex[:8]}", f"globex-{uuid.uuid4().hex[:8]}"
    with api(kept, "token-a") as acme, api(kept, "token-b") as globex:
        assert acme.post("/api/v1/jobs", json={"task": "echo", "queue": ours,
                                               "delay": 3600}).status_code == 202
        mine = acme.post("/api/v1/jobs", json={"task": "flaky", "queue": ours}).json()["id"]
        other = globex.post("/api/v1/jobs", json={"task": "flaky", "queue": theirs}).json()["id"]
    assert run_until_idle(kept.app, queues=[ours, theirs]) == 2
    with (signed(kept, "admin-token") as admin, signed(kept, "token-a") as a,
          signed(kept, "token-b") as b):
        for path in ("/queues", "/dead"):  # the admin's copies first, then each tenant's
            everyone = admin.get(path).text
            assert f">{ours}<" in everyone and f">{theirs}<" in everyone
            assert (mine in everyone and other in everyone) or path == "/queues"
        for page, own, foreign, own_job, foreign_job in ((a, ours, theirs, mine, other),
                                                         (b, theirs, ours, other, mine)):
            queues, dead = page.get("/queues").text, page.get("/dead").text
            assert f'data-queue="{own}"' in queues
            assert f'data-queue="{foreign}"' not in queues
            assert own_job in dead and foreign_job not in dead
            assert f">{foreign}<" not in dead  # nor in the queue filter's choices


def test_a_refused_request_keeps_the_copies_and_later_dead_pages_are_not_kept(
        kept: Live) -> None:
    copies = web(kept).queues_page
    dead = web(kept).dead_page
    with signed(kept, "admin-token") as page, httpx.Client(base_url=kept.url,
                                                           timeout=10.0) as anonymous:
        page.get("/queues")
        before = copies.reads
        refused = anonymous.post("/api/v1/jobs", json={"task": "echo", "payload": {}})
        assert refused.status_code == 401
        with api(kept, "admin-token") as admin:
            malformed = admin.post("/api/v1/jobs", content=b"{not json",
                                   headers={"Content-Type": "application/json"})
        assert malformed.status_code in (400, 422)
        page.get("/queues")
        assert copies.reads == before  # nothing changed: the copy still serves
        kept_before = len(dead.copies)
        for cursor in ("a" * 26, "b" * 26, "c" * 26):
            assert page.get("/dead", params={"cursor": cursor}).status_code in (200, 400)
        assert len(dead.copies) == kept_before  # pages after the first are read, not kept
