"""How the `conveyor` command shows jobs and stats: Rich tables and styled states.

    out.print(jobs_table(app.list_jobs(), wide=out.width >= 120))

Job data (names, ids, payloads, messages) is never read as Rich markup: every cell is a
Text, so `[/]` in a queue name or "[redacted]" in a payload prints as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .job import Job, JobState
from .store.base import Stats

STATE_STYLE = {"scheduled": "cyan", "queued": "blue", "running": "yellow",
               "completed": "green", "dead": "bold red", "cancelled": "dim"}


def fmt_time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def jobs_table(jobs: list[Job], wide: bool) -> Table:
    """Ids are never cut (they are what `conveyor job ID` takes); a narrow terminal drops
    the queue and the times instead."""
    title = f"{len(jobs)} job" + ("" if len(jobs) == 1 else "s")
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("task", overflow="fold")
    if wide:
        table.add_column("queue", overflow="fold")
    for column in ("state", "attempt") + (("created", "finished") if wide else ()):
        table.add_column(column, no_wrap=True)
    for j in jobs:
        cells = [Text(j.id), Text(j.task)] + ([Text(j.queue)] if wide else [])
        cells += [state_text(j.state), Text(f"{j.attempt}/{j.max_attempts}")]
        if wide:
            cells += [Text(fmt_time(j.created_at)), Text(fmt_time(j.finished_at))]
        table.add_row(*cells)
    return table


def print_job(out: Console, job: Job) -> None:
    """A job's envelope as a two-column table, then its errors with their tracebacks."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id), ("task", job.task), ("queue", job.queue),
        ("state", Text.assemble(state_text(job.state), f" ({job.dead_reason})"
                                if job.dead_reason else "")),
        ("attempt", f"{job.attempt} of {job.max_attempts}"), ("priority", str(job.priority)),
        ("tenant", job.tenant or "-"), ("correlation id", job.correlation_id or "-"),
        ("idempotency key", job.idempotency_key or "-"),
        ("created", fmt_time(job.created_at)), ("run at", fmt_time(job.run_at)),
        ("started", fmt_time(job.started_at)), ("finished", fmt_time(job.finished_at)),
        ("expires", fmt_time(job.expires_at)),
        ("progress", "-" if job.progress is None else f"{job.progress:.0f}% "
         f"{job.progress_step or ''}"),
        ("worker", f"{job.worker_id or '-'} on {job.worker_host or '-'}"),
        ("payload", orjson.dumps(job.payload).decode()),
        ("result", "-" if job.result is None else orjson.dumps(job.result).decode())]
    for name, value in rows:
        table.add_row(name, value if isinstance(value, Text) else Text(value))
    out.print(table)
    for error in job.errors:
        out.print(Text.assemble((f"attempt {error.attempt}", "red"),
                                f" {fmt_time(error.at)} {error.type}: {error.message}"),
                  highlight=False)
        if error.traceback:
            out.print(Text(error.traceback.rstrip(), style="dim"), highlight=False)


def print_stats(out: Console, s: Stats) -> None:
    """Counts by queue and state, durations, failure and retry-success rates."""
    states = [str(x) for x in JobState]
    table = Table(title="jobs by queue", header_style="bold")
    table.add_column("queue")
    for st in states:
        table.add_column(state_text(st), justify="right")
    for queue, counts in sorted(s.by_queue.items()):
        table.add_row(Text(queue), *(str(counts.get(st, 0)) for st in states))
    table.add_row(Text("all", style="bold"),
                  *(Text(str(s.by_state.get(st, 0)), style="bold") for st in states))
    out.print(table)
    d = s.durations

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.1f} ms"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    out.print(f"durations (last hour): p50 {ms(d.get('p50'))}, p95 {ms(d.get('p95'))}, "
              f"p99 {ms(d.get('p99'))}")
    out.print(f"failure rate {pct(s.failure_rate)}, retry success "
              f"{pct(s.retry_success_rate)}, completed in the last minute "
              f"{s.completed_last_minute}")


def schedules_table(rows: list[dict[str, Any]]) -> Table:
    """`conveyor cron`: one row per schedule, its next run in its own zone and in UTC."""
    table = Table(title=f"{len(rows)} cron schedule" + ("" if len(rows) == 1 else "s"),
                  header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("name", "cron", "task", "queue", "next run", "UTC"):
        table.add_column(column, no_wrap=column in ("cron", "next run", "UTC"))
    for row in rows:
        local = datetime.fromtimestamp(row["next_run"], ZoneInfo(row["timezone"]))
        table.add_row(*(Text(str(row[key])) for key in ("name", "cron", "task", "queue")),
                      Text(f"{local:%Y-%m-%d %H:%M:%S} {row['timezone']}"),
                      fmt_time(row["next_run"]))
    return table
