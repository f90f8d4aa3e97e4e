"""The demo's live view: a snapshot of the app, drawn with Rich four times a second.

Jobs are read redacted, and their data goes into cells as Text, never as Rich markup.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..app import Conveyor
from ..job import Job, JobFilter, JobState, QueueInfo
from ..store.base import Stats
from .tasks import CONCURRENCY, RUNNING, STATE_STYLE, Producer


class Throughput:
    """Completed jobs per second over the last few seconds, from the completed count."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def record(self, now: float, completed: int) -> float:
        self.samples.append((now, completed))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        first_at, first = self.samples[0]
        return 0.0 if now - first_at < 0.5 else (completed - first) / (now - first_at)


@dataclass(frozen=True)
class Snapshot:
    stats: Stats
    queues: list[QueueInfo]
    latest: list[Job]
    running: list[Job]
    failures: list[Job]
    rate: float


@dataclass
class Status:
    """The header: what the demo is doing and where to look."""

    db: str
    producer: Producer
    worker: str = "-"
    started: float = field(default_factory=time.monotonic)
    state: str = RUNNING
    links: list[str] = field(default_factory=list)  # e.g. the dashboard's URL, once it exists


@dataclass(frozen=True)
class Rows:
    """How many jobs each table lists."""

    running: int = 6
    latest: int = 8
    failures: int = 5


