"""How the `conveyor` command shows jobs and stats: Rich tables and styled states.

    out.print(jobs_table(app.list_jobs(), width=out.width))

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
               "completed": "green", "dead": "bold red", "cancelled": "dim",
               "retrying": "magenta"}


def fmt_time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def shown_state(job: Job) -> str:
    """A job's state as an operator reads it: `retrying` for one waiting to retry."""
    return "retrying" if job.retrying else str(job.state)


def count_text(shown: int, total: int, cap: int) -> str:
    """"50 of 2,950 jobs"; "50 of 10,000+ jobs" when counting stopped at the cap."""
    noun = "job" if total == 1 else "jobs"
    if shown >= total:
        return f"{total:,} {noun}"
    return f"{shown:,} of {total:,}{'+' if total >= cap else ''} {noun}"


def last_error(job: Job) -> Text:
    """A dead job's last error in one line ("" for the others)."""
    if job.state != JobState.DEAD or not job.errors:
        return Text(job.dead_reason or "" if job.state == JobState.DEAD else "")
    error = job.errors[-1]
    return Text(f"{error.type}: {' '.join(error.message.split())}", style="red")


def jobs_table(jobs: list[Job], width: int, title: str | None = None) -> Table:
    """Ids and names are never cut or broken (ids are what `conveyor job ID` takes): a
    narrower terminal drops the times, then the queue; when a long task name still does not
    fit beside its id, it goes on a line of its own under the id. A dead job's last error
    takes what width is left, cut with an ellipsis. Fits 80 columns."""
    def widest(values: list[str], header: str) -> int:
        return max([len(header), *map(len, values)])

    dead = any(j.state == JobState.DEAD for j in jobs)
    sizes = {"id": widest([j.id for j in jobs], "id"),
             "task": widest([j.task for j in jobs], "task"),
             "state": widest([shown_state(j) for j in jobs], "state"),
             "try": widest([f"{j.attempt}/{j.max_attempts}" for j in jobs], "try")}
    extra = {"queue": widest([j.queue for j in jobs], "queue"), "created": 19}

    def room(names: list[str], error: int = 12 if dead else 0) -> int:
        """What these columns, their gaps and `error` columns of the last error take."""
        return sum(sizes.get(n) or extra[n] for n in names) + 2 * len(names) + error

    stacked = room(["id", "task", "state", "try"]) > width
    shown = ["id", "state", "try"] if stacked else ["id", "task", "state", "try"]
    if width >= 120 and room([*shown, "queue"], 24 if dead else 0) <= width:
        shown.insert(1 if stacked else 2, "queue")
    if width >= 120 and room([*shown, "created"], 24 if dead else 0) <= width:
        shown.append("created")
    if title is None:
        title = count_text(len(jobs), len(jobs), len(jobs) + 1)
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in shown:
        size = sizes.get(name) or extra[name]
        if name == "id" and stacked:
            table.add_column("id / task", no_wrap=True, min_width=max(size, sizes["task"]))
        else:
            table.add_column(name, no_wrap=True, min_width=size,
                             justify="right" if name == "try" else "left")
    if dead:
        left = max(width - room(shown, 0) - 2, 8)
        table.add_column("last error", no_wrap=True, overflow="ellipsis", max_width=left)
    for j in jobs:
        cell = {"id": Text.assemble(j.id, "\n", (j.task, "bold")) if stacked else Text(j.id),
                "task": Text(j.task), "queue": Text(j.queue), "state": state_text(shown_state(j)),
                "try": Text(f"{j.attempt}/{j.max_attempts}"),
                "created": Text(fmt_time(j.created_at))}
        table.add_row(*[cell[name] for name in shown], *([last_error(j)] if dead else []))
    return table


def print_job(out: Console, job: Job) -> None:
    """A job's envelope as a two-column table, then its errors with their tracebacks."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id), ("task", job.task), ("queue", job.queue),
        ("state", Text.assemble(state_text(shown_state(job)), f" ({job.dead_reason})"
                                if job.dead_reason else f" (next try {fmt_time(job.run_at)})"
                                if job.retrying else "")),
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
    shown: dict[str, int] = {}  # a stack already printed -> the error that printed it
    for number, error in enumerate(job.errors, 1):
        out.print(Text.assemble((f"attempt {error.attempt}", "red"),
                                f" {fmt_time(error.at)} {error.type}: {error.message}"),
                  highlight=False)
        if not error.traceback:
            continue
        trace = error.traceback.rstrip()
        frames = trace.splitlines()  # the stack, without the exception's own line(s) at the end
        while frames and not frames[-1].startswith(" "):
            frames.pop()
        stack = "\n".join(frames)
        if stack and stack in shown:
            out.print(Text(f"  (same traceback as error {shown[stack]} above)", style="dim"),
                      highlight=False)
        else:
            shown[stack] = number
            out.print(Text(trace, style="dim"), highlight=False)


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
    """`conveyor cron`: one row per schedule, its next run in its own zone and in UTC, and
    (when one is) whether it is paused."""
    table = Table(title=f"{len(rows)} cron schedule" + ("" if len(rows) == 1 else "s"),
                  header_style="bold", box=box.SIMPLE_HEAD)
    # the name is what people act on: never wrapped or cut; at 80 columns the times and the
    # task and queue fold over two lines instead
    widest = max((len(str(row["name"])) for row in rows), default=4)
    paused = any(row.get("paused") for row in rows)  # a state column only when it says some
    columns = ("name", *(("state",) if paused else ()), "cron", "task", "queue", "next run",
               "UTC")
    for column in columns:
        table.add_column(column, no_wrap=column in ("name", "cron", "state"),
                         min_width=widest if column == "name" else None,
                         overflow="ellipsis" if column in ("name", "cron") else "fold")
    for row in rows:
        local = datetime.fromtimestamp(row["next_run"], ZoneInfo(row["timezone"]))
        state = [Text("paused", style="red") if row.get("paused") else Text("")] if paused \
            else []
        table.add_row(Text(str(row["name"])), *state,
                      *(Text(str(row[key])) for key in ("cron", "task", "queue")),
                      Text(f"{local:%Y-%m-%d %H:%M:%S} {row['timezone']}"),
                      fmt_time(row["next_run"]))
    return table
