"""Dashboard sessions over HTTP (web/sessions.py), on SQLite and PostgreSQL: the cookie is a
random session id, not the token; the store keeps hashes only; sign-out revokes it; idle and
absolute expiry on a FakeClock; a CSRF token per session; Secure behind TLS; sessions shared by
every server on the store and ended when their token is removed. The browser attacks (login
CSRF, a replayed cookie) are in tests/browser/test_cross_origin.py."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from conveyor import Conveyor, FakeClock, Settings
from conveyor.web.server import build_server

from .harness import TOKENS, Live, ServerThread, close_app, free_port, make_url, store_urls

IDLE = 600.0
LIFETIME = 3600.0
COOKIE = "conveyor_session"


@contextmanager
def serving(url: str, *, tokens: str = TOKENS, clock: FakeClock | None = None,
            **settings: Any) -> Iterator[Live]:
    app = Conveyor(url, settings=Settings(session_idle=IDLE, session_lifetime=LIFETIME,
                                          **settings), clock=clock)
    app.migrate()
    server = build_server(app, "127.0.0.1", free_port(), tokens=tokens, log_level="warning")
    try:
        with ServerThread(server):
            yield Live(app, f"http://127.0.0.1:{server.config.port}", {}, server)
    finally:
        close_app(app)


@pytest.fixture(params=store_urls(), scope="module")
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_url(request.param, tmp_path_factory.mktemp("sessions"))


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture(scope="module")
def live(store_url: str, clock: FakeClock) -> Iterator[Live]:
    with serving(store_url, clock=clock) as running:
        yield running


def sign_in(live: Live, token: str, cookie: str | None = None) -> httpx.Response:
    cookies = {COOKIE: cookie} if cookie else None
    response = httpx.post(live.url + "/login", data={"token": token, "next": "/jobs"},
                          cookies=cookies)
    assert response.status_code == 303, response.text
    return response


def browser(live: Live, session: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, cookies={COOKIE: session},
                        headers={"Accept": "text/html"})


def signed_in(live: Live, session: str) -> bool:
    """True when the session cookie still signs its holder in (page and API alike)."""
    with browser(live, session) as client:
        page = client.get("/jobs")
        api = client.get("/api/v1/stats")
    assert (page.status_code == 200) == (api.status_code == 200), (page, api)
    return page.status_code == 200


def csrf_of(live: Live, session: str) -> str:
    with browser(live, session) as client:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/jobs").text)
    assert found
    return found.group(1)


def test_sign_in_gives_a_random_session_id_not_the_token(live: Live) -> None:
    response = sign_in(live, "admin-token")
    session = response.cookies[COOKIE]
    assert session != "admin-token" and len(session) == 43
    assert "conveyor_token" not in response.cookies
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "samesite=strict" in header.lower()
    assert f"Max-Age={int(LIFETIME)}" in header and "Path=/" in header
    assert "Secure" not in header  # plain http, not behind TLS
    assert sign_in(live, "admin-token").cookies[COOKIE] != session  # a new one each time
    assert signed_in(live, session)
    with browser(live, session) as client:  # a cookie reads; it never writes to the API
        assert client.post("/api/v1/jobs", json={"task": "echo"}).status_code == 401


def test_the_store_keeps_only_hashes(live: Live) -> None:
    session = sign_in(live, "token-a").cookies[COOKIE]
    digest = hashlib.sha256(session.encode()).hexdigest()
    record = live.app.call(lambda store: store.find_session(digest))
    assert record is not None
    assert session not in repr(record) and "token-a" not in repr(record)
    assert live.app.call(lambda store: store.find_session(session)) is None


def test_sign_out_revokes_the_session(live: Live) -> None:
    session = sign_in(live, "admin-token").cookies[COOKIE]
    other = sign_in(live, "admin-token").cookies[COOKIE]
    with browser(live, session) as client:
        out = client.post("/logout", data={"csrf": csrf_of(live, session)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers[
        "set-cookie"]
    assert not signed_in(live, session)  # the replayed cookie is worth nothing
    with browser(live, session) as client:
        assert client.get("/jobs").headers["location"].startswith("/login")
    assert signed_in(live, other)  # the same token's other sessions go on


def test_each_session_has_its_own_csrf_token(live: Live) -> None:
    first = sign_in(live, "admin-token").cookies[COOKIE]
    second = sign_in(live, "admin-token").cookies[COOKIE]
    assert csrf_of(live, first) != csrf_of(live, second)
    assert csrf_of(live, first) == csrf_of(live, first)  # stable within a session
    with browser(live, second) as client:
        crossed = client.post("/queues/csrfq/pause", data={"csrf": csrf_of(live, first)})
    assert crossed.status_code == 403
    old_token = csrf_of(live, first)
    with browser(live, first) as client:
        client.post("/logout", data={"csrf": old_token})
    again = sign_in(live, "admin-token").cookies[COOKIE]
    with browser(live, again) as client:
        assert client.post("/queues/csrfq/pause", data={"csrf": old_token}).status_code == 403
        done = client.post("/queues/csrfq/pause", data={"csrf": csrf_of(live, again)})
    assert done.status_code == 303
    assert not any(q.name == "csrfq" and not q.paused for q in live.app.queues())


def test_a_session_left_idle_ends(live: Live, clock: FakeClock) -> None:
    session = sign_in(live, "token-a").cookies[COOKIE]
    clock.advance(IDLE - 1)
    assert signed_in(live, session)  # used: its idle deadline moves on
    clock.advance(IDLE - 1)
    assert signed_in(live, session)
    clock.advance(IDLE + 1)
    assert not signed_in(live, session)


def test_a_session_ends_at_its_lifetime_however_busy(live: Live, clock: FakeClock) -> None:
    session = sign_in(live, "token-a").cookies[COOKIE]
    used_for = 0.0
    while used_for + IDLE / 2 < LIFETIME:
        clock.advance(IDLE / 2)
        used_for += IDLE / 2
        assert signed_in(live, session), used_for
    clock.advance(LIFETIME - used_for)
    assert not signed_in(live, session)


def test_signing_in_again_replaces_the_browsers_session(live: Live) -> None:
    first = sign_in(live, "admin-token").cookies[COOKIE]
    second = sign_in(live, "token-b", cookie=first).cookies[COOKIE]
    assert second != first
    assert not signed_in(live, first)
    assert signed_in(live, second)


def test_sessions_are_shared_and_end_with_their_token(store_url: str, live: Live) -> None:
    session = sign_in(live, "token-a").cookies[COOKIE]
    with serving(store_url) as twin, serving(store_url, tokens="admin-token=ops:admin") as rotated:
        assert signed_in(twin, session)        # another server on the same store
        assert not signed_in(rotated, session)  # token-a is no longer configured there
        with browser(twin, session) as client:
            client.post("/logout", data={"csrf": csrf_of(twin, session)})
    assert not signed_in(live, session)  # signed out on the twin: gone here too


def test_cookies_are_secure_behind_tls(store_url: str) -> None:
    with serving(store_url, behind_tls=True) as live:
        header = sign_in(live, "admin-token").headers["set-cookie"]
        assert "Secure" in header
        session = httpx.post(live.url + "/login", data={"token": "admin-token"}).cookies[COOKIE]
        with browser(live, session) as client:  # the page as the browser saw it: https
            own = {"Origin": f"https://127.0.0.1:{live.server.config.port}"}
            response = client.post("/queues/tlsq/pause", headers=own,
                                   data={"csrf": csrf_of(live, session)})
            assert response.status_code == 303
            out = client.post("/logout", data={"csrf": csrf_of(live, session)})
            assert "Secure" in out.headers["set-cookie"]