def fit_rows(height: int | None) -> Rows:
    """Rows that fit a terminal `height` lines tall (None: no limit, as in a file). The
    header, the queue table and the tables' titles take about 23 lines; the latest jobs go
    first when space is short."""
    if height is None:
        return Rows()
    spare = height - 23
    running, failures = max(1, min(6, spare // 3)), max(1, min(5, spare // 3))
    latest = min(8, spare - running - failures)
    return Rows(running, latest if latest >= 3 else 0, failures)


def take_snapshot(app: Conveyor, meter: Throughput, rows: Rows) -> Snapshot:
    stats = app.stats()
    running = app.list_jobs(JobFilter(states=(JobState.RUNNING,)), limit=rows.running,
                            redacted=True)
    latest = app.list_jobs(limit=rows.latest, redacted=True) if rows.latest else []
    return Snapshot(stats=stats, queues=app.queues(), latest=latest, running=running,
                    failures=recent_failures(app, rows.failures),
                    rate=meter.record(time.monotonic(), stats.by_state.get("completed", 0)))


def recent_failures(app: Conveyor, count: int) -> list[Job]:
    """Jobs whose last attempt failed (retrying or dead), and recent ones that recovered."""
    failing = app.list_jobs(JobFilter(states=(JobState.SCHEDULED, JobState.DEAD)), limit=40,
                            redacted=True)
    done = app.list_jobs(JobFilter(states=(JobState.COMPLETED,)), limit=40, redacted=True)
    jobs = [j for j in failing + done if j.errors]
    jobs.sort(key=lambda j: j.errors[-1].at or 0.0, reverse=True)
    return jobs[:count]


def styled(state: str, text: str | None = None) -> Text:
    return Text(text if text is not None else state, style=STATE_STYLE.get(state, ""))


def short_id(job_id: str) -> Text:
    return Text("…" + job_id[-10:])


def render(snapshot: Snapshot, status: Status) -> RenderableType:
    parts = [render_header(snapshot, status), render_queues(snapshot),
             render_running(snapshot)]
    if snapshot.latest:
        parts.append(render_latest(snapshot))
    return Group(*parts, render_failures(snapshot))


def render_header(snapshot: Snapshot, status: Status) -> RenderableType:
    elapsed = time.monotonic() - status.started
    d, producer = snapshot.stats.durations, status.producer
    title = Text.assemble(("Conveyor demo", "bold"), f" · {status.db} · {status.worker}, "
                          f"{CONCURRENCY} slots · {elapsed:.0f}s")
    figures = Text.assemble(
        (f"{snapshot.rate:.1f} jobs/s", "bold green"),
        f" · p50 {fmt_seconds(d.get('p50'))} · p95 {fmt_seconds(d.get('p95'))} · "
        f"{producer.enqueued} enqueued · {plural(producer.duplicates, 'duplicate')} skipped")
    state = Text(status.state, style="dim" if status.state == RUNNING else "bold yellow")
    return Panel(Group(title, figures, *(Text(link, style="cyan") for link in status.links),
                       state), border_style="blue")


def render_queues(snapshot: Snapshot) -> RenderableType:
    table = Table(title="queues", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    table.add_column("queue")
    states = [str(s) for s in JobState]
    for state in states:
        table.add_column(styled(state), justify="right")
    table.add_column("/min", justify="right")
    for queue in sorted(snapshot.queues, key=lambda q: q.name):
        table.add_row(Text(queue.name + (" (paused)" if queue.paused else "")),
                      *(styled(s, str(queue.counts.get(s, 0))) for s in states),
                      str(queue.completed_last_minute))
    totals = snapshot.stats.by_state
    table.add_row(Text("all", style="bold"), *(styled(s, str(totals.get(s, 0))) for s in states),
                  str(snapshot.stats.completed_last_minute), end_section=True)
    return table


def render_running(snapshot: Snapshot) -> RenderableType:
    table = Table(title="running", title_justify="left", header_style="bold", box=None,
                  pad_edge=False)
    for column in ("id", "task", "for", "progress", "", "step"):
        table.add_column(column, no_wrap=True)
    for job in snapshot.running:
        started = f"{time.time() - job.started_at:.1f}s" if job.started_at else "-"
        table.add_row(short_id(job.id), Text(job.task), started, *progress_cells(job))
    if not snapshot.running:
        table.add_row("", Text("idle", style="dim"), "", "", "", "")
    return table


def progress_cells(job: Job) -> tuple[RenderableType, str, Text]:
    if job.progress is None:
        return Text("(reports no progress)", style="dim"), "", Text("")
    return (ProgressBar(total=100, completed=job.progress, width=20), f"{job.progress:3.0f}%",
            Text(job.progress_step or ""))


def render_latest(snapshot: Snapshot) -> RenderableType:
    table = Table(title="latest jobs (sensitive fields redacted)", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    for column in ("id", "task", "tenant", "state", "try"):
        table.add_column(column, no_wrap=True)
    table.add_column("payload")  # the column that gives way on a narrow terminal
    for job in snapshot.latest:
        table.add_row(short_id(job.id), Text(job.task), Text(job.tenant or "-"), styled(job.state),
                      f"{job.attempt}/{job.max_attempts}", one_line(preview(job.payload)))
    return table


def render_failures(snapshot: Snapshot) -> RenderableType:
    table = Table(title="recent failures", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    for column in ("id", "task", "try", "then"):
        table.add_column(column, no_wrap=True)
    table.add_column("error")
    for job in snapshot.failures:
        error = job.errors[-1]
        table.add_row(short_id(job.id), Text(job.task), f"{error.attempt}/{job.max_attempts}",
                      next_step(job), one_line(f"{error.type}: {error.message}", "red"))
    if not snapshot.failures:
        table.add_row("", Text("none yet", style="dim"), "", "", "")
    return table


def next_step(job: Job) -> Text:
    if job.state == JobState.SCHEDULED and job.run_at is not None:
        wait = job.run_at - time.time()
        return styled("scheduled", f"retry in {wait:.1f}s" if wait > 0.05 else "retrying")
    if job.state == JobState.DEAD:
        return styled("dead", f"dead ({job.dead_reason or 'failed'})")
    return styled(job.state, "recovered" if job.state == JobState.COMPLETED else job.state)


def preview(payload: Any) -> str:
    if isinstance(payload, dict):
        return ", ".join(f"{k}={v}" for k, v in payload.items())
    return str(payload)


def one_line(text: str, style: str = "") -> Text:
    """A cell that is cut with an ellipsis rather than wrapped."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


# --- running it -------------------------------------------------------------------------------
