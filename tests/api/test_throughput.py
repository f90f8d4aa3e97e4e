"""Throughput in per-minute buckets on the overview and the queues page, read from the
stored minute rollups: a server started after the jobs ran (a restart) still charts them,
while its own live samples are empty; a tenant sees only its own jobs' minutes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from conveyor.testing import run_until_idle
from conveyor.web.server import build_server

from .harness import TOKENS, ServerThread, close_app, free_port, sign_in
from .webapp import build_app


def test_minute_throughput_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'minutes.db'}"
    first, _ = build_app(url)
    try:
        for n in range(12):
            first.enqueue("echo", {"n": n}, queue="minutes-q", tenant="acme")
        assert run_until_idle(first, queues=["minutes-q"]) == 12
    finally:
        close_app(first)

    app, _ = build_app(url)  # "after a restart": a new process knows nothing in memory
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="warning")
    base = f"http://127.0.0.1:{server.config.port}"
    try:
        with ServerThread(server):
            for token, expected in (("admin-token", 12), ("token-a", 12), ("token-b", 0)):
                with httpx.Client(base_url=base, timeout=10.0, cookies={
                        "conveyor_session": sign_in(base, token)}) as page:
                    overview = page.get("/").text
                    figure = overview[overview.index("Throughput per minute, last hour"):]
                    figure = figure[:figure.index("</figure>")]
                    if expected:
                        assert "<polyline" in figure or "<path" in figure, figure[:400]
                    else:
                        assert "No attempts recorded in the last hour" in figure
                    queues = page.get("/queues").text
                    if expected:
                        row = queues[queues.index('<tr data-queue="minutes-q">'):]
                        cell = row[row.index("data-minutes"):row.index("</td>",
                                                                       row.index("data-minutes"))]
                        peak = re.search(r"peak (\d+)", cell)
                        assert peak is not None and int(peak.group(1)) == expected, cell
    finally:
        close_app(app)
