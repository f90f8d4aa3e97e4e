"""The dead page's older copy in Chromium (issue 16): while the page's new read is slow (the
store busy with draining workers), it shows the older figures at once, with their age and a
line saying they are being read again, at 1440 and 390 px wide, never wider than the screen.
Screenshots: artifacts/stale-dead-1440.png, artifacts/stale-dead-390.png."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tests.browser.conftest import new_page, shot

from conveyor.web import dead_view

SLOW = 2.0


def test_the_dead_page_says_its_figures_are_being_read_again(
        browser: Any, live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    read_store = dead_view.read_store

    async def slow_read(*args: Any) -> Any:
        await asyncio.sleep(SLOW)
        return await read_store(*args)

    for width, height in ((1440, 900), (390, 844)):
        context, page = new_page(browser, live, viewport={"width": width, "height": height})
        try:
            page.goto(f"{live.url}/dead")
            assert page.locator(".rereading").count() == 0  # its own fresh read
            time.sleep(1.2)  # past the copy's max age (1 s), within its stale time
            monkeypatch.setattr(dead_view, "read_store", slow_read)
            began = time.monotonic()
            page.goto(f"{live.url}/dead")
            took = time.monotonic() - began
            monkeypatch.undo()
            assert took < SLOW / 2, took  # not held by the read
            banner = page.locator(".rereading")
            assert banner.is_visible()
            assert "Reading them again is taking long" in banner.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, f"stale-dead-{width}")
            assert not page.errors
        finally:
            context.close()
        time.sleep(SLOW + 0.3)  # the slow read has ended (and is kept)
