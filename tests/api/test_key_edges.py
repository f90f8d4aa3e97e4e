"""Idempotency keys over real HTTP (issue 13, edges 3 and 4)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conveyor import Conveyor
from conveyor.job import Lease
from conveyor.store.base import Complete
from conveyor.web.server import build_server

from .harness import TOKENS, Live, ServerThread, close_app, free_port, make_url, wait_state
from .webapp import build_app


def test_unique_for_is_accepted_and_keeps_the_key_after_the_job_ends(
        live: Live, worker: Any, admin: httpx.Client) -> None:
    """Edge 3: `unique_for` was refused as an unknown field, so the key was free again as
    soon as the job finished and the same work ran twice."""
    key = f"report-{uuid.uuid4().hex[:8]}"
    body = {"task": "echo", "payload": {"n": 1}, "idempotency_key": key, "unique_for": 3600}
    first = admin.post("/api/v1/jobs", json=body)
    assert first.status_code == 202, first.text
    wait_state(admin, first.json()["id"], {"completed"})
    second = admin.post("/api/v1/jobs", json=body)
    assert second.status_code == 202, second.text
    assert second.json()["duplicate"] is True and second.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("value", [0, -1, "60", True, 1e12])
def test_unique_for_out_of_range_is_refused(live: Live, admin: httpx.Client,
                                            value: object) -> None:
    body = {"task": "echo", "idempotency_key": "k", "unique_for": value}
    response = admin.post("/api/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["field"] == "unique_for"


# --- edge 4: a key that changes hands between the INSERT and the look-up (PostgreSQL) ----

PAUSE = 0.6  # seconds the gate holds the second enqueue between its INSERT and its look-up

GATE_SQL = """
CREATE TABLE {s}.race_gate (on_ int);
CREATE FUNCTION {s}.race_pause() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM {s}.race_gate) THEN PERFORM pg_sleep({pause}); END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER race_pause AFTER INSERT ON {s}.conveyor_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION {s}.race_pause();
"""


@pytest.fixture
def pg_live(tmp_path: Any) -> Iterator[tuple[Live, Any]]:
    psycopg = pytest.importorskip("psycopg")
    url = make_url("postgres", tmp_path)
    schema = url.split("schema=")[1]
    try:
        admin = psycopg.connect(url.split("?")[0], autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    app, flags = build_app(url)
    app.migrate()
    # a test-only trigger that widens the race window to PAUSE seconds, on demand
    admin.execute(GATE_SQL.format(s=schema, pause=PAUSE))
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="warning")
    try:
        with ServerThread(server):
            yield Live(app, f"http://127.0.0.1:{server.config.port}", flags, server), admin
    finally:
        close_app(app)
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.mark.postgres
def test_a_key_that_changes_hands_during_enqueue_is_retried_by_the_server(
        pg_live: tuple[Live, Any]) -> None:
    """Edge 4: the second enqueue's INSERT skips (the first job holds the key); the first
    job then completes, freeing the key, before the look-up of its holder. That answered
    `invalid: an idempotency key changed hands during enqueue: enqueue again`."""
    live, admin_sql = pg_live
    schema = live.app.settings.url.split("schema=")[1]
    body = {"task": "echo", "payload": {}, "idempotency_key": "nightly"}
    with live.client("admin-token") as client:
        first = client.post("/api/v1/jobs", json=body).json()
        [claimed] = claim(live.app)
        assert claimed.id == first["id"]
        admin_sql.execute(f"INSERT INTO {schema}.race_gate VALUES (1)")
        answers: list[httpx.Response] = []
        racer = threading.Thread(target=lambda: answers.append(
            client.post("/api/v1/jobs", json=body)))
        racer.start()
        time.sleep(PAUSE / 3)  # the second INSERT has skipped and waits in the gate
        admin_sql.execute(f"DELETE FROM {schema}.race_gate")
        complete(live.app, Lease(claimed.id, claimed.token))  # the worker finishes it
        racer.join(10)
    [answer] = answers
    assert answer.status_code == 202, answer.text
    second = answer.json()
    assert second["duplicate"] is False and second["id"] != first["id"]
    assert live.app.get(first["id"]).state == "completed"


def claim(app: Conveyor) -> list[Any]:
    return app.call(lambda store: store.claim(None, "racer", 1, 30.0))


def complete(app: Conveyor, lease: Lease) -> None:
    [done] = app.call(lambda store: store.settle([Complete(lease, b'"ok"')]))
    assert done
