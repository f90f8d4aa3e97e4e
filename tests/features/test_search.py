"""Finding jobs through the app (finding.py, search.py): name fragments resolve to the names
they match, a payload field search reads a bounded scan of candidates and says so, sealed
payloads and errors are searched as a reader with the key sees them, Sensitive fields are
refused (by the schema here, and by the paths stored with a job for a reader without the
task), and a tenant finds only its own jobs. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import psycopg
import pydantic
import pytest

from conveyor import Conveyor, JobContext, Retry, Sensitive, Settings
from conveyor.errors import SearchRefused
from conveyor.job import JobFilter
from conveyor.search import Search
from conveyor.testing import run_until_idle

PG_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
KEYS = "k1:" + base64.b64encode(os.urandom(32)).decode()


class Charge(pydantic.BaseModel):
    order_id: str
    card: Annotated[str, Sensitive]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    schema = f"search_{secrets.token_hex(5)}"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_app(url: str, *, with_tasks: bool = True) -> Conveyor:
    app = Conveyor(settings=Settings.load(url=url, encryption_keys=KEYS), auto_migrate=True)
    if not with_tasks:
        return app

    @app.task(name="billing.charge", queue="money", schema=Charge,
              retry=Retry(attempts=1))
    def charge(ctx: JobContext, payload: Charge) -> None:
        raise RuntimeError(f"card {payload.card} declined for {payload.order_id}")

    @app.task(name="emails.send", queue="mail", retry=Retry(attempts=1))
    def send(ctx: JobContext, payload: dict[str, Any]) -> None:
        if payload.get("fail"):
            raise TimeoutError("smtp timed out after 30s")

    @app.task(name="emails.resend", queue="mail")
    def resend(ctx: JobContext, payload: dict[str, Any]) -> None:
        pass

    return app


def test_names_payload_and_error_search(url: str) -> None:
    app = make_app(url)
    try:
        sent = [app.enqueue("emails.send", {"order_id": f"ord-{n}", "n": n}, tenant="org-1")
                for n in range(5)]
        failed = app.enqueue("emails.send", {"order_id": "ord-9", "fail": True},
                             tenant="org-1")
        resent = app.enqueue("emails.resend", {"order_id": "ord-1"}, tenant="org-2")
        charged = app.enqueue("billing.charge", {"order_id": "ord-1", "card": "4111-1111"},
                              tenant="org-1")
        run_until_idle(app)

        # names: a fragment matches task names in any case, within the tenant
        found = app.search_jobs(JobFilter(), Search.parse(task_contains="SEND"), limit=10)
        assert [j.id for j in found.jobs] == [resent.id, failed.id, *reversed(
            [j.id for j in sent])]
        assert found.scanned is None  # an ordinary list of the names, not a scan
        org1 = app.search_jobs(JobFilter(tenant="org-1"), Search.parse(task_contains="resend"))
        assert org1.jobs == [] and org1.next_cursor is None
        assert app.job_names("org-2").tasks == ("emails.resend",)
        assert set(app.job_names().tasks) >= {"billing.charge", "emails.send",
                                               "emails.resend"}
        by_queue = app.search_jobs(JobFilter(), Search.parse(queue_contains="mon"))
        assert [j.id for j in by_queue.jobs] == [charged.id]

        # payload field (payloads are sealed at rest: the search opens them)
        one = app.search_jobs(JobFilter(tenant="org-1"),
                              Search.parse(field="order_id:ord-1"), limit=10)
        assert [j.id for j in one.jobs] == [charged.id, sent[1].id]
        assert one.scanned == 8 - 1 and one.exhausted and one.next_cursor is None
        number = app.search_jobs(JobFilter(), Search.parse(field="n:3"))
        assert [j.id for j in number.jobs] == [sent[3].id]
        assert "searched all 8" in (app.search_jobs(
            JobFilter(), Search.parse(field="n:3")).note(1000) or "")

        # the error text, as the reader sees it: the card number is scrubbed out
        timeouts = app.search_jobs(JobFilter(), Search.parse(error="timed OUT"))
        assert [j.id for j in timeouts.jobs] == [failed.id]
        assert timeouts.scanned == 2  # only jobs that failed are candidates
        declined = app.search_jobs(JobFilter(), Search.parse(error="declined for ord-1"))
        assert [j.id for j in declined.jobs] == [charged.id]
        assert "4111" not in declined.jobs[0].errors[-1].message
        by_card = app.search_jobs(JobFilter(), Search.parse(error="4111-1111"))
        assert by_card.jobs == []
        assert app.search_jobs(JobFilter(tenant="org-2"),
                               Search.parse(error="timed out")).jobs == []
    finally:
        app.close()


def test_a_bounded_scan_says_where_to_go_on(url: str) -> None:
    app = make_app(url)
    try:
        ids = [app.enqueue("emails.resend", {"order_id": "ord-7" if n % 3 == 0 else "x"}).id
               for n in range(10)]
        first = app.search_jobs(JobFilter(), Search.parse(field="order_id:ord-7", scan=4))
        assert [j.id for j in first.jobs] == [ids[9], ids[6]]
        assert (first.scanned, first.exhausted, first.next_cursor) == (4, False, ids[6])
        assert "newest 4 candidate jobs" in (first.note(4) or "")
        second = app.search_jobs(JobFilter(), Search.parse(field="order_id:ord-7", scan=4),
                                 after=first.next_cursor)
        assert [j.id for j in second.jobs] == [ids[3]]
        assert (second.scanned, second.next_cursor) == (4, ids[2])
        third = app.search_jobs(JobFilter(), Search.parse(field="order_id:ord-7", scan=4),
                                after=second.next_cursor)
        assert [j.id for j in third.jobs] == [ids[0]] and third.exhausted
        assert (third.scanned, third.next_cursor) == (2, None)
        # a page full before the scan ends: the cursor is the last job found
        paged = app.search_jobs(JobFilter(), Search.parse(field="order_id:ord-7"), limit=2)
        assert [j.id for j in paged.jobs] == [ids[9], ids[6]] and paged.next_cursor == ids[6]
    finally:
        app.close()


def test_sensitive_fields_are_refused(url: str) -> None:
    app = make_app(url)
    try:
        app.enqueue("billing.charge", {"order_id": "ord-1", "card": "4111"})
        with pytest.raises(SearchRefused, match=r"'card' is marked Sensitive.*billing\.charge"):
            app.search_jobs(JobFilter(), Search.parse(field="card:4111"))
        with pytest.raises(SearchRefused, match="Sensitive"):
            app.search_jobs(JobFilter(task="billing.charge"), Search.parse(field="card:0"))
    finally:
        app.close()
    # a reader without the task's code refuses too, from the paths stored with the job
    reader = make_app(url, with_tasks=False)
    try:
        with pytest.raises(SearchRefused, match="'card' is marked Sensitive"):
            reader.search_jobs(JobFilter(), Search.parse(field="card:4111"))
        assert [j.task for j in reader.search_jobs(
            JobFilter(), Search.parse(field="order_id:ord-1")).jobs] == ["billing.charge"]
    finally:
        reader.close()


@pytest.mark.parametrize(("parts", "field"), [
    ({"field": "order_id"}, "payload"), ({"field": ":x"}, "payload"),
    ({"scan": 0}, "scan"), ({"scan": 10_001}, "scan"), ({"error": "a\x00b"}, "error"),
    ({"task_contains": "x" * 201}, "task_contains")])
def test_unreadable_searches_are_refused(parts: dict[str, Any], field: str) -> None:
    with pytest.raises(SearchRefused) as refused:
        Search.parse(**parts)
    assert refused.value.field == field
