"""Optional OpenTelemetry tracing (the `otel` extra; CONVEYOR_TRACING=1).

An enqueue runs in a PRODUCER span, `conveyor enqueue TASK`, and keeps that span's W3C
traceparent beside each job it stores (the store's trace contexts, written before the jobs).
Every attempt runs in a CONSUMER span, `conveyor run TASK`, whose parent is that traceparent,
so one trace spans the producer and the worker, whichever process or machine each is on.
Spans the task opens nest under its run span (sync tasks too: they run in the context the
middleware set). Both carry the job's attributes: id, task, queue, tenant, correlation id and,
for a run, the attempt.

The app uses whatever tracer provider the process set up (opentelemetry.trace); nothing is
imported from opentelemetry unless tracing is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError
from ..outcome import Cancel, Discard, Snooze

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..context import JobContext
    from ..job import NewJob

T = TypeVar("T")


def install(app: Conveyor) -> Tracing | None:
    """Tracing for `app` when its settings turn it on; ConfigError if the extra is missing."""
    if not app.settings.tracing:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:
        raise ConfigError("CONVEYOR_TRACING needs OpenTelemetry: pip install "
                          "'conveyor-jobs[otel]'") from exc
    tracing = Tracing(app, trace, TraceContextTextMapPropagator())
    app.hooks.middleware.insert(0, tracing.run_span)  # outermost: it sees every outcome
    return tracing


class Tracing:
    def __init__(self, app: Conveyor, trace: Any, propagator: Any) -> None:
        self.app = app
        self.trace = trace
        self.propagator = propagator

    @property
    def tracer(self) -> Any:
        return self.trace.get_tracer("conveyor")  # the provider set now, not at import

    # --- producing ----------------------------------------------------------------------------

    def traced(self, jobs: Sequence[NewJob], insert: Callable[[], T]) -> T:
        """Run a sync insert of `jobs` in an enqueue span, their traceparent saved first."""
        with self._enqueue_span(jobs) as traces:
            if traces:
                self.app.call(lambda s: s.save_traces(traces, self.app.clock.store_now()))
            return insert()

    async def traced_async(self, jobs: Sequence[NewJob],
                           insert: Callable[[], Awaitable[T]]) -> T:
        with self._enqueue_span(jobs) as traces:
            if traces:
                await self.app.store.save_traces(traces, self.app.clock.store_now())
            return await insert()

    @contextmanager
    def _enqueue_span(self, jobs: Sequence[NewJob]) -> Iterator[list[tuple[str, str]]]:
        first = jobs[0]
        attributes: dict[str, Any] = {
            "messaging.system": "conveyor", "messaging.operation.type": "send",
            "messaging.destination.name": first.queue, "conveyor.task": first.task,
            "messaging.batch.message_count": len(jobs)}
        if len(jobs) == 1:
            attributes.update(_job_attributes(first.id, first.tenant, first.correlation_id))
        kind = self.trace.SpanKind.PRODUCER
        with self.tracer.start_as_current_span(f"conveyor enqueue {first.task}", kind=kind,
                                               attributes=attributes):
            carrier: dict[str, str] = {}
            self.propagator.inject(carrier)
            parent = carrier.get("traceparent")
            yield [(job.id, parent) for job in jobs] if parent else []

    # --- running (a middleware) ---------------------------------------------------------------

    async def run_span(self, ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        parent = await self.app.store.load_trace(ctx.job_id)
        context = self.propagator.extract({"traceparent": parent}) if parent else None
        attributes = {"messaging.system": "conveyor", "messaging.operation.type": "process",
                      "messaging.destination.name": ctx.queue, "conveyor.task": ctx.task,
                      "conveyor.attempt": ctx.attempt, "conveyor.worker_id": ctx.worker_id,
                      **_job_attributes(ctx.job_id, ctx.tenant, ctx.correlation_id)}
        with self.tracer.start_as_current_span(
                f"conveyor run {ctx.task}", context=context, kind=self.trace.SpanKind.CONSUMER,
                attributes=attributes, record_exception=False,
                set_status_on_exception=False) as span:
            try:
                result = await call_next()
            except (Snooze, Cancel, Discard) as outcome:  # outcomes the task chose
                span.set_attribute("conveyor.outcome", type(outcome).__name__.lower())
                raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, str(exc)[:200]))
                raise
            span.set_attribute("conveyor.outcome", "completed")
            return result


def _job_attributes(job_id: str, tenant: str | None,
                    correlation_id: str | None) -> dict[str, Any]:
    attributes = {"messaging.message.id": job_id, "conveyor.job.id": job_id}
    if tenant:
        attributes["conveyor.tenant"] = tenant
    if correlation_id:
        attributes["messaging.message.conversation_id"] = correlation_id
        attributes["conveyor.correlation_id"] = correlation_id
    return attributes
