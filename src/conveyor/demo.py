"""`conveyor demo`: example tasks, a worker and a live view, all on one SQLite file.

    conveyor demo                        # until Ctrl-C
    conveyor demo --seconds 20           # stops by itself
    conveyor jobs --app conveyor.demo:create_app --state dead     # look around afterwards

One process holds everything: an app with a handful of realistic tasks, a worker on the same
event loop, a producer that enqueues a mixed stream of jobs, and a Rich view refreshed four
times a second. The view reads through the same app methods as the CLI and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, Field
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.logging import RichHandler
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .app import Conveyor
from .codec import Sensitive
from .context import JobContext
from .errors import ConveyorError
from .job import Job, JobFilter, JobState, QueueInfo
from .outcome import Discard
from .retry import Retry
from .store.base import Stats

DEFAULT_DB = "conveyor-demo.db"
CONCURRENCY = 8
GRACE = 5.0            # seconds running jobs get to finish when the demo stops
REFRESH = 0.25         # seconds between two frames of the live view
RATE = 4.0             # jobs enqueued per second, on average
TENANTS = ("acme", "globex", "initech")
RUNNING = "running · Ctrl-C to stop"
STOPPING = f"stopping: waiting up to {GRACE:.0f}s for running jobs (Ctrl-C again to quit now)"
STATE_STYLE = MappingProxyType({"scheduled": "cyan", "queued": "blue", "running": "yellow",
                                "completed": "green", "dead": "bold red", "cancelled": "dim"})


# --- the example tasks ------------------------------------------------------------------------


class ChargeCard(BaseModel):
    """The payload of charge_card, validated at enqueue; the card token is never shown."""

    order_id: str
    card_token: Annotated[str, Sensitive]
    amount_cents: int = Field(gt=0)
    currency: str = "EUR"


async def send_welcome_email(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Async, quick: a mail provider's API call with a little latency."""
    await asyncio.sleep(random.uniform(0.05, 0.4))
    return {"to": payload["email"], "message_id": f"msg-{ctx.job_id[-12:]}"}


