"""OpenTelemetry tracing (the otel extra), with the SDK's in-memory exporter: one trace from
the enqueuing span to each attempt's span, and the task's own spans under it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from conveyor import Conveyor, FakeClock, JobContext, JobState, Retry, Settings

pytestmark = pytest.mark.anyio
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)  # once per process: the API allows no second
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def traced_app(tmp_path: Path, **settings: Any) -> Conveyor:
    return Conveyor(f"sqlite:///{tmp_path / 'traced.db'}", clock=FakeClock(T0),
                    settings=Settings(tracing=True, **settings))


async def test_one_trace_from_the_enqueue_to_every_attempt(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    app = traced_app(tmp_path)
    tracer = trace.get_tracer("shop")

    @app.task(retry=Retry(attempts=2, backoff="fixed", base=0, jitter=0))
    def pay(ctx: JobContext, payload: Any) -> str:
        with tracer.start_as_current_span("charge card"):  # a sync task's own span
            if ctx.attempt == 1:
                raise ConnectionError("card network down")
            return "paid"

    with tracer.start_as_current_span("checkout"):
        job = pay.enqueue({"order": 7}, tenant="acme", correlation_id="req-42")
    worker = app.worker(worker_id="worker-traced")
    try:
        await worker.run_until_idle()
        await worker.run_until_idle()
    finally:
        worker.close()
    assert app.get(job.id).state == JobState.COMPLETED
    app.close()

    by_name: dict[str, list[Any]] = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    [checkout], [enqueue] = by_name["checkout"], by_name["conveyor enqueue pay"]
    runs, charges = by_name["conveyor run pay"], by_name["charge card"]
    assert len(runs) == 2 and len(charges) == 2
    trace_id = checkout.context.trace_id
    assert {s.context.trace_id for s in [enqueue, *runs, *charges]} == {trace_id}
    assert enqueue.parent.span_id == checkout.context.span_id
    assert enqueue.kind == SpanKind.PRODUCER
    assert enqueue.attributes["conveyor.job.id"] == job.id
    assert enqueue.attributes["conveyor.tenant"] == "acme"
    assert enqueue.attributes["conveyor.correlation_id"] == "req-42"
    for run in runs:
        assert run.kind == SpanKind.CONSUMER
        assert run.parent.span_id == enqueue.context.span_id
        assert run.attributes["conveyor.job.id"] == job.id
        assert run.attributes["messaging.destination.name"] == "default"
    first, second = sorted(runs, key=lambda s: s.attributes["conveyor.attempt"])
    assert first.status.status_code == StatusCode.ERROR
    assert [e.name for e in first.events] == ["exception"]
    assert second.attributes["conveyor.outcome"] == "completed"
    assert {c.parent.span_id for c in charges} == {first.context.span_id,
                                                   second.context.span_id}


async def test_a_job_enqueued_outside_any_span_still_gets_a_run_span(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    app = traced_app(tmp_path)

    @app.task
    async def plain(ctx: JobContext, payload: Any) -> int:
        return 1

    jobs = app.enqueue_many([("plain", {}), ("plain", {})])
    worker = app.worker(worker_id="worker-traced")
    try:
        assert await worker.run_until_idle() == 2
    finally:
        worker.close()
    app.close()
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["conveyor enqueue plain", "conveyor run plain", "conveyor run plain"]
    [enqueue] = [s for s in spans.get_finished_spans() if s.name.startswith("conveyor enq")]
    assert enqueue.attributes["messaging.batch.message_count"] == 2
    runs = [s for s in spans.get_finished_spans() if s.name.startswith("conveyor run")]
    assert {s.attributes["conveyor.job.id"] for s in runs} == {j.id for j in jobs}
    assert all(s.parent.span_id == enqueue.context.span_id for s in runs)


def test_tracing_off_writes_no_trace_rows(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'plain.db'}")

    @app.task
    def work(ctx: JobContext, payload: Any) -> None: ...

    job = work.enqueue()
    assert app.tracing is None
    assert app.call(lambda s: s.load_trace(job.id)) is None
    app.close()
