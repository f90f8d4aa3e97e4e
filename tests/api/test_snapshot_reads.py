"""The overview and /metrics' gauges come from a shared read at most CONVEYOR_DASHBOARD_SNAPSHOT
(1 s) old (web/snapshot.py): concurrent requests cause one store read, the page and the
scrape say how old it is, a tenant's overview is its own read, and what changed is shown
once the copy is older than that; a page whose new read is slow (PostgreSQL: reads run off the
loop) gets the older copy after PAGE_WAIT, with its age and a line saying so. On SQLite and
PostgreSQL, against the real server."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from conveyor.settings import Settings
from conveyor.web import dead_view
from conveyor.web.context import PAGE_WAIT

from .harness import Live, sign_in

MAX_AGE = 1.0


def web(live: Live) -> Any:
    return live.server.config.app.state.web  # type: ignore[union-attr]


def page(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10.0,
                        cookies={"conveyor_session": sign_in(live.url, token)})


def within_max_age(html: str) -> bool:
    """At most MAX_AGE old, or an older copy that says its new read is slow (PostgreSQL's
    reads, on a loaded machine, may take longer than PAGE_WAIT)."""
    age = age_of(html)
    return 0 <= age <= MAX_AGE or ('class="rereading"' in html
                                   and age <= MAX_AGE + Settings().dashboard_stale)


def age_of(html: str) -> float:
    found = re.search(r'data-snapshot-age="([0-9.]+)"', html)
    assert found, html[:500]
    return float(found.group(1))


def test_concurrent_overviews_cause_one_store_read(live: Live) -> None:
    shared = web(live).overview
    assert shared.max_age == MAX_AGE
    with page(live, "admin-token") as first:
        first.get("/")
        time.sleep(MAX_AGE + 0.1)  # the copy is stale now: the next request reads
        before = shared.reads
        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(lambda _: first.get("/"), range(8)))
    assert all(p.status_code == 200 for p in pages)
    assert shared.reads - before == 1, shared.reads - before
    assert all(within_max_age(p.text) for p in pages)


def test_the_overview_shows_a_change_within_the_max_age(live: Live, admin: httpx.Client) -> None:
    queue = f"snap-{uuid.uuid4().hex[:8]}"
    with page(live, "admin-token") as viewer:
        viewer.get("/")  # a fresh copy, without the queue
        created = admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                                   "delay": 3600})
        assert created.status_code == 202
        began = time.monotonic()
        seen: list[tuple[float, float, bool]] = []
        while time.monotonic() - began < MAX_AGE + 1.0:
            html = viewer.get("/").text
            seen.append((time.monotonic() - began, age_of(html), f">{queue}<" in html))
            assert within_max_age(html), seen  # never older than stated
            time.sleep(0.05)
    # shown by the first copy read after the enqueue: at most the max age (and a read) later
    assert any(shown for _, _, shown in seen), seen
    first = next(at for at, _, shown in seen if shown)
    assert first <= MAX_AGE + 0.5 + PAGE_WAIT, seen
    assert all(shown for at, _, shown in seen if at > first), seen


def test_a_tenant_overview_is_its_own_read(live: Live, admin: httpx.Client) -> None:
    queue = f"snap-{uuid.uuid4().hex[:8]}"
    assert admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                            "delay": 3600}).status_code == 202
    shared = web(live).overview
    with page(live, "admin-token") as admin_page, page(live, "token-a") as acme_page:
        time.sleep(MAX_AGE + 0.1)
        assert f">{queue}<" in admin_page.get("/").text
        before = shared.reads
        html = acme_page.get("/").text
        assert shared.reads == before + 1, "not the admin's copy"
        assert f">{queue}<" not in html  # the admin's queue is not the tenant's


def test_metrics_gauges_are_shared_and_say_their_age(live: Live, admin: httpx.Client) -> None:
    gauges = web(live).gauges
    admin.get("/metrics")
    time.sleep(MAX_AGE + 0.1)
    before = gauges.reads
    with ThreadPoolExecutor(6) as pool:
        texts = [r.text for r in pool.map(lambda _: admin.get("/metrics"), range(6))]
    assert gauges.reads - before == 1
    for text in texts:
        [age] = [float(line.split()[1]) for line in text.splitlines()
                 if line.startswith("conveyor_metrics_snapshot_age_seconds ")]
        assert 0 <= age <= MAX_AGE


def test_a_slow_read_does_not_hold_the_overview(live: Live, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    if getattr(live.app.store, "inline", False):
        pytest.skip("SQLite reads inline, on the server's loop: a page waits for its read")
    stats, slow_for = live.app.stats, 1.0

    def slow_stats(*args: Any, **kwargs: Any) -> Any:
        time.sleep(slow_for)  # the store busy with draining workers
        return stats(*args, **kwargs)

    with page(live, "admin-token") as viewer:
        viewer.get("/")
        time.sleep(MAX_AGE + 0.1)  # stale, but usable while a new read runs
        monkeypatch.setattr(live.app, "stats", slow_stats)
        began = time.monotonic()
        html = viewer.get("/").text
        took = time.monotonic() - began
        monkeypatch.undo()
        assert took < slow_for / 2, took  # not held by the read (main: 1 s and more)
        assert MAX_AGE < age_of(html) < MAX_AGE + 1.0, age_of(html)
        assert 'class="rereading"' in html and "Reading them again is taking long" in html
        time.sleep(slow_for + 0.2)  # the slow read has finished and is kept
        html = viewer.get("/").text
        assert age_of(html) < slow_for + 0.5, age_of(html)  # its copy or newer, not the first


def test_a_slow_read_does_not_hold_the_dead_page(live: Live, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    """The dead page's copy the same way; its read delayed without blocking the loop (so on
    SQLite too: the page's wiring, not the store's threads)."""
    read_store = dead_view.read_store

    async def slow_read(*args: Any) -> Any:
        await asyncio.sleep(1.0)
        return await read_store(*args)

    with page(live, "admin-token") as viewer:
        assert viewer.get("/dead").status_code == 200
        time.sleep(MAX_AGE + 0.1)
        monkeypatch.setattr(dead_view, "read_store", slow_read)
        began = time.monotonic()
        html = viewer.get("/dead").text
        took = time.monotonic() - began
        monkeypatch.undo()
        assert took < 0.5, took  # main: 1 s and more
        assert age_of(html) > MAX_AGE and 'class="rereading"' in html