def generate_report(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Sync and slow (it runs in the worker's thread pool), reporting progress step by step."""
    steps = ("query", "aggregate", "render", "upload")
    for done, step in enumerate(steps):
        if ctx.cancelled:  # cancelled or timed out: stop between steps
            return None
        ctx.progress(100 * done / len(steps), step=step)
        time.sleep(random.uniform(0.4, 0.9))
    ctx.progress(100, step="done")
    return {"report": payload["kind"], "url": f"https://reports.example.com/{ctx.job_id}.pdf"}


async def embed_document(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Flaky: the embedding service is often overloaded; retries with backoff get it done."""
    await asyncio.sleep(random.uniform(0.1, 0.5))
    if ctx.attempt < ctx.max_attempts and random.random() < 0.45:
        raise ConnectionError("embedding service answered 503 (overloaded), try again later")
    return {"document_id": payload["document_id"], "chunks": payload["pages"] * 4}


async def charge_card(ctx: JobContext, payload: ChargeCard) -> dict[str, Any]:
    """A payment: the effect key is the same on every attempt, so a retry never charges twice."""
    charge_key = ctx.effect_key("charge")  # pass as the gateway's Idempotency-Key header
    await asyncio.sleep(random.uniform(0.1, 0.3))
    roll = random.random()
    if roll < 0.08:
        raise Retry.later(1.5)  # the gateway asked us to slow down: not a failure
    if roll < 0.14:
        raise Discard("card declined: insufficient funds")  # retrying would not help
    return {"order_id": payload.order_id, "charge_id": "ch_" + charge_key[-16:],
            "amount_cents": payload.amount_cents}


async def deliver_webhook(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Always fails: the customer's endpoint is down, so the job ends dead after its attempts."""
    await asyncio.sleep(random.uniform(0.05, 0.2))
    raise ConnectionError(f"POST {payload['url']} answered 502 Bad Gateway")


def register_tasks(app: Conveyor) -> None:
    app.task(queue="emails", retry=Retry(attempts=3, base=0.5))(send_welcome_email)
    app.task(queue="reports", timeout=60)(generate_report)
    app.task(queue="ai", retry=Retry(attempts=5, base=0.5, max_delay=4))(embed_document)
    app.task(queue="payments", schema=ChargeCard, priority=10,
             retry=Retry(attempts=4, base=1.0))(charge_card)
    app.task(queue="webhooks", retry=Retry(attempts=3, backoff="fixed", base=1.0))(
        deliver_webhook)


def create_app(url: str | None = None) -> Conveyor:
    """The demo's app, for the CLI too: `conveyor jobs --app conveyor.demo:create_app`.
    Its store is `url`, else CONVEYOR_URL, else the demo's file in this folder."""
    app = Conveyor(url or os.environ.get("CONVEYOR_URL") or f"sqlite:///{DEFAULT_DB}")
    register_tasks(app)
    return app


# --- the stream of jobs -----------------------------------------------------------------------

Planned = tuple[str, Any, dict[str, Any]]  # (task, payload, enqueue options)


class JobStream:
    """Makes up what a small SaaS enqueues: sign-ups, payments, documents, reports, webhooks."""

    KINDS = ("welcome", "charge", "embed", "report", "webhook")
    WEIGHTS = (35, 25, 25, 10, 5)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = itertools.count(1)

    def next(self) -> Planned:
        kind = self.rng.choices(self.KINDS, self.WEIGHTS)[0]
        number = next(self.counter)
        task, payload, options = getattr(self, f"_{kind}")(number)
        options.setdefault("tenant", self.rng.choice(TENANTS))
        options.setdefault("correlation_id", f"req-{number:05d}")
        return task, payload, options

    def _welcome(self, number: int) -> Planned:
        user = f"user-{number}"
        return ("send_welcome_email", {"user_id": user, "email": f"{user}@example.com"},
                {"idempotency_key": f"welcome:{user}"})

    def _charge(self, number: int) -> Planned:
        order = f"ord-{number:05d}"
        payload = {"order_id": order, "amount_cents": self.rng.randrange(500, 25_000, 50),
                   "card_token": f"tok_visa_{self.rng.randrange(10**8):08d}"}
        return "charge_card", payload, {"idempotency_key": f"charge:{order}", "ttl": 600}

    def _embed(self, number: int) -> Planned:
        return ("embed_document", {"document_id": f"doc-{number}",
                                   "pages": self.rng.randint(1, 40)}, {})

    def _report(self, number: int) -> Planned:
        kind = self.rng.choice(("weekly-sales", "churn", "usage"))
        return ("generate_report", {"kind": kind},
                {"delay": self.rng.uniform(1, 4), "priority": -5})

    def _webhook(self, number: int) -> Planned:
        return ("deliver_webhook", {"url": "https://hooks.example.com/orders",
                                    "event": "order.paid"}, {"priority": -1})


@dataclass
class Producer:
    """Enqueues the stream at about `rate` jobs a second; now and then a user double-clicks,
    and the idempotency key hands back the job that is already there."""

    app: Conveyor
    stream: JobStream
    rate: float = RATE
    enqueued: int = 0
    duplicates: int = 0
    last_error: str | None = None

    def burst(self, count: int) -> None:
        """A first batch, enqueued atomically, so the view has something to show at once."""
        planned = [self.stream.next() for _ in range(count)]
        jobs = self.app.enqueue_many([{"task": t, "payload": p, **o} for t, p, o in planned])
        for job in jobs:
            self._count(job)

    def enqueue_one(self) -> None:
        task, payload, options = self.stream.next()
        try:
            self._count(self.app.enqueue(task, payload, **options))
            if task == "send_welcome_email" and self.stream.rng.random() < 0.15:
                self._count(self.app.enqueue(task, payload, **options))  # the double click
        except ConveyorError as exc:
            self.last_error = str(exc)

    def _count(self, job: Job) -> None:
        if job.duplicate:
            self.duplicates += 1
            return
        self.enqueued += 1

    async def run(self) -> None:
        while True:
            self.enqueue_one()
            await asyncio.sleep(self.stream.rng.expovariate(self.rate))


# --- what the view shows ----------------------------------------------------------------------


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
    running = app.list_jobs(JobFilter(states=(JobState.RUNNING,)), limit=rows.running)
    latest = app.list_jobs(limit=rows.latest, redacted=True) if rows.latest else []
    return Snapshot(stats=stats, queues=app.queues(), latest=latest, running=running,
                    failures=recent_failures(app, rows.failures),
                    rate=meter.record(time.monotonic(), stats.by_state.get("completed", 0)))


def recent_failures(app: Conveyor, count: int) -> list[Job]:
    """Jobs whose last attempt failed (retrying or dead), and recent ones that recovered."""
    failing = app.list_jobs(JobFilter(states=(JobState.SCHEDULED, JobState.DEAD)), limit=40)
    done = app.list_jobs(JobFilter(states=(JobState.COMPLETED,)), limit=40)
    jobs = [j for j in failing + done if j.errors]
    jobs.sort(key=lambda j: j.errors[-1].at or 0.0, reverse=True)
    return jobs[:count]


def styled(state: str, text: str | None = None) -> Text:
    return Text(text if text is not None else state, style=STATE_STYLE.get(state, ""))


def short_id(job_id: str) -> str:
    return "…" + job_id[-10:]


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
        table.add_row(queue.name + (" (paused)" if queue.paused else ""),
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
        table.add_row(short_id(job.id), job.task, started, *progress_cells(job))
    if not snapshot.running:
        table.add_row("", Text("idle", style="dim"), "", "", "", "")
    return table


def progress_cells(job: Job) -> tuple[RenderableType, str, str]:
    if job.progress is None:
        return Text("(reports no progress)", style="dim"), "", ""
    return (ProgressBar(total=100, completed=job.progress, width=20), f"{job.progress:3.0f}%",
            job.progress_step or "")


def render_latest(snapshot: Snapshot) -> RenderableType:
    table = Table(title="latest jobs (sensitive fields redacted)", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    for column in ("id", "task", "tenant", "state", "try"):
        table.add_column(column, no_wrap=True)
    table.add_column("payload")  # the column that gives way on a narrow terminal
    for job in snapshot.latest:
        table.add_row(short_id(job.id), job.task, job.tenant or "-", styled(job.state),
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
        table.add_row(short_id(job.id), job.task, f"{error.attempt}/{job.max_attempts}",
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


class Stopper:
    """Ctrl-C (or SIGTERM) once: stop gracefully. Twice: stop now."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.on_force: Callable[[], object] = lambda: None
        self.forced = False

    def __call__(self) -> None:
        if self.requested.is_set():
            self.forced = True
            self.on_force()
        self.requested.set()

    @contextlib.contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        handled: list[signal.Signals] = []
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self)
                handled.append(sig)
        except (RuntimeError, ValueError, NotImplementedError):
            pass  # not the main thread, or no signals here: --seconds still stops it
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)


@dataclass
class Session:
    app: Conveyor
    console: Console
    seconds: float | None
    status: Status
    producer: Producer
    meter: Throughput = field(default_factory=Throughput)
    port: int = 8000

    def frame(self) -> RenderableType:
        height = self.console.height if self.console.is_terminal else None
        return render(take_snapshot(self.app, self.meter, fit_rows(height)), self.status)

    async def refresh_until(self, live: Live, done: Callable[[], bool]) -> None:
        while not done():
            live.update(self.frame(), refresh=True)
            await asyncio.sleep(REFRESH)
        live.update(self.frame(), refresh=True)


async def run_session(session: Session) -> int:
    """Worker, producer and view until the time is up or Ctrl-C; then a graceful stop."""
    worker = session.app.worker(concurrency=CONCURRENCY, grace=GRACE)
    session.status.worker = f"worker pid {os.getpid()}"
    stopper = Stopper()
    worker_task = asyncio.create_task(worker.run(install_signals=False))
    stopper.on_force = worker_task.cancel
    session.producer.burst(12)
    producer_task = asyncio.create_task(session.producer.run())
    server, server_task = await start_dashboard(session)
    deadline = None if session.seconds is None else time.monotonic() + session.seconds
    try:
        with stopper.installed(asyncio.get_running_loop()), \
                Live(console=session.console, auto_refresh=False) as live:
            await session.refresh_until(live, lambda: stopper.requested.is_set() or
                                        worker_task.done() or
                                        (deadline is not None and time.monotonic() >= deadline))
            producer_task.cancel()
            session.status.state = STOPPING
            worker.stop()
            await session.refresh_until(live, worker_task.done)
    finally:  # also when the view fails: never leave the worker holding leases
        producer_task.cancel()
        worker.stop()
        await asyncio.wait([worker_task])
        if server is not None and server_task is not None:
            server.should_exit = True
            await asyncio.wait([server_task], timeout=10)
    return finish(worker_task, stopper)


async def start_dashboard(session: Session) -> tuple[Any, asyncio.Task[None] | None]:
    """The HTTP API and live dashboard beside the worker, on loopback; its URL goes into the
    header. Without the web extra the demo runs on without it."""
    try:
        from .web.server import build_server
    except ImportError:
        session.status.links.append("dashboard: pip install 'conveyor-jobs[web]' to see it")
        return None, None
    port = session.port if port_free(session.port) else 0
    server = build_server(session.app, "127.0.0.1", port, sample_every=1.0,
                          log_level="warning", install_signals=False)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    if not server.started:
        session.status.links.append("dashboard: could not start (see the log)")
        return None, None
    session.status.links.append(f"dashboard and API: {server.url}/")
    return server, task


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def finish(worker_task: asyncio.Task[None], stopper: Stopper) -> int:
    if stopper.forced:
        return 130
    if worker_task.cancelled():
        return 1
    error = worker_task.exception()
    if error is not None:
        raise error
    return 0


def print_summary(app: Conveyor, producer: Producer, elapsed: float, console: Console) -> None:
    by_state = app.stats().by_state
    counts = ", ".join(f"[{STATE_STYLE[s]}]{by_state.get(s, 0)} {s}[/]" for s in
                       (str(x) for x in JobState) if by_state.get(s, 0))
    console.print(f"\n[bold]{plural(producer.enqueued, 'job')} enqueued in {elapsed:.0f}s[/bold]"
                  f" ({plural(producer.duplicates, 'duplicate')} caught by idempotency keys); "
                  f"now {counts or 'none'}.", soft_wrap=True)
    if producer.last_error:
        console.print(f"[red]last enqueue error:[/red] {producer.last_error}")
    example = app.list_jobs(JobFilter(states=(JobState.DEAD,)), limit=1) or app.list_jobs(limit=1)
    console.print(hints(example[0].id if example else "ID", app.settings.url), highlight=False,
                  soft_wrap=True)


def hints(example: str, url: str) -> str:
    command = conveyor_command()
    where = "" if url == f"sqlite:///{DEFAULT_DB}" and "CONVEYOR_URL" not in os.environ \
        else f"CONVEYOR_URL={url} "
    prefix = f"  {where}{command}"
    app = "--app conveyor.demo:create_app"
    return "\n".join([
        "The jobs stay in the file until the next demo. Look around:",
        f"{prefix} jobs {app} --state dead",
        f"{prefix} job {example} {app}",
        f"{prefix} stats {app}",
        "Write your own tasks: see README.md (a worker is `conveyor worker --app mymod:app`)."])


def conveyor_command() -> str:
    """`conveyor` when that is on PATH and is this one, else the path this one ran from."""
    own = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    found = shutil.which("conveyor")
    if found and own and os.path.realpath(found) == own:
        return "conveyor"
    if not own.endswith("conveyor"):
        return "conveyor"
    relative = os.path.relpath(own)
    return own if relative.startswith("..") else relative


# --- set-up -----------------------------------------------------------------------------------

# Read-only, and only to make sure we never delete a file that is not a Conveyor store.
_IS_CONVEYOR_STORE = "SELECT count(*) FROM sqlite_master WHERE name = 'conveyor_jobs'"


def fresh_database(path: Path) -> None:
    """Remove a previous demo's store (and its WAL files) so every demo starts clean."""
    if not path.exists():
        return
    if not is_conveyor_store(path):
        raise ConveyorError(f"{path} exists and is not a Conveyor store; the demo starts "
                            "from a clean file, so pass another --db")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def is_conveyor_store(path: Path) -> bool:
    if path.stat().st_size == 0:
        return True
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return bool(conn.execute(_IS_CONVEYOR_STORE).fetchone()[0])
    except sqlite3.DatabaseError:  # not a database at all
        return False


@contextlib.contextmanager
def demo_logging(console: Console) -> Iterator[None]:
    """Task failures are on screen already, so their log lines are muted; other warnings
    (a store problem, say) print above the live view."""
    task_log, root = logging.getLogger("conveyor.task"), logging.getLogger("conveyor")
    saved = (task_log.propagate, task_log.level, list(root.handlers))
    handler = RichHandler(console=console, level=logging.WARNING, show_path=False)
    task_log.propagate, task_log.level = False, logging.CRITICAL
    if not root.handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        task_log.propagate, task_log.level = saved[0], saved[1]
        root.handlers[:] = saved[2]


def run_demo(db: str, seconds: float | None, port: int = 8000) -> int:
    """Run the demo on the SQLite file `db` (recreated) for `seconds`, or until Ctrl-C.
    Returns the process exit status."""
    console = Console()
    if seconds is not None and seconds <= 0:
        console.print("[red]error:[/red] --seconds must be positive", highlight=False)
        return 2
    path = Path(db)
    try:
        fresh_database(path)
        app = create_app(f"sqlite:///{path}")
    except (ConveyorError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    producer = Producer(app, JobStream(random.Random()))
    session = Session(app, console, seconds, Status(str(path), producer), producer, port=port)
    try:
        with demo_logging(console):
            code = asyncio.run(run_session(session))
        print_summary(app, producer, time.monotonic() - session.status.started, console)
        for link in session.status.links:
            console.print(f"{link} (closed with the demo; `conveyor serve` keeps one running)",
                          highlight=False, soft_wrap=True)
    except ConveyorError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    finally:
        app.close()
    return code
