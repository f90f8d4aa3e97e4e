"""Tenant grants (web/grants.py): a tenant token configured with `;queues=...;priority=...`
may enqueue only there, on SQLite and PostgreSQL; outside the grant is 403 naming what is
allowed, and nothing of the batch is stored. Tokens without grants work as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.errors import ConfigError
from conveyor.job import JobFilter
from conveyor.web.auth import parse_tokens
from conveyor.web.grants import Grant
from conveyor.web.server import build_server

from .harness import Live, ServerThread, assert_error, close_app, free_port, make_url, store_urls
from .webapp import build_app

GRANTED = ("admin-token=ops:admin,"
           "narrow=acme:tenant;queues=acme.*|emails|slow;priority=0..10,"
           "wide=globex:tenant")


@pytest.fixture(params=store_urls(), scope="module")
def granted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Live]:
    url = make_url(request.param, tmp_path_factory.mktemp("grants"))
    app, flags = build_app(url)
    if request.param == "postgres":
        app.migrate()
    server = build_server(app, "127.0.0.1", free_port(), tokens=GRANTED, log_level="warning")
    with ServerThread(server):
        yield Live(app, f"http://127.0.0.1:{server.config.port}", flags, server)
    close_app(app)


def stored(live: Live, correlation: str) -> int:
    return len(live.app.list_jobs(JobFilter(correlation_id=correlation), limit=10))


def job(correlation: str, **fields: Any) -> dict[str, Any]:
    return {"task": "echo", "delay": 600, "correlation_id": correlation, **fields}


def test_inside_the_grant_is_accepted(granted: Live) -> None:
    correlation = uuid.uuid4().hex
    with granted.client("narrow") as narrow:
        for fields in ({"queue": "acme.reports", "priority": 10}, {"queue": "acme.x:y/z"},
                       {"queue": "emails", "priority": 0}):
            response = narrow.post("/api/v1/jobs", json=job(correlation, **fields))
            assert response.status_code == 202, response.text
        default_queue = narrow.post("/api/v1/jobs", json={"task": "slow", "delay": 600,
                                                          "correlation_id": correlation})
        assert default_queue.status_code == 202, default_queue.text  # slow's own queue
    assert stored(granted, correlation) == 4


@pytest.mark.parametrize(("fields", "field", "named"), [
    ({"queue": "billing"}, "queue", "acme.*, emails, slow"),
    ({"queue": "acme"}, "queue", "acme.*"),         # the prefix needs what follows it
    ({"queue": "emails.eu"}, "queue", "emails"),
    ({}, "queue", "'default'"),                        # echo's own queue is not granted
    ({"queue": "emails", "priority": 11}, "priority", "0 to 10"),
    ({"queue": "emails", "priority": -1}, "priority", "0 to 10"),
    ({"queue": "emails", "priority": 2**31 - 1}, "priority", "0 to 10"),
])
def test_outside_the_grant_is_403_naming_what_is_allowed(
        granted: Live, fields: dict[str, Any], field: str, named: str) -> None:
    correlation = uuid.uuid4().hex
    with granted.client("narrow") as narrow:
        error = assert_error(narrow.post("/api/v1/jobs", json=job(correlation, **fields)),
                             403, "forbidden")
    assert error["details"]["field"] == field
    assert named in error["message"]
    assert stored(granted, correlation) == 0


def test_a_batch_with_one_job_outside_the_grant_stores_nothing(granted: Live) -> None:
    correlation = uuid.uuid4().hex
    with granted.client("narrow") as narrow:
        response = narrow.post("/api/v1/batches", json={"jobs": [
            job(correlation, queue="emails"), job(correlation, queue="payroll")]})
    error = assert_error(response, 403, "forbidden")
    assert error["details"] == {"field": "jobs[1].queue",
                                "allowed_queues": ["acme.*", "emails", "slow"]}
    assert stored(granted, correlation) == 0


def test_tokens_without_grants_and_admins_are_unlimited(granted: Live) -> None:
    correlation = uuid.uuid4().hex
    for token in ("wide", "admin-token"):
        with granted.client(token) as client:
            response = client.post("/api/v1/jobs", json=job(
                correlation, queue="anything.at_all", priority=2**31 - 1))
            assert response.status_code == 202, response.text
    assert stored(granted, correlation) == 2


def test_reads_and_actions_stay_scoped_to_the_tenant(granted: Live) -> None:
    with granted.client("wide") as wide:
        theirs = wide.post("/api/v1/jobs", json=job("scoped", queue="emails")).json()["id"]
    with granted.client("narrow") as narrow:
        mine = narrow.post("/api/v1/jobs", json=job("scoped", queue="emails")).json()["id"]
        listed = {j["id"] for j in narrow.get("/api/v1/jobs", params={
            "correlation_id": "scoped"}).json()["jobs"]}
        assert listed == {mine}
        assert_error(narrow.post(f"/api/v1/jobs/{theirs}/cancel"), 404, "not_found")


def test_token_grants_parse_and_stay_backward_compatible() -> None:
    tokens = parse_tokens("a=acme:tenant, b=*:admin ,c=acme:tenant;queues=x|y.*;priority=-5..5,"
                          "d=globex:tenant;priority=3..3")
    assert tokens["a"].grant is None and tokens["b"].grant is None
    assert tokens["c"].grant == Grant(("x", "y.*"), (-5, 5))
    assert tokens["d"].grant == Grant(None, (3, 3))
    assert tokens["c"].grant.allows_queue("y.z") and not tokens["c"].grant.allows_queue("xy")
    assert "token=" not in repr(tokens["c"])  # a principal's repr never shows its token


@pytest.mark.parametrize(("spec", "says"), [
    ("t=ops:admin;queues=x", "for tenant tokens"),
    ("t=acme:tenant;queues=a b", "not a queue name"),
    ("t=acme:tenant;queues=", "not a queue name"),
    ("t=acme:tenant;priority=10..1", "LOW <= HIGH"),
    ("t=acme:tenant;priority=1", "LOW..HIGH"),
    ("t=acme:tenant;priority=one..two", "LOW..HIGH"),
    ("t=acme:tenant;priority=0..99999999999", "LOW..HIGH"),
    ("t=acme:tenant;colour=red", "grants are"),
    ("t=acme:tenant;queues=a;queues=b", "grants are"),
])
def test_bad_grants_are_config_errors(spec: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        parse_tokens(spec)
    assert "acme" in str(refused.value) or "admin" in str(refused.value)


def test_a_grant_error_stops_the_server_at_start(tmp_path: Any) -> None:
    app, _ = build_app(f"sqlite:///{tmp_path / 'bad.db'}")
    try:
        with pytest.raises(ConfigError):
            build_server(app, "127.0.0.1", free_port(), tokens="t=acme:tenant;priority=x")
    finally:
        close_app(app)
