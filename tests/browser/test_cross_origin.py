"""The attacker is a page of another origin, served by a second local HTTP server on another
port and opened in the same headless Chromium as the victim's dashboard. What it tries:
"simple" text/plain and form POSTs that a browser sends without a preflight (enqueue a job,
pause a queue), a sign-in form that would swap the victim's session (login CSRF), and a
session cookie replayed after sign-out. Each must fail and store nothing; the dashboard
itself keeps working."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from api.harness import Live, free_port, serving
from conveyor.job import JobFilter

from .conftest import shot


class AttackerSite:
    """http://127.0.0.1:OTHER_PORT/NAME serves the page registered under NAME."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                body = pages.get(self.path.lstrip("/"), "no such page").encode()
                self.send_response(200 if self.path.lstrip("/") in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page(self, name: str, html: str) -> str:
        self.pages[name] = f"<!doctype html><html><body>{html}</body></html>"
        return f"{self.url}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def attacker() -> Iterator[AttackerSite]:
    site = AttackerSite()
    yield site
    site.close()


@pytest.fixture(scope="module")
def open_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server in open mode (no tokens): any page on this machine could try to drive it."""
    with serving(f"sqlite:///{tmp_path_factory.mktemp('open') / 'open.db'}", tokens="") as live:
        yield live


def stored(live: Live, correlation: str) -> int:
    return len(live.app.list_jobs(JobFilter(correlation_id=correlation), limit=10))


def paused(live: Live, queue: str) -> bool:
    return any(q.name == queue and q.paused for q in live.app.queues())


def new_page(browser: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    return context, context.new_page()


def auto_submit(action: str, fields: dict[str, str], enctype: str | None = None) -> str:
    inputs = "".join(f"<input type=hidden name='{name}' value='{value}'>"
                     for name, value in fields.items())
    kind = f" enctype='{enctype}'" if enctype else ""
    return (f"<form id=f method=post action='{action}'{kind}>{inputs}</form>"
            "<script>document.getElementById('f').submit()</script>")


def test_a_page_of_another_origin_cannot_enqueue_in_open_mode(
        browser: Any, open_live: Live, attacker: AttackerSite) -> None:
    by_fetch, by_form = uuid.uuid4().hex, uuid.uuid4().hex
    body = f'{{"task": "echo", "correlation_id": "{by_fetch}"}}'
    fetch = attacker.page("fetch.html", f"""<script>
        fetch("{open_live.url}/api/v1/jobs", {{method: "POST", mode: "no-cors",
              headers: {{"Content-Type": "text/plain"}}, body: {body!r}}})
          .finally(() => {{ document.title = "sent"; }});
        </script>""")
    context, page = new_page(browser)
    page.goto(fetch)
    page.wait_for_function("document.title === 'sent'")
    assert stored(open_live, by_fetch) == 0
    # the classic text/plain form: name + "=" + value makes a JSON body
    form = attacker.page("form.html", auto_submit(f"{open_live.url}/api/v1/jobs", {
        '{"task": "echo", "payload": {"x": "': f'"}}, "correlation_id": "{by_form}"}}'},
        "text/plain"))
    page.goto(form)
    page.wait_for_url(f"{open_live.url}/api/v1/jobs")
    shot(page, "cross-origin-enqueue-refused")
    assert stored(open_live, by_form) == 0
    assert "cross_origin" in page.content()
    context.close()


def test_a_page_of_another_origin_cannot_pause_a_queue_in_open_mode(
        browser: Any, open_live: Live, attacker: AttackerSite) -> None:
    api_queue, form_queue = f"api-{uuid.uuid4().hex[:8]}", f"ui-{uuid.uuid4().hex[:8]}"
    context, page = new_page(browser)
    for name, action in (("pause-api.html", f"/api/v1/queues/{api_queue}/pause"),
                         ("pause-ui.html", f"/queues/{form_queue}/pause")):
        page.goto(attacker.page(name, auto_submit(open_live.url + action,
                                                  {"csrf": "guessed", "next": "/queues"})))
        page.wait_for_url(open_live.url + action)
        assert "cross_origin" in page.content()
    context.close()
    assert not paused(open_live, api_queue)
    assert not paused(open_live, form_queue)


def test_the_dashboard_itself_keeps_working_in_open_mode(browser: Any, open_live: Live) -> None:
    queue = f"mine-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=open_live.url) as client:
        job = client.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 600})
        assert job.status_code == 202
    context, page = new_page(browser)
    page.goto(open_live.url + "/queues")
    row = page.locator("tr", has_text=queue)
    row.get_by_role("button", name="Pause").click()
    page.wait_for_selector(f"text=Paused queue {queue}")
    assert paused(open_live, queue)
    page.goto(f"{open_live.url}/jobs/{job.json()['id']}")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("text=Cancelled 1 job")
    shot(page, "open-mode-dashboard-works")
    context.close()


def sign_in_with_the_form(page: Any, live: Live, token: str) -> None:
    page.goto(live.url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/")


def test_login_csrf_from_another_origin_does_not_swap_the_session(
        browser: Any, live: Live, attacker: AttackerSite) -> None:
    context, page = new_page(browser)
    sign_in_with_the_form(page, live, "admin-token")
    before = sorted((c["name"], c["value"]) for c in context.cookies(live.url))
    page.goto(attacker.page("login.html", auto_submit(
        f"{live.url}/login", {"token": "token-b", "next": "/workers"})))
    page.wait_for_url(f"{live.url}/**")
    after = sorted((c["name"], c["value"]) for c in context.cookies(live.url))
    assert after == before, "the attacker's sign-in replaced the victim's cookie"
    page.goto(live.url + "/workers")
    assert page.locator(".identity").inner_text() == "admin"
    context.close()


def test_a_cookie_replayed_after_sign_out_no_longer_works(browser: Any, live: Live) -> None:
    context, page = new_page(browser)
    sign_in_with_the_form(page, live, "admin-token")
    cookies = context.cookies(live.url)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live.url + "/login")
    context.close()
    replay, page = new_page(browser)
    replay.add_cookies(cookies)  # what someone who copied the cookie would send
    page.goto(live.url + "/jobs")
    assert page.url.startswith(live.url + "/login")
    shot(page, "replayed-cookie-refused")
    replay.close()
    jar = {c["name"]: c["value"] for c in cookies}
    with httpx.Client(base_url=live.url, cookies=jar) as client:
        assert client.get("/api/v1/stats").status_code == 401
    assert "admin-token" not in jar.values(), "the cookie must not be the API token itself"
