"""The queues page: consumers (live workers x slots) per queue, and a warning for a queue with
jobs waiting and no worker that takes it. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
import uuid

import httpx

from .harness import Live, WorkerThread, sign_in


def test_consumers_and_the_no_worker_warning(live: Live, admin: httpx.Client) -> None:
    orphan = f"orphan-{uuid.uuid4().hex[:8]}"
    admin.post("/api/v1/jobs", json={"task": "echo", "queue": orphan})
    admin.post("/api/v1/jobs", json={"task": "echo", "delay": 600})  # queue default
    with WorkerThread(live.app, queues=("default", "slow")), httpx.Client(
            base_url=live.url, timeout=10.0,
            cookies={"conveyor_session": sign_in(live.url, "admin-token")}) as page:
        deadline = time.monotonic() + 10
        while not live.app.workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        html = page.get("/queues").text
    banners = re.findall(r'data-starving="([^"]+)"', html)
    assert orphan in banners, banners
    assert f"conveyor worker --queues {orphan}" in html
    assert 'data-starving="default"' not in html
    row = html[html.index('<tr data-queue="default">'):]
    row = row[:row.index("</tr>")]
    slots = re.search(r'data-consumers="(\d+)">([^<]+)<', row)
    assert slots is not None and int(slots[1]) >= 1, row
    assert re.fullmatch(r"\d+ workers?, \d+ slots?", slots[2].strip()), slots[2]
    orphan_row = html[html.index(f'<tr data-queue="{orphan}">'):]
    assert "no worker" in orphan_row[:orphan_row.index("</tr>")]
