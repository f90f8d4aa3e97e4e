"""Issue 16: "claimed-but-not-started jobs are not counted as running" (14 of 8 slots showed
as running). Workers report their claimed-ahead jobs by queue; the queues API and page, the
stats and overview show "running N (+M claimed)", and /metrics' running gauge leaves them
out. SQLite and PostgreSQL, against the real server."""

from __future__ import annotations

import re
import uuid

import httpx

from conveyor.job import WorkerInfo

from .harness import Live, sign_in


def test_queues_show_running_apart_from_claimed_ahead(live: Live, admin: httpx.Client) -> None:
    queue = f"ahead-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        assert admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                                "payload": {"n": n}}).status_code == 202
    claimed = live.app.call(lambda store: store.claim([queue], "worker-ahead", 3, 30.0))
    assert len(claimed) == 3
    # the worker started one of them and holds two for slots to free up
    info = WorkerInfo(id="worker-ahead", host="h", pid=1, queues=(queue,), concurrency=1,
                      claimed=2, claimed_queues={queue: 2})
    live.app.call(lambda store: store.heartbeat(info, [j.lease for j in claimed], 30.0))
    try:
        [shown] = [q for q in admin.get("/api/v1/queues").json()["queues"]
                   if q["name"] == queue]
        assert (shown["running"], shown["claimed"], shown["counts"]["running"]) == (1, 2, 1)
        stats = admin.get("/api/v1/stats").json()
        assert (stats["by_state"]["running"], stats["claimed"]) == (1, 2)
        assert stats["by_queue"][queue]["running"] == 1

        with httpx.Client(base_url=live.url, cookies={"conveyor_session": sign_in(
                live.url, "admin-token")}) as page:
            queues_page = page.get("/queues").text
            overview = page.get("/").text
        for html in (queues_page, overview):
            # the table's row, not a chart legend naming the queue before the first <tr
            row = next(r for r in html.split("<tr")[1:]
                       if f">{queue}<" in r and 'data-label="Running"' in r)
            assert re.search(r'data-label="Running"><span>1 <span[^>]*data-claimed="2"[^>]*>'
                             r"\(\+2 claimed\)", row), row
        cards = overview.split('id="states-h"')[1].split("</section>")[0]
        assert re.search(r'running.*data-claimed="2"', cards.split("/jobs?state=completed")[0],
                         re.S), cards  # the running card: "1 (+2 claimed)"

        metrics = admin.get("/metrics").text
        assert f'conveyor_queue_running{{queue="{queue}"}} 1.0' in metrics, \
            [line for line in metrics.splitlines() if "queue_running" in line]
    finally:
        live.app.call(lambda store: store.deregister_worker("worker-ahead"))
    # without the worker's report every claimed job counts as running again
    [shown] = [q for q in admin.get("/api/v1/queues").json()["queues"] if q["name"] == queue]
    assert (shown["running"], shown["claimed"]) == (3, 0)
