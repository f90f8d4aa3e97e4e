"""Issue 16: a page of jobs is one store read (list_jobs with a byte budget), not a read per
two jobs: the API's pages with bodies and the dashboard's lists; a page of large jobs still
reads a budget's worth at a time. SQLite and PostgreSQL, against the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conveyor.web.bodies import BUDGET

from .harness import Live, sign_in


@pytest.fixture
def reads(live: Live, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every list_jobs the server makes, in order."""
    made: list[dict[str, Any]] = []
    original = live.app.list_jobs

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(live.app, "list_jobs", counted)
    yield made


def _enqueue(client: httpx.Client, queue: str, count: int, size: int = 10) -> list[str]:
    response = client.post("/api/v1/batches", json={"jobs": [
        {"task": "echo", "queue": queue, "delay": 3600, "payload": {"n": n, "blob": "z" * size}}
        for n in range(count)]})
    assert response.status_code in (200, 202), response.text
    return [job["id"] for job in response.json()["jobs"]]


def test_an_api_page_with_bodies_is_one_read(tenant_a: httpx.Client,
                                             reads: list[dict[str, Any]]) -> None:
    queue = f"one-{uuid.uuid4().hex[:8]}"
    ids = _enqueue(tenant_a, queue, 30)
    page = tenant_a.get("/api/v1/jobs", params={"queue": queue, "fields": "id,payload",
                                                "limit": "20"}).json()
    assert [row["id"] for row in page["jobs"]] == list(reversed(ids))[:20]
    assert page["next_cursor"] == page["jobs"][-1]["id"]
    # the page and the job after it (is there a next page?), in one read with a budget
    assert [(r["limit"], r["budget"]) for r in reads] == [(21, BUDGET)], reads


def test_a_dashboard_list_is_one_read(live: Live, tenant_a: httpx.Client,
                                      reads: list[dict[str, Any]]) -> None:
    queue = f"dash-{uuid.uuid4().hex[:8]}"
    ids = _enqueue(tenant_a, queue, 60)
    session = sign_in(live.url, "token-a")
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": session}) as browser:
        page = browser.get("/jobs", params={"queue": queue}, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert ids[-1] in page.text and ids[-50] in page.text and ids[-51] not in page.text
    assert [r["budget"] for r in reads] == [BUDGET], reads


def test_large_jobs_are_read_a_budget_at_a_time(tenant_a: httpx.Client,
                                                reads: list[dict[str, Any]]) -> None:
    queue = f"large-{uuid.uuid4().hex[:8]}"
    size = BUDGET // 3 + 1000  # the third job reaches the budget
    ids = _enqueue(tenant_a, queue, 5, size)
    page = tenant_a.get("/api/v1/jobs", params={"queue": queue, "fields": "id,payload",
                                                "limit": "4"}).json()
    assert [row["id"] for row in page["jobs"]] == list(reversed(ids))[:4]
    assert page["next_cursor"] == ids[1]
    # three jobs (the third reaches the budget), then the fourth and the one after it
    assert len(reads) == 2, reads
