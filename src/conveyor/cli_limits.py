"""`conveyor queues`, `conveyor queue set` and `conveyor task set`: queues and their limits
(conveyor.limits), read and changed at run time. Registered by cli.py."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from .cli import AppOption, JsonOption, fail, load_app, out, print_json
from .limits.control import UNSET
from .limits.model import LimitUsage, format_rate, usage_json

queue_cli = typer.Typer(help="One queue's limits.", no_args_is_help=True)
task_cli = typer.Typer(help="One task's limits.", no_args_is_help=True)

ConcurrencyOption = Annotated[str | None, typer.Option(
    help="at most this many running across every worker; 'none' removes it")]
RateOption = Annotated[str | None, typer.Option(
    help="at most COUNT starts in any sliding window of PERIOD, e.g. 10/min, 20/s, 100/10s; "
         "'none' removes it")]
ResetOption = Annotated[bool, typer.Option(
    "--reset", help="remove the change made at run time: the limit declared in code applies")]
KeyConcurrencyOption = Annotated[str | None, typer.Option(
    help="per key (customer, account: the task's KeyLimit): at most this many of one key's "
         "jobs running; 'none' removes it")]
KeyRateOption = Annotated[str | None, typer.Option(
    help="per key: at most COUNT starts of one key's jobs in any sliding window of PERIOD, "
         "e.g. 10/min; 'none' removes it")]
KeyStrategyOption = Annotated[str | None, typer.Option(
    help="a new job whose key is at its limit: queue (waits its turn), drop (not stored), "
         "debounce (older waiting jobs of the key are cancelled)")]


def queues(app: AppOption = None, json_out: JsonOption = False) -> None:
    """Every queue: its jobs, whether it is paused, and its limits with their current use."""
    conveyor = load_app(app)
    found = conveyor.queues()
    usage = {u.limit.name: u for u in conveyor.limits.usage() if u.limit.kind == "queue"}
    now = time.time()
    if json_out:
        print_json({"queues": [{"name": q.name, "paused": q.paused, "counts": q.counts,
                                "limit": usage_json(usage[q.name], now)
                                if q.name in usage else None} for q in found],
                    "limits": [usage_json(u, now) for u in conveyor.limits.usage()]})
        return
    table = Table(title="queues")
    for header in ("queue", "queued", "scheduled", "running", "paused", "concurrency",
                   "rate (started in window)", "held back by"):
        table.add_column(header, justify="right" if header in ("queued", "scheduled",
                                                               "running") else "left")
    names = sorted({q.name for q in found} | set(usage))
    infos = {q.name: q for q in found}
    for name in names:
        info, limit = infos.get(name), usage.get(name)
        counts = info.counts if info else {}
        table.add_row(name, str(counts.get("queued", 0)), str(counts.get("scheduled", 0)),
                      str(counts.get("running", 0)), "yes" if info and info.paused else "",
                      *_limit_cells(limit, now))
    out.print(table)
    tasks: dict[str, dict[str, LimitUsage]] = {}
    for usage_row in conveyor.limits.usage():
        if usage_row.limit.kind in ("task", "key"):
            tasks.setdefault(usage_row.limit.name, {})[usage_row.limit.kind] = usage_row
    if tasks:
        task_table = Table(title="task limits (per key: each key of the task on its own)")
        for header in ("task", "concurrency", "rate (started in window)", "per key: concurrency",
                       "per key: rate", "key strategy", "held back by"):
            task_table.add_column(header)
        for name in sorted(tasks):
            task_table.add_row(name, *_task_cells(tasks[name], now))
        out.print(task_table)


def _task_cells(found: dict[str, LimitUsage], now: float) -> tuple[str, ...]:
    """A task's own caps and its keys' caps, each in its own column."""
    concurrency, rate, holding = _limit_cells(found.get("task"), now)
    keyed = found.get("key")
    if keyed is None:
        return concurrency, rate, "", "", "", holding
    limit = keyed.limit
    key_rate = "" if limit.rate is None or limit.period is None \
        else format_rate(limit.rate, limit.period)
    at_limit = f"{keyed.keys_at_limit} key(s) at their limit" if keyed.keys_at_limit else ""
    return (concurrency, rate, "" if limit.concurrency is None else str(limit.concurrency),
            key_rate, limit.strategy, "; ".join(filter(None, [holding, at_limit])))


def _limit_cells(usage: LimitUsage | None, now: float) -> tuple[str, str, str]:
    if usage is None:
        return "", "", ""
    limit = usage.limit
    concurrency = ("" if limit.concurrency is None
                   else f"{usage.running} / {limit.concurrency}" + (
                       "" if usage.granted is None else f", {usage.granted} granted"))
    rate = ("" if limit.rate is None or limit.period is None
            else f"{usage.started} / {format_rate(limit.rate, limit.period)}")
    holding = usage.holding(now) or ""
    return concurrency, rate, holding.split(" ", 2)[-1] if holding else ""


def _caps(concurrency: str | None, rate: str | None) -> tuple[object, object]:
    if concurrency is None:
        count: object = UNSET
    elif concurrency.lower() in ("none", "off"):
        count = None
    elif concurrency.isdigit():
        count = int(concurrency)
    else:
        fail(f"--concurrency {concurrency!r}: a whole number, or 'none'")
    if rate is None:
        return count, UNSET
    return count, None if rate.lower() in ("none", "off") else rate


def _set(kind: str, name: str, app: str | None, concurrency: str | None, rate: str | None,
         reset: bool, strategy: str | None = None) -> LimitUsage | None:
    conveyor = load_app(app)
    if reset:
        conveyor.limits.reset(kind, name)
    elif concurrency is None and rate is None and strategy is None:
        fail("give --concurrency, --rate or --reset")
    else:
        count, per = _caps(concurrency, rate)
        try:
            conveyor.limits.set(kind, name, concurrency=count, rate=per,  # type: ignore[arg-type]
                                strategy=UNSET if strategy is None else strategy)
        except ValueError as exc:
            fail(f"{kind} {name!r}: {exc}")
    return conveyor.limits.find(kind, name)


def _show(found: list[tuple[str, LimitUsage | None]], name: str, json_out: bool) -> None:
    if json_out:
        docs = [usage_json(usage, time.time()) if usage else None for _, usage in found]
        print_json(docs[0] if len(docs) == 1 else docs)
        return
    for kind, usage in found:
        if usage is None:
            out.print(f"{kind} {name}: no limit", highlight=False)
        else:
            out.print(f"{kind} {name}: {usage.limit.describe()} (set by "
                      f"{usage.limit.source}); every worker applies it within a second",
                      highlight=False)


@queue_cli.command("set")
def queue_set(name: str, app: AppOption = None, concurrency: ConcurrencyOption = None,
              rate: RateOption = None, reset: ResetOption = False,
              json_out: JsonOption = False) -> None:
    """Change a queue's limits across every worker, e.g.
    `conveyor queue set ai --concurrency 3 --rate 20/min`."""
    _show([("queue", _set("queue", name, app, concurrency, rate, reset))], name, json_out)


@task_cli.command("set")
def task_set(name: str, app: AppOption = None, concurrency: ConcurrencyOption = None,
             rate: RateOption = None, reset: ResetOption = False,
             key_concurrency: KeyConcurrencyOption = None, key_rate: KeyRateOption = None,
             key_strategy: KeyStrategyOption = None, json_out: JsonOption = False) -> None:
    """Change a task's limits across every worker (its jobs in any queue), or each key's
    (--key-*: per customer, account, ... as the task's KeyLimit computes it), e.g.
    `conveyor task set reports.build --concurrency 1`,
    `conveyor task set sync --key-concurrency 1 --key-rate 10/min --key-strategy drop`.
    --reset resets both."""
    keyed = key_concurrency is not None or key_rate is not None or key_strategy is not None
    found = []
    if concurrency is not None or rate is not None or reset or not keyed:
        found.append(("task", _set("task", name, app, concurrency, rate, reset)))
    if keyed or reset:
        found.append(("key", _set("key", name, app, key_concurrency, key_rate, reset,
                                  key_strategy)))
    _show(found, name, json_out)
