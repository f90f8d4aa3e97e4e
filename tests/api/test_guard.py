"""Where requests may come from (web/guard.py): JSON bodies only on the API, no state change
asked by a page of another origin, and in open mode (no tokens) loopback Host names only.
Browsers as the attacker are in tests/browser/test_cross_origin.py; here the same requests are
made by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from conveyor.job import JobFilter
from conveyor.web.server import build_server

from .harness import Live, ServerThread, assert_error, close_app, free_port, make_url, sign_in
from .harness import store_urls as store_kinds
from .webapp import build_app


@pytest.fixture(params=store_kinds(), scope="module")
def open_live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Live]:
    """A server in open mode: no tokens, so every caller on this machine is an admin."""
    url = make_url(request.param, tmp_path_factory.mktemp("open"))
    app, flags = build_app(url)
    if request.param == "postgres":
        app.migrate()
    server = build_server(app, "127.0.0.1", free_port(), tokens="", log_level="warning")
    with ServerThread(server):
        yield Live(app, f"http://127.0.0.1:{server.config.port}", flags, server)
    close_app(app)


def stored(live: Live, correlation: str) -> int:
    return len(live.app.list_jobs(JobFilter(correlation_id=correlation), limit=10))


def paused(live: Live, queue: str) -> bool:
    return any(q.name == queue and q.paused for q in live.app.queues())


def host_of(live: Live) -> str:
    return live.url.removeprefix("http://")


# --- 415: JSON endpoints take JSON -------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None])
def test_a_body_that_is_not_declared_json_is_415_and_stores_nothing(
        open_live: Live, content_type: str | None) -> None:
    correlation = uuid.uuid4().hex
    body = f'{{"task": "echo", "correlation_id": "{correlation}"}}'.encode()
    headers = {"Content-Type": content_type} if content_type else {}
    with open_live.client() as client:
        for path in ("/api/v1/jobs", "/api/v1/batches"):
            error = assert_error(client.post(path, content=body, headers=headers),
                                 415, "unsupported_media_type")
            assert "application/json" in error["message"]
    assert stored(open_live, correlation) == 0


def test_json_with_a_charset_is_fine_and_bodyless_actions_need_no_type(open_live: Live) -> None:
    with open_live.client() as client:
        created = client.post("/api/v1/jobs", content=b'{"task": "echo", "delay": 600}',
                              headers={"Content-Type": "Application/JSON; charset=utf-8"})
        assert created.status_code == 202, created.text
        assert client.post(f"/api/v1/jobs/{created.json()['id']}/cancel").status_code == 200
        assert client.post("/api/v1/queues/bodyless/pause").status_code == 200
        form = client.post("/api/v1/queues/formed/pause", data={"x": "1"})
        assert_error(form, 415, "unsupported_media_type")
    assert paused(open_live, "bodyless") and not paused(open_live, "formed")


def test_415_holds_with_tokens_too(live: Live, admin: httpx.Client) -> None:
    correlation = uuid.uuid4().hex
    response = admin.post("/api/v1/jobs", headers={"Content-Type": "text/plain"},
                          content=f'{{"task": "echo", "correlation_id": "{correlation}"}}')
    assert_error(response, 415, "unsupported_media_type")
    assert stored(live, correlation) == 0


# --- 403: no state change asked from another origin ---------------------------------------


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:1"},           # same host, another port: another origin
    {"Origin": "https://127.0.0.1"},
    {"Origin": "null"},                          # a sandboxed frame, a data: URL
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},             # a sibling subdomain is not this origin
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"},
])
def test_writes_from_another_origin_are_refused(open_live: Live,
                                                headers: dict[str, str]) -> None:
    correlation = uuid.uuid4().hex
    queue = f"guarded-{correlation[:8]}"
    with open_live.client() as client:
        enqueue = client.post("/api/v1/jobs", headers=headers,
                              json={"task": "echo", "correlation_id": correlation})
        assert_error(enqueue, 403, "cross_origin")
        assert_error(client.post(f"/api/v1/queues/{queue}/pause", headers=headers),
                     403, "cross_origin")
        assert_error(client.post(f"/queues/{queue}/pause", headers=headers, data={}),
                     403, "cross_origin")
        assert client.get("/api/v1/stats", headers=headers).status_code == 200  # reads pass
    assert stored(open_live, correlation) == 0
    assert not paused(open_live, queue)


def test_writes_from_its_own_origin_pass(open_live: Live) -> None:
    own = {"Origin": open_live.url, "Sec-Fetch-Site": "same-origin"}
    with open_live.client() as client:
        created = client.post("/api/v1/jobs", headers=own, json={"task": "echo", "delay": 60})
        assert created.status_code == 202, created.text
        localhost = {"Origin": f"http://localhost:{open_live.server.config.port}",
                     "Host": f"localhost:{open_live.server.config.port}"}
        assert client.post("/api/v1/queues/own/pause", headers=localhost).status_code == 200
        typed = client.post("/api/v1/queues/own/resume", headers={"Sec-Fetch-Site": "none"})
        assert typed.status_code == 200


def test_cross_origin_is_refused_with_tokens_too(live: Live, admin: httpx.Client) -> None:
    correlation = uuid.uuid4().hex
    response = admin.post("/api/v1/jobs", headers={"Origin": "http://evil.example"},
                          json={"task": "echo", "correlation_id": correlation})
    assert_error(response, 403, "cross_origin")
    assert stored(live, correlation) == 0


def test_dashboard_forms_and_login_refuse_other_origins(live: Live) -> None:
    session = sign_in(live.url, "admin-token")
    evil = {"Origin": "http://evil.example"}
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": session}) as browser:
        page = browser.get("/queues", headers={"Accept": "text/html"}).text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        forged = browser.post("/queues/formq/pause", data={"csrf": csrf}, headers=evil)
        assert_error(forged, 403, "cross_origin")
        assert not paused(live, "formq")
        login = browser.post("/login", data={"token": "token-b"}, headers=evil)
        assert_error(login, 403, "cross_origin")
        assert "set-cookie" not in login.headers
        own = browser.post("/queues/formq/pause", data={"csrf": csrf},
                           headers={"Origin": live.url})
        assert own.status_code == 303
    assert paused(live, "formq")


# --- open mode: loopback Host names only (DNS rebinding) -----------------------------------


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil.example",
    "10.0.0.5:{port}", "127.0.0.1:80x", ""])
def test_open_mode_answers_only_loopback_names(open_live: Live, host: str) -> None:
    port = open_live.server.config.port
    with open_live.client() as client:
        for path in ("/api/v1/jobs", "/api/v1/stats", "/", "/metrics", "/healthz"):
            response = client.get(path, headers={"Host": host.format(port=port)})
            error = assert_error(response, 403, "host_not_allowed")
            assert "127.0.0.1" in error["message"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST",
                                  "[::1]:{port}", "127.0.0.2"])
def test_open_mode_answers_loopback_names(open_live: Live, host: str) -> None:
    port = open_live.server.config.port
    with open_live.client() as client:
        response = client.get("/api/v1/stats", headers={"Host": host.format(port=port)})
        assert response.status_code == 200, response.text


def test_with_tokens_any_host_name_is_served(live: Live, admin: httpx.Client) -> None:
    assert admin.get("/api/v1/stats", headers={"Host": "jobs.example.com"}).status_code == 200


def test_openapi_documents_415_and_the_queue_name_rule(open_live: Live) -> None:
    with open_live.client() as client:
        doc = client.get("/openapi.json").json()
    for path in ("/api/v1/jobs", "/api/v1/batches"):
        assert "415" in doc["paths"][path]["post"]["responses"]
    queue = doc["components"]["schemas"]["NewJob"]["properties"]["queue"]
    assert queue["pattern"] == "^[A-Za-z0-9._:/-]{1,100}$"
