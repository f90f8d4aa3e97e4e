"""Details only for admins: why /readyz is not ready, and which tasks exist when a job names
an unknown one. Everyone else gets the status and the error code. On SQLite and PostgreSQL
(the PostgreSQL outage itself is in tests/postgres/test_web_disclosure.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conveyor import Conveyor
from conveyor.web.server import build_server

from .harness import TOKENS, Live, ServerThread, assert_error, close_app, free_port


def test_readyz_tells_only_admins_why_it_is_not_ready(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'fresh.db'}", auto_migrate=False)
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="error")
    try:
        with ServerThread(server):
            url = f"http://127.0.0.1:{server.config.port}"
            anonymous = httpx.get(url + "/readyz")
            assert anonymous.status_code == 503
            assert anonymous.json() == {"status": "unavailable"}
            tenant = httpx.get(url + "/readyz", headers={"Authorization": "Bearer token-a"})
            assert tenant.json() == {"status": "unavailable"}
            admin = httpx.get(url + "/readyz", headers={"Authorization": "Bearer admin-token"})
            assert admin.status_code == 503
            assert "conveyor migrate" in admin.json()["error"]["message"]
            app.migrate()
            assert httpx.get(url + "/readyz").json() == {"status": "ready"}
    finally:
        close_app(app)


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/batches"])
def test_unknown_task_lists_the_registered_tasks_to_admins_only(
        live: Live, admin: httpx.Client, tenant_a: httpx.Client, path: str) -> None:
    def attempt(client: httpx.Client) -> dict[str, object]:
        body: dict[str, object] = {"task": "no_such_task", "delay": 60}
        if path.endswith("batches"):
            body = {"jobs": [{"task": "echo", "delay": 60}, body]}
        return assert_error(client.post(path, json=body), 422, "unknown_task")

    to_tenant = attempt(tenant_a)
    assert "no_such_task" in str(to_tenant["message"])
    for task in ("echo", "evaluate", "flaky", "slow"):
        assert task not in str(to_tenant["message"]) + str(to_tenant["details"])
    to_admin = attempt(admin)
    assert "echo" in str(to_admin["message"]) and "evaluate" in str(to_admin["message"])
