"""Health, readiness, metrics, OpenAPI, queues, stats, workers and the event stream."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from .harness import Live, assert_error, sign_in, wait_state


def test_health_and_readiness(live: Live) -> None:
    with live.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json() == {"status": "ready"}


def test_openapi_describes_every_endpoint(live: Live) -> None:
    with live.client() as anonymous:
        doc = anonymous.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/jobs", "/api/v1/batches", "/api/v1/jobs/{id}",
                 "/api/v1/jobs/{id}/cancel", "/api/v1/jobs/{id}/retry", "/api/v1/queues",
                 "/api/v1/queues/{name}/pause", "/api/v1/queues/{name}/resume",
                 "/api/v1/stats", "/api/v1/workers", "/api/v1/events", "/healthz", "/readyz",
                 "/metrics"):
        assert path in doc["paths"], path
    assert "422" in doc["paths"]["/api/v1/jobs"]["post"]["responses"]


def test_metrics_in_prometheus_format(live: Live, admin: httpx.Client, worker: object) -> None:
    body = admin.post("/api/v1/jobs", json={"task": "echo", "queue": "metered"}).json()
    wait_state(admin, body["id"], {"completed"})
    time.sleep(0.2)  # the event reaches the metrics listener on the server's loop
    text = admin.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    for name in ('conveyor_jobs_enqueued_total{queue="metered",task="echo"} 1.0',
                 'conveyor_jobs_completed_total{queue="metered",task="echo"} 1.0',
                 'conveyor_job_duration_seconds_count{queue="metered",task="echo"} 1.0',
                 "conveyor_store_up 1.0"):
        assert name in lines, name
    for prefix in ("conveyor_queue_backlog{", "conveyor_queue_oldest_job_age_seconds{",
                   "conveyor_workers ", "conveyor_jobs_failed_total", "conveyor_jobs_dead_total",
                   "conveyor_jobs_retried_total", "conveyor_job_duration_quantile_seconds{"):
        assert prefix in text.text, prefix


def test_queues_pause_and_resume(admin: httpx.Client) -> None:
    admin.post("/api/v1/jobs", json={"task": "echo", "queue": "pausable", "delay": 3600})
    paused = admin.post("/api/v1/queues/pausable/pause")
    assert paused.json() == {"name": "pausable", "paused": True}
    queues = {q["name"]: q for q in admin.get("/api/v1/queues").json()["queues"]}
    assert queues["pausable"]["paused"] is True
    assert queues["pausable"]["scheduled"] == 1 and queues["pausable"]["backlog"] == 1
    assert {"running", "throughput_per_minute", "oldest_queued_age"} <= set(queues["pausable"])
    admin.post("/api/v1/queues/pausable/resume")
    queues = {q["name"]: q for q in admin.get("/api/v1/queues").json()["queues"]}
    assert queues["pausable"]["paused"] is False


def test_paused_queue_holds_its_jobs(admin: httpx.Client, worker: object) -> None:
    admin.post("/api/v1/queues/held/pause")
    body = admin.post("/api/v1/jobs", json={"task": "echo", "queue": "held"}).json()
    time.sleep(0.5)
    assert admin.get(body["status_url"]).json()["state"] == "queued"
    admin.post("/api/v1/queues/held/resume")
    wait_state(admin, body["id"], {"completed"})


def test_stats_and_workers(admin: httpx.Client, worker: object) -> None:
    stats = admin.get("/api/v1/stats").json()
    assert set(stats) >= {"by_state", "by_queue", "by_task", "durations", "failure_rate",
                          "retry_success_rate"}
    assert set(stats["durations"]) >= {"p50", "p95", "p99"}
    deadline = time.monotonic() + 5
    while not (workers := admin.get("/api/v1/workers").json()["workers"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert {"id", "host", "queues", "running", "heartbeat_age"} <= set(workers[0])
    assert workers[0]["heartbeat_age"] >= 0


def test_event_stream_carries_state_changes_and_progress(live: Live, admin: httpx.Client,
                                                         worker: object) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    with admin.stream("GET", "/api/v1/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        job_id = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            if kind == "ready" and job_id is None:
                job_id = admin.post("/api/v1/jobs", json={
                    "task": "slow", "payload": {"steps": 2, "pause": 0.01}}).json()["id"]
            if line.startswith("data: ") and kind in ("job", "progress"):
                event = json.loads(line[6:])
                if event["id"] == job_id:
                    seen.append((kind, event))
                    if event["state"] == "completed":
                        break
    states = [e["state"] for kind, e in seen if kind == "job"]
    assert states[0] == "queued" and states[-1] == "completed" and "running" in states
    progress = [e["progress"] for kind, e in seen if kind == "progress"]
    assert progress and progress[-1] == 100


def test_event_stream_needs_a_token(live: Live) -> None:
    with live.client() as anonymous:
        assert_error(anonymous.get("/api/v1/events"), 401)


def test_templates_and_static_files_ship_in_the_package() -> None:
    from importlib.resources import files

    web = files("conveyor.web")
    for name in ("templates/base.html", "templates/overview.html", "templates/job.html",
                 "static/conveyor.css", "static/live.js"):
        assert web.joinpath(name).is_file(), name


def test_dashboard_sends_security_headers(admin: httpx.Client) -> None:
    response = admin.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert admin.get("/static/live.js").status_code == 200


def test_readyz_is_503_until_the_schema_is_migrated(tmp_path: Any) -> None:
    from conveyor import Conveyor
    from conveyor.web.server import build_server

    from .harness import ServerThread, close_app, free_port

    app = Conveyor(f"sqlite:///{tmp_path / 'fresh.db'}", auto_migrate=False)
    server = build_server(app, "127.0.0.1", free_port(), tokens="", log_level="error")
    try:
        with ServerThread(server):
            url = f"http://127.0.0.1:{server.config.port}"
            body = assert_error_like(httpx.get(url + "/readyz"))
            assert "conveyor migrate" in body["error"]["message"]
            app.migrate()
            assert httpx.get(url + "/readyz").json() == {"status": "ready"}
            assert httpx.get(url + "/healthz").status_code == 200
    finally:
        close_app(app)


def assert_error_like(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503
    body: dict[str, Any] = response.json()
    assert body["status"] == "unavailable" and body["error"]["code"] == "unavailable"
    return body


def test_workers_show_claimed_ahead_apart_from_running(live: Live, admin: httpx.Client) -> None:
    """A worker's heartbeat says how many of its jobs it claimed ahead (prefetched): the API,
    the workers page and /metrics show them as claimed, not as running past its slots."""
    from conveyor.job import Lease, WorkerInfo

    # five leases it lists (the store counts what is listed; these need not be real jobs)
    leases = [Lease(f"job-{n}", n) for n in range(5)]
    info = WorkerInfo(id="worker-ahead", host="h", pid=1, queues=("claims-ahead",),
                      concurrency=2, claimed=3)
    live.app.call(lambda s: s.heartbeat(info, leases, 30.0))
    try:
        [shown] = [w for w in admin.get("/api/v1/workers").json()["workers"]
                   if w["id"] == "worker-ahead"]
        assert (shown["running"], shown["claimed"], shown["concurrency"]) == (2, 3, 2)
        with httpx.Client(base_url=live.url, cookies={"conveyor_session": sign_in(
                live.url, "admin-token")}) as page:
            html = page.get("/workers").text
            # the overview's figures may be a copy up to CONVEYOR_DASHBOARD_SNAPSHOT (1 s) old
            deadline = time.monotonic() + 2.5
            while "3 claimed ahead" not in (overview := page.get("/").text):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert "2 / 2" in html and 'data-claimed="3"' in html and "+3 claimed" in html
        assert "3 claimed ahead" in overview
        metrics = admin.get("/metrics").text
        assert "conveyor_worker_jobs_claimed" in metrics
    finally:
        live.app.call(lambda s: s.deregister_worker("worker-ahead"))
