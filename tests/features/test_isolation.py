"""isolation='process': a sync task in a child that is killed past its timeout."""

import asyncio
import importlib
import os
import time

import pytest

from conveyor import Conveyor


@pytest.fixture
def iso(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_URL", f"sqlite:///{tmp_path}/iso.db")
    isoapp = importlib.import_module(f"{__package__}.isoapp")

    app = Conveyor(f"sqlite:///{tmp_path}/iso.db")
    for task in isoapp.app.registry:
        app.registry.add(task)
    yield app, isoapp
    app.close()


def run_all(app):
    worker = app.worker(concurrency=3)
    try:
        return asyncio.run(worker.run_until_idle())
    finally:
        worker.close()


def test_hung_process_task_is_killed_at_its_timeout(iso, tmp_path):
    app, _ = iso
    marker = tmp_path / "pid"
    job = app.enqueue("hang", {"marker": str(marker)})
    started = time.monotonic()
    run_all(app)
    assert time.monotonic() - started < 15
    done = app.get(job.id)
    assert done.state == "dead"
    assert done.errors[0].type == "JobTimeout"
    assert "killed" in done.errors[0].message
    child = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the child is gone, not left running


def test_process_task_result_progress_and_errors(iso):
    app, _ = iso
    ok = app.enqueue("double", {"x": 21})
    bad = app.enqueue("explode", {"why": "here"})
    run_all(app)
    done = app.get(ok.id)
    assert done.state == "completed"
    assert done.result["value"] == 42
    assert done.result["pid"] != os.getpid()
    assert done.progress == 100
    failed = app.get(bad.id)
    assert failed.state == "dead"
    assert failed.errors[0].type == "ValueError"
    assert failed.errors[0].message == "bad input here"
    assert "raise ValueError" in failed.errors[0].traceback
