"""The app of the cross-process tracing test: each process that imports it (a `conveyor
enqueue` producer, a `conveyor worker`) exports its finished spans as JSON lines to
SYS_SPAN_LOG, with its pid, so the test can join them into one trace."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from conveyor import Conveyor, JobContext


class FileExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = b"".join(orjson.dumps({
            "name": s.name, "pid": os.getpid(),
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "attributes": dict(s.attributes or {})}) + b"\n" for s in spans)
        fd = os.open(os.environ["SYS_SPAN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines)
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
trace.set_tracer_provider(provider)

app = Conveyor()


@app.task
async def traced(ctx: JobContext, payload: dict[str, Any]) -> int:
    with trace.get_tracer("traceapp").start_as_current_span("inside the task"):
        return int(payload.get("n", 0))
