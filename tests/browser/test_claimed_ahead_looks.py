"""Issue 16: "running N (+M claimed)" on the overview and the queues page, as a browser shows it
at 1440x900 and on a phone (390x844): visible, in the running column or card, and the page never
wider than the screen. A server without a worker, so the claimed jobs stay where the test put
them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from api.harness import Live, serving
from conveyor.job import WorkerInfo

from .conftest import new_page, shot

SIZES = {"desk": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def idle_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path_factory.mktemp('ahead') / 'ui.db'}"
    with serving(url, sample_every=0.5) as live:
        yield live


@pytest.fixture(scope="module")
def ahead_queue(idle_live: Live) -> Iterator[str]:
    """A queue with 4 jobs claimed by one worker that started 1 and holds 3 ahead."""
    queue = f"ahead-{uuid.uuid4().hex[:6]}"
    with idle_live.client("admin-token") as admin:
        for n in range(4):
            assert admin.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                                    "payload": {"n": n}}).status_code == 202
    claimed = idle_live.app.call(lambda store: store.claim([queue], "worker-ahead", 4, 60.0))
    assert len(claimed) == 4
    info = WorkerInfo(id="worker-ahead", host="h", pid=1, queues=(queue,), concurrency=1,
                      claimed=3, claimed_queues={queue: 3})
    idle_live.app.call(lambda store: store.heartbeat(info, [j.lease for j in claimed], 60.0))
    yield queue
    idle_live.app.call(lambda store: store.deregister_worker("worker-ahead"))


def document_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("size", list(SIZES))
def test_running_and_claimed_ahead_read_apart(browser: Any, idle_live: Live, ahead_queue: str,
                                              size: str) -> None:
    context, page = new_page(browser, idle_live, viewport=SIZES[size])
    page.goto(idle_live.url + "/queues")
    row = page.locator("tr", has_text=ahead_queue)
    running = row.locator('[data-label="Running"]')
    assert running.inner_text().split() == ["1", "(+3", "claimed)"]
    assert running.locator("[data-claimed]").is_visible()
    assert document_width(page) <= SIZES[size]["width"], document_width(page)
    # the row's last cell (its actions) is not cut off by the table's frame
    pause = row.get_by_role("button", name=f"Pause queue {ahead_queue}").bounding_box()
    frame = page.locator(".table-wrap").first.bounding_box()
    assert pause["x"] + pause["width"] <= frame["x"] + frame["width"], (pause, frame)
    shot(page, f"queues-claimed-{size}")

    page.goto(idle_live.url + "/")
    card = page.locator("[data-claimed]").first
    assert card.is_visible() and card.inner_text() == "(+3 claimed)"
    assert "1 / 1 slots busy, 3 claimed ahead" in page.locator("[data-slots]").inner_text()
    assert document_width(page) <= SIZES[size]["width"], document_width(page)
    shot(page, f"overview-claimed-{size}")
    assert not page.errors
    context.close()
