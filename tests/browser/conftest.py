"""Headless Chromium (Debian's, driven by Playwright) against a live server and worker.
Screenshots go to artifacts/ at the repository root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.harness import Live, serving, sign_in

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'ui.db'}"
    with serving(url, worker=True, sample_every=0.5) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def signed_in(browser: Any, live: Live, token: str) -> Any:
    """A browser context signed in with `token` (a session opened through /login)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.add_cookies([{"name": "conveyor_session", "value": sign_in(live.url, token),
                          "url": live.url}])
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    context = signed_in(browser, live, "admin-token")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def new_page(browser: Any, live: Live, **options: Any) -> tuple[Any, Any]:
    """A signed-in admin page in a context with these options (viewport, color_scheme ...)."""
    context = browser.new_context(**{"viewport": {"width": 1440, "height": 900}, **options})
    context.add_cookies([{"name": "conveyor_session", "value": sign_in(live.url, "admin-token"),
                          "url": live.url}])
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return context, page


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
