"""Running the demo: the session (worker, producer, view, dashboard), stopping, the summary."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.logging import RichHandler
from rich.text import Text

from ..app import Conveyor
from ..errors import ConveyorError
from ..job import JobFilter, JobState
from .tasks import (
    CONCURRENCY,
    DEFAULT_DB,
    GRACE,
    REFRESH,
    STATE_STYLE,
    STOPPING,
    JobStream,
    Producer,
    create_app,
)
from .view import Status, Throughput, fit_rows, plural, render, take_snapshot


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
        from ..web.server import build_server
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
        console.print(Text.assemble(("last enqueue error:", "red"), f" {producer.last_error}"))
    example = app.list_jobs(JobFilter(states=(JobState.DEAD,)), limit=1) or app.list_jobs(limit=1)
    console.print(Text(hints(example[0].id if example else "ID", app.settings.url)),
                  highlight=False, soft_wrap=True)


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
        Console(stderr=True).print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
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
        Console(stderr=True).print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
        return 1
    finally:
        app.close()
    return code
