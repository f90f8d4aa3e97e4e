"""Enqueue from the dashboard through the task's schema (web/enqueue_form.py): a form made
from the schema, a password field for Sensitive values, the schema's refusal shown with
nothing stored, admins only. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx

from .harness import Live, sign_in


def page_of(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10.0,
                        cookies={"conveyor_session": sign_in(live.url, token)})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def count(admin: httpx.Client, task: str) -> int:
    return len(admin.get("/api/v1/jobs", params={"task": task, "limit": 500}).json()["jobs"])


def test_a_form_from_the_schema_enqueues_a_valid_job(live: Live, admin: httpx.Client) -> None:
    with page_of(live, "admin-token") as page:
        form = page.get("/enqueue", params={"task": "evaluate"}).text
        assert 'name="f.assessment_id"' in form and 'type="text"' in form
        assert re.search(r'type="password" id="f-transcript"', form)  # Sensitive
        assert re.search(r'type="number" id="f-score"', form)
        before = count(admin, "evaluate")
        went = page.post("/enqueue", data={"csrf": csrf_of(form), "task": "evaluate",
                                           "f.assessment_id": "a-1", "f.transcript": "secret",
                                           "f.score": "7", "priority": "3"})
        assert went.status_code == 303, went.text
        job_id = went.headers["location"].removeprefix("/jobs/")
    job = live.app.get(job_id)
    assert job.payload == {"assessment_id": "a-1", "transcript": "secret", "score": 7}
    assert job.priority == 3 and count(admin, "evaluate") == before + 1


def test_a_refused_form_shows_why_and_stores_nothing(live: Live, admin: httpx.Client) -> None:
    with page_of(live, "admin-token") as page:
        csrf = csrf_of(page.get("/enqueue", params={"task": "evaluate"}).text)
        before = count(admin, "evaluate")
        bad_number = page.post("/enqueue", data={"csrf": csrf, "task": "evaluate",
                                                 "f.assessment_id": "a-2", "f.score": "abc"})
        assert bad_number.status_code == 422 and "score: &#39;abc&#39; is not a number" in \
            bad_number.text
        assert 'value="a-2"' in bad_number.text  # what was entered is kept
        missing = page.post("/enqueue", data={"csrf": csrf, "task": "evaluate",
                                              "f.score": "1"})
        assert missing.status_code == 422 and "data-problem" in missing.text
        assert "transcript" in missing.text.lower()
        assert count(admin, "evaluate") == before
        json_task = page.post("/enqueue", data={"csrf": csrf, "task": "echo",
                                                "payload": '{"n": [1, 2]}'})
        assert json_task.status_code == 303
        assert live.app.get(json_task.headers["location"].removeprefix("/jobs/")).payload \
            == {"n": [1, 2]}


def test_only_admins_enqueue_from_the_dashboard(live: Live) -> None:
    with page_of(live, "token-a") as page:
        assert page.get("/enqueue").status_code == 403
    with page_of(live, "viewer-token") as page:
        html = page.get("/jobs").text
        refused = page.post("/enqueue", data={"csrf": csrf_of(html), "task": "echo"})
        assert refused.status_code == 403
