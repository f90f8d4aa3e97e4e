"""While PostgreSQL is down, the web server tells only admins where the store is and what
the driver said; anyone else gets the status and a plain message (the log has the rest).
On a private cluster that is stopped for the test."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from api.harness import TOKENS, ServerThread, close_app, free_port
from conveyor import Conveyor
from conveyor.web.server import build_server

from .cluster import PrivateCluster


def test_an_outage_is_explained_to_admins_only(private_pg: PrivateCluster,
                                               private_url: str) -> None:
    app = Conveyor(private_url)
    app.migrate()
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="critical")
    port = str(private_pg.port)
    try:
        with ServerThread(server), httpx.Client(timeout=30) as client:
            url = f"http://127.0.0.1:{server.config.port}"
            assert client.get(url + "/readyz").json() == {"status": "ready"}
            private_pg.stop()

            def ask(path: str, token: str | None) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return client.get(url + path, headers=headers)

            with ThreadPoolExecutor(3) as pool:  # each waits out the pool's 10 s
                anonymous, tenant, admin = pool.map(ask, ["/readyz", "/api/v1/stats", "/readyz"],
                                                    [None, "token-a", "admin-token"])
            assert anonymous.status_code == 503
            assert anonymous.json() == {"status": "unavailable"}
            assert tenant.status_code == 503
            assert tenant.json()["error"]["code"] == "unavailable"
            for text in (anonymous.text, tenant.text):
                assert port not in text and "127.0.0.1" not in text
                assert not re.search(r"postgres|psycopg|connection", text, re.IGNORECASE)
            assert admin.status_code == 503 and port in admin.json()["error"]["message"]
    finally:
        if not private_pg.running():
            private_pg.start()
        close_app(app)
