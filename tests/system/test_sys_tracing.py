"""A trace spans the producer and the worker: a `conveyor enqueue` process and a `conveyor
worker` process, each exporting its spans to one file; the worker's run span is a child of
the producer's enqueue span."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

import orjson
from syshelp import System, wait_until

pytestmark = pytest.mark.timeout(120)


def test_a_trace_spans_the_producer_and_the_worker(system: System) -> None:
    span_log = system.folder / "spans.jsonl"
    span_log.touch()
    env = {"SYS_SPAN_LOG": str(span_log), "CONVEYOR_TRACING": "1", "CONVEYOR_APP": "traceapp:app"}
    worker = system.start("w1", [str(system_conveyor()), "worker"], **env)
    system.wait_ready(worker)
    enqueued = system_cli(system, env, "enqueue", "traced", "--payload", '{"n": 5}',
                          "--tenant", "acme", "--json")
    job_id = orjson.loads(enqueued)["id"]
    system.wait_terminal([job_id], 30)

    def spans() -> list[dict[str, object]] | None:
        found = [orjson.loads(line) for line in span_log.read_text().splitlines()]
        return found if len(found) >= 3 else None

    found = wait_until(spans, 20, "three spans")
    assert system.stop(worker)[0] == 0
    by_name = {s["name"]: s for s in found}
    enqueue, run = by_name["conveyor enqueue traced"], by_name["conveyor run traced"]
    inner = by_name["inside the task"]
    assert enqueue["pid"] != run["pid"] and run["pid"] == worker.pid
    assert enqueue["trace_id"] == run["trace_id"] == inner["trace_id"]
    assert run["parent_id"] == enqueue["span_id"] and inner["parent_id"] == run["span_id"]
    for span in (enqueue, run):
        attributes = span["attributes"]
        assert isinstance(attributes, dict)
        assert attributes["conveyor.job.id"] == job_id
        assert attributes["conveyor.tenant"] == "acme"


def system_cli(system: System, env: dict[str, str], *args: str) -> str:
    import subprocess

    from syshelp import CONVEYOR

    done = subprocess.run([str(CONVEYOR), *args], cwd=system.folder, env=system.env(**env),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def system_conveyor() -> str:
    from syshelp import CONVEYOR

    return str(CONVEYOR)
