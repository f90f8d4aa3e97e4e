"""An embedded worker (`app.worker().run()` in the user's own program) applies
CONVEYOR_LOG_FORMAT and CONVEYOR_LOG_FILE as `conveyor worker` does (issue 13, edge 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson

PROGRAM = textwrap.dedent("""
    import asyncio, sys
    from conveyor import Conveyor
    app = Conveyor(sys.argv[1])

    @app.task()
    def hello(ctx, payload):
        return "hi"

    app.enqueue("hello", {})
    asyncio.run(app.worker(concurrency=1).run())
""")


def run_embedded(tmp_path: Path, **env: str) -> tuple[str, Path]:
    log_file = tmp_path / "worker.log"
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
               "CONVEYOR_LOG_FILE": str(log_file), **env}
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, f"sqlite:///{tmp_path / 'e.db'}"],
                            env=environ, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (log_file.exists() and "started" in log_file.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "the worker did not log"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    return err, log_file


def test_embedded_worker_logs_json_to_the_log_file(tmp_path: Path) -> None:
    err, log_file = run_embedded(tmp_path, CONVEYOR_LOG_FORMAT="json")
    records = [orjson.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r["logger"].startswith("conveyor") and "started" in r["msg"] for r in records)
    assert any("stopped" in r["msg"] for r in records)
    assert "started" not in err  # to the file, not stderr


def test_embedded_worker_logs_text_to_the_log_file(tmp_path: Path) -> None:
    _, log_file = run_embedded(tmp_path)
    first = log_file.read_text().splitlines()[0]
    assert " INFO conveyor" in first and not first.startswith("{")
