"""`conveyor stats --by task`, `conveyor errors` and `conveyor workers`: the attempt
history's analytics as Rich tables that fit 80 columns (or --json). Registered on the
`conveyor` command by cli.py; each calls one method of app.analytics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .analytics import parse_span
from .app import Conveyor
from .cli import AppOption, JsonOption, cli, fail, load_app, out, print_json
from .cli_views import fmt_time
from .errors import ConfigError
from .history.records import ErrorGroup, TaskSummary, TimeRange, WorkerSummary

RangeOption = Annotated[str, typer.Option("--range", help="how far back: 90m, 1h, 24h, 7d, "
                                          "30d")]
TenantOption = Annotated[str | None, typer.Option(help="one tenant's figures")]
_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int], width: int = 12) -> str:
    """The series squeezed to `width` characters of block bars."""
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    sums = [sum(values[i:i + step]) for i in range(0, len(values), step)]
    top = max(sums) or 1
    return "".join(_BARS[min(7, round(7 * v / top))] if v else " " for v in sums)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.0095 else f"{seconds * 1000:.1f}ms"
    return f"{seconds:.1f}s" if seconds < 600 else f"{seconds / 60:.0f}m"


def size(value: int | None) -> str:
    return "-" if value is None else f"{value / 1_048_576:.0f}M"


def _window(app: str | None, span: str, tenant: str | None) -> tuple[TimeRange, Conveyor]:
    conveyor = load_app(app)
    try:
        parse_span(span)
    except ConfigError as exc:
        fail(str(exc), 2)
    return conveyor.analytics.window(span, tenant=tenant), conveyor


def tasks_table(found: list[TaskSummary], span: str) -> Table:
    table = Table(title=f"tasks, last {span}", header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("task", "queue", "runs", "fail", "p50", "p95", "p99", "trend"):
        table.add_column(column, justify="left" if column in ("task", "queue", "trend")
                         else "right", no_wrap=column != "task", max_width=24)
    for t in found:
        table.add_row(Text(t.task), Text(t.queue), str(t.total),
                      Text(str(t.failed), style="red" if t.failed else ""), duration(t.p50),
                      duration(t.p95), duration(t.p99), sparkline(t.series))
    return table


def errors_table(found: list[ErrorGroup], span: str) -> Table:
    table = Table(title=f"error groups, last {span}", header_style="bold",
                  box=box.SIMPLE_HEAD)
    for column in ("group", "error", "count", "dead", "last seen"):
        table.add_column(column, justify="right" if column in ("count", "dead") else "left",
                         no_wrap=column in ("group", "last seen"))
    for g in found:
        table.add_row(g.fingerprint, Text(f"{g.type}: {g.message}"[:120] + "\n"
                                          + ", ".join(g.tasks), overflow="fold"),
                      str(g.count), str(g.dead_jobs), fmt_time(g.last_seen)[5:])
    return table


def workers_table(found: list[WorkerSummary], span: str) -> Table:
    table = Table(title=f"workers, last {span}", header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("worker", "runs", "fail", "busy", "cpu", "rss", "now"):
        table.add_column(column, justify="left" if column in ("worker", "now") else "right",
                         no_wrap=column != "now", max_width=22 if column == "worker" else None)
    for w in found:
        share = "-" if w.busy_share is None else f"{w.busy_share:.0%}"
        now = ", ".join(w.current) if w.current else ("idle" if w.alive else "gone")
        table.add_row(Text(w.worker_id, overflow="ellipsis"), str(w.attempts),
                      str(w.failures), share, duration(w.cpu), size(w.peak_rss), Text(now))
    return table


def stats_by_task(app: str | None, span: str, tenant: str | None, json_out: bool) -> None:
    window, conveyor = _window(app, span, tenant)
    found = conveyor.analytics.tasks(window)
    if json_out:
        print_json([{**dataclasses.asdict(t), "total": t.total} for t in found])
    elif not found:
        out.print(f"no attempts recorded in the last {span}")
    else:
        out.print(tasks_table(found, span))


@cli.command("errors")
def errors(app: AppOption = None, span: RangeOption = "24h", tenant: TenantOption = None,
           retry: Annotated[str | None, typer.Option(help="requeue every dead job of this "
                                                     "group (its fingerprint)")] = None,
           discard: Annotated[str | None, typer.Option(help="delete every dead job of this "
                                                       "group")] = None,
           json_out: JsonOption = False) -> None:
    """Failures grouped by fingerprint (type, masked message, top frame of your code)."""
    window, conveyor = _window(app, span, tenant)
    analytics = conveyor.analytics
    if retry or discard:
        try:
            n = (analytics.retry_group(retry, tenant) if retry
                 else analytics.discard_group(discard or "", tenant))
        except ConfigError as exc:
            fail(str(exc), 2)
        out.print(f"{'requeued' if retry else 'discarded'} {n} dead jobs of group "
                  f"{retry or discard}")
        return
    found = analytics.errors(window)
    if json_out:
        print_json([dataclasses.asdict(g) for g in found])
    elif not found:
        out.print(f"no failed attempts in the last {span}")
    else:
        out.print(errors_table(found, span))


@cli.command("workers")
def workers(app: AppOption = None, span: RangeOption = "1h", tenant: TenantOption = None,
            json_out: JsonOption = False) -> None:
    """Per worker: attempts, failures, busy share, CPU, peak RSS, and what it runs now."""
    window, conveyor = _window(app, span, tenant)
    found = conveyor.analytics.workers(window)
    if json_out:
        print_json([dataclasses.asdict(w) for w in found])
    elif not found:
        out.print(f"no workers seen in the last {span}")
    else:
        out.print(workers_table(found, span))
