"""Hooks and job logs across real `conveyor worker` processes: each transition fires its hooks
once, in the process that made it; every attempt leaves a start and an end line in the JSON
log file the workers share; a Sensitive value never appears in clear in any line."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import hookapp
import orjson
import pytest
from syshelp import System, wait_until

pytestmark = pytest.mark.timeout(120)

EMAIL = "alice.secret@example.com"


def hook_lines(path: Path) -> list[tuple[str, str, str, int]]:
    out = []
    for line in path.read_text().splitlines():
        event, job_id, attempt, pid = line.split()
        out.append((event, job_id, attempt, int(pid)))
    return out


def test_hooks_and_job_logs_across_worker_processes(system: System,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hooks_log, log_file = system.folder / "hooks.log", system.folder / "conveyor.log"
    monkeypatch.setenv("SYS_HOOK_LOG", str(hooks_log))
    producer = hookapp.make_app(system.url)
    env = {"SYS_HOOK_LOG": str(hooks_log), "CONVEYOR_LOG_FORMAT": "json",
           "CONVEYOR_LOG_FILE": str(log_file), "CONVEYOR_LOG_HASH_KEY": "k1"}
    workers = [system.start(f"w{i}", [str(system_conveyor()), "worker", "--app",
                                      "hookapp:app", "--concurrency", "4"], **env)
               for i in range(2)]
    for proc in workers:
        system.wait_ready(proc)
    try:
        fine = [producer.enqueue("welcome", {"user": f"u{i}", "email": EMAIL}) for i in range(6)]
        flaky = producer.enqueue("welcome", {"user": "flaky", "email": EMAIL})
        bad = producer.enqueue("welcome", {"user": "bad", "email": EMAIL})
        ids = [j.id for j in fine] + [flaky.id, bad.id]
        done = system.wait_terminal(ids, 60)
        assert {str(done[j].state) for j in ids[:-1]} == {"completed"}
        assert str(done[bad.id].state) == "dead"
        wait_until(lambda: len(hook_lines(hooks_log)) >= 6 * 3 + 6 + 5, 20, "every hook")
        for proc in workers:
            assert system.stop(proc)[0] == 0
    finally:
        producer.close()

    lines = hook_lines(hooks_log)
    counts = Counter((event, job_id) for event, job_id, _, _ in lines)
    worker_pids = {p.pid for p in workers}
    for job in fine:
        assert [counts[(e, job.id)] for e in ("enqueued", "started", "completed")] == [1, 1, 1]
    assert [counts[(e, flaky.id)] for e in ("started", "failed", "retrying", "completed")] == [
        2, 1, 1, 1]
    assert [counts[(e, bad.id)] for e in ("started", "failed", "retrying", "dead")] == [
        2, 2, 1, 1]
    assert {pid for event, _, _, pid in lines if event == "enqueued"} == {os.getpid()}
    assert {pid for event, _, _, pid in lines if event != "enqueued"} <= worker_pids

    text = log_file.read_text()
    assert EMAIL not in text and "alice.secret" not in text
    records = [orjson.loads(line) for line in text.splitlines()]
    attempts = [r for r in records if r.get("event") in ("attempt_started", "attempt_ended")]
    ended = [r for r in attempts if r["event"] == "attempt_ended"]
    assert len(ended) == 6 + 2 + 2
    for record in attempts:
        for field in ("job_id", "task", "queue", "attempt", "worker_id"):
            assert record[field] is not None, (field, record)
    assert all(isinstance(r["elapsed_ms"], float) for r in ended)
    assert Counter(r["outcome"] for r in ended) == {"completed": 7, "retrying": 2, "dead": 1}
    [dead] = [r for r in ended if r["outcome"] == "dead"]
    assert dead["job_id"] == bad.id and dead["error_type"] == "ValueError"
    digest = dead["error"].split("no such mailbox: ")[1].strip("'")
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 12
    mails = [r for r in records if r["msg"].startswith("sending the welcome mail")]
    assert len(mails) == 6 + 2 + 2
    assert {r["recipient"] for r in mails} == {digest}  # equal values hash alike
    assert {r["user"] for r in mails} >= {"u0", "flaky", "bad"}  # extra= fields kept
    assert all(r["msg"] == f"sending the welcome mail to {digest}" for r in mails)


def system_conveyor() -> Path:
    from syshelp import CONVEYOR

    return CONVEYOR
