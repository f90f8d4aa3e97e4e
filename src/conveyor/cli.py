"""The `conveyor` command. Each command loads Settings, builds the app, calls one method.

Exit status (SPEC section 3): 0 on success, 1 on a job or input error (one line on stderr),
2 on a usage error (a bad option, a missing argument, an --app that cannot be found).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sqlite3
import sys
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.text import Text

from .app import Conveyor, sequence_of
from .cli_search import run_search
from .cli_views import count_text, jobs_table, print_job, print_stats, state_text
from .errors import ConveyorError, SearchRefused
from .job import JobFilter, parse_states
from .lookup import resolve_sync
from .observability.logs import configure_logging
from .search import Search

cli = typer.Typer(name="conveyor", help="Durable background jobs: workers, queues and tools.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
keys_cli = typer.Typer(help="Encryption keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


def make_console(stderr: bool = False) -> Console:
    """A console for output; when it is piped (not a terminal) tables are not squeezed into
    80 columns, so ids stay whole for grep and scripts."""
    console = Console(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(stderr=stderr, width=200)
    return console


out = make_console()
err = make_console(stderr=True)

AppOption = Annotated[str | None, typer.Option("--app", help="package.module:attribute of your "
                                               "Conveyor app (default: CONVEYOR_APP)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]



def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit with `code` (1: job or input error, 2: usage error)."""
    print_error(message)
    raise typer.Exit(code)


def print_error(message: str) -> None:
    line = " ".join(str(message).split())  # one line, whatever the message held
    err.print(Text.assemble(("error:", "red"), " ", line), highlight=False, soft_wrap=True)


def load_app(spec: str | None) -> Conveyor:
    """The app named by --app or CONVEYOR_APP, else a bare one on CONVEYOR_URL; closed when
    the command ends (its connections, and the sync door's thread for PostgreSQL).

    The attribute is a Conveyor, or a function without arguments that returns one
    (`--app conveyor.demo:create_app`)."""
    app = _find_app(spec)
    atexit.register(app.close)
    return app


def _find_app(spec: str | None) -> Conveyor:
    spec = spec or os.environ.get("CONVEYOR_APP")
    if not spec:
        return Conveyor()
    module_name, _, attr = spec.partition(":")
    if not module_name:
        fail(f"--app {spec!r} must look like package.module:attribute", 2)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        fail(f"cannot import {module_name!r} for --app: {exc}", 2)
    except Exception as exc:  # their module raised while importing: show what, not a trace
        fail(f"importing {module_name!r} for --app failed: {type(exc).__name__}: {exc}")
    found = getattr(module, attr or "app", None)
    if callable(found) and not isinstance(found, Conveyor):
        try:
            found = found()
        except ConveyorError:
            raise
        except Exception as exc:
            fail(f"{spec}() failed: {type(exc).__name__}: {exc}")
    if not isinstance(found, Conveyor):
        fail(f"{spec!r} is not a Conveyor app (found {type(found).__name__})", 2)
    return found


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


# --- commands ---------------------------------------------------------------------------------


WORKER_HELP = (
    "Run jobs until SIGTERM or Ctrl-C.\n\n"
    "Priority between queues is by reserved slots, not by order. `--queues "
    "critical:10,emails:5,ai:2` runs three workers in this process with 10, 5 and 2 slots "
    "of their own: no queue borrows another's idle slots, no backlog takes another's, and "
    "no counted queue is claimed before another. Queues named without slots share one pool "
    "of --concurrency slots, where jobs start by job priority (higher first), then oldest "
    "first, whatever their queue. Cluster-wide limits: `conveyor queue set`.")


@cli.command(help=WORKER_HELP)
def worker(app: AppOption = None,
           queues: Annotated[str | None, typer.Option(help=(
               "comma-separated queues, e.g. emails,sms; NAME:SLOTS gives a queue slots of "
               "its own in this process (critical:10,emails:5,ai:2); '*' for every queue "
               "(default: CONVEYOR_QUEUES, else the queues of the app's tasks)"))] = None,
           concurrency: Annotated[int | None, typer.Option(help="job slots per process")] = None,
           processes: Annotated[int, typer.Option("--processes", "-p",
                                                  help="worker processes")] = 1,
           grace: Annotated[float | None, typer.Option(help="seconds running jobs get to "
                                                       "finish on SIGTERM")] = None) -> None:
    """Run jobs until SIGTERM or Ctrl-C (the help text: WORKER_HELP)."""
    conveyor = load_app(app)
    configure_logging(conveyor.settings)
    if processes > 1:
        from .worker.supervisor import Supervisor, child_command

        command = child_command(sys.argv[1:])
        raise typer.Exit(Supervisor(command, processes,
                                    grace=grace or conveyor.settings.grace).run())
    if not len(conveyor.registry):
        logging.getLogger("conveyor").warning(
            "this app has no tasks registered: pass --app package.module:app")
    try:
        from .worker.groups import WorkerGroup, parse_queues
        from .worker.loop import run as run_loop

        groups = parse_queues(queues if queues is not None else conveyor.settings.queues)
        if len(groups) == 1:  # one pool of slots (edge 8: the tasks' queues by default)
            only = groups[0]
            w = conveyor.worker(queues=sequence_of(",".join(only.queues or ())),
                                concurrency=only.slots or concurrency, grace=grace)
            run_loop(w.run())
        else:
            group = WorkerGroup.build(conveyor, groups, concurrency=concurrency, grace=grace)
            run_loop(group.run())
    except ConveyorError as exc:
        fail(str(exc))
    # Jobs still running in threads past the grace period were given back to the queue; do
    # not wait for those threads (the interpreter would, at exit).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@cli.command()
def enqueue(task: str,
            payload: Annotated[str, typer.Option(help="the payload, as JSON")] = "{}",
            app: AppOption = None,
            queue: Annotated[str | None, typer.Option()] = None,
            idempotency_key: Annotated[str | None, typer.Option()] = None,
            delay: Annotated[float | None, typer.Option(help="seconds")] = None,
            tenant: Annotated[str | None, typer.Option()] = None,
            priority: Annotated[int | None, typer.Option()] = None,
            correlation_id: Annotated[str | None, typer.Option()] = None,
            ttl: Annotated[float | None, typer.Option(help="seconds it may wait to start "
                                                      "before it expires")] = None,
            json_out: JsonOption = False) -> None:
    """Enqueue one job (with --app, the payload is checked against the task's schema)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        fail(f"--payload is not valid JSON: {exc}")
    conveyor = load_app(app)
    options = {"ttl": ttl} if ttl is not None else {}  # None would drop the task's own TTL
    try:
        job = conveyor.enqueue(task, body, queue=queue, idempotency_key=idempotency_key,
                               delay=delay, tenant=tenant, priority=priority,
                               correlation_id=correlation_id, **options)
    except ConveyorError as exc:
        fail(str(exc))
    if json_out:
        print_json({"id": job.id, "state": str(job.state), "duplicate": job.duplicate,
                    "dropped": job.dropped})
        return
    note = " (duplicate: the existing job)" if job.duplicate else ""
    if job.dropped:  # limits/keys.py: the task's key limit has strategy "drop"
        note = " (dropped: its key is at its limit; nothing was stored)"
    out.print(Text.assemble(job.id, " ", state_text(job.state), note))


@cli.command("jobs")
def list_jobs(app: AppOption = None,
              state: Annotated[str | None, typer.Option(
                  help="comma-separated states; retrying: waiting to retry")] = None,
              queue: Annotated[str | None, typer.Option()] = None,
              task: Annotated[str | None, typer.Option()] = None,
              limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
              json_out: JsonOption = False,
              task_contains: Annotated[str | None, typer.Option(
                  help="tasks whose name holds this, any case")] = None,
              queue_contains: Annotated[str | None, typer.Option(
                  help="queues whose name holds this, any case")] = None,
              payload: Annotated[str | None, typer.Option(
                  help="field:value, e.g. order_id:ord-1 (not a Sensitive field)")] = None,
              error: Annotated[str | None, typer.Option(
                  help="text of the last error, any case")] = None,
              scan: Annotated[int | None, typer.Option(
                  min=1, max=10000, help="jobs a --payload or --error search reads "
                  "(default 1000)")] = None,
              after: Annotated[str | None, typer.Option(
                  help="go on after this job id (what a bounded search said)")] = None
              ) -> None:
    """List jobs, newest first; find them by name fragment, payload field or error text."""
    try:
        states, retrying = parse_states(state)
        search = Search.parse(task_contains, queue_contains, payload, error, scan)
    except SearchRefused as exc:
        fail(f"--{exc.field.replace('_', '-')}: {exc}", 2)
    except ValueError as exc:
        fail(f"--{exc}", 2)
    conveyor = load_app(app)
    where = JobFilter(states=states, queue=queue, task=task, retrying=retrying)
    if not search.empty or after:
        try:
            return run_search(conveyor, where, search, after, limit, json_out, out, err,
                              print_json)
        except SearchRefused as exc:
            fail(str(exc))
    jobs = conveyor.list_jobs(where, limit=limit, redacted=True)
    if json_out:
        print_json([j.to_dict() for j in jobs])
        return
    cap = 10_000
    total = (len(jobs) if len(jobs) < limit
             else conveyor.call(lambda store: store.count_jobs(where, cap)))
    out.print(jobs_table(jobs, out.width, title=count_text(len(jobs), total, cap)))


@cli.command("job")
def show_job(job_id: str, app: AppOption = None, json_out: JsonOption = False) -> None:
    """Show one job: its envelope, progress, result and errors. JOB_ID may be any unique
    start or end of the id (at least 4 characters), such as the dashboard's `…9c2f41ab`."""
    conveyor = load_app(app)
    try:
        job = conveyor.get(resolve_sync(conveyor, job_id), redacted=True)
    except ConveyorError as exc:
        fail(str(exc))
    held = conveyor.limits.holding(job)  # flow control: which limit holds it back
    if json_out:
        print_json({**job.to_dict(), "held_back_by": held})
        return
    print_job(out, job)
    for reason in held:
        out.print(Text.assemble(("held back by ", "yellow"), reason), highlight=False)


@cli.command()
def retry(job_id: Annotated[str | None, typer.Argument()] = None, app: AppOption = None,
          dead: Annotated[bool, typer.Option("--dead", help="retry every dead job")] = False,
          queue: Annotated[str | None, typer.Option(help="with --dead: one queue")] = None
          ) -> None:
    """Run a dead or failed job again (or every dead job with --dead)."""
    if bool(job_id) == dead:
        fail("give a job id or --dead", 2)
    conveyor = load_app(app)
    try:
        if dead:
            total = 0
            while (n := conveyor.retry_dead(queue)):
                total += n
            out.print(f"requeued {total} dead jobs")
        else:
            assert job_id is not None
            job = conveyor.retry(resolve_sync(conveyor, job_id))
            out.print(Text.assemble(job.id, " ", state_text(job.state)))
    except ConveyorError as exc:
        fail(str(exc))


@cli.command()
def cancel(job_id: str, app: AppOption = None) -> None:
    """Cancel a job (a running one is asked to stop)."""
    conveyor = load_app(app)
    try:
        job = conveyor.cancel(resolve_sync(conveyor, job_id))
    except ConveyorError as exc:
        fail(str(exc))
    note = " (cancel requested; it stops at its next check)" if job.state == "running" else ""
    out.print(Text.assemble(job.id, " ", state_text(job.state), note))


@cli.command()
def stats(app: AppOption = None, json_out: JsonOption = False,
          by: Annotated[str | None, typer.Option(help="'task': per task and queue from the "
                                                 "attempt history")] = None,
          span: Annotated[str, typer.Option("--range", help="with --by: 1h, 24h, 7d, "
                                            "30d ...")] = "24h",
          tenant: Annotated[str | None, typer.Option(help="with --by: one tenant")] = None
          ) -> None:
    """Counts by state, queue and task; durations; failure and retry-success rates."""
    if by is not None:
        if by != "task":
            fail("--by takes 'task'", 2)
        return cli_analytics.stats_by_task(app, span, tenant, json_out)
    conveyor = load_app(app)
    s = conveyor.stats()
    if json_out:
        print_json({"by_state": s.by_state, "by_queue": s.by_queue, "by_task": s.by_task,
                    "durations": s.durations, "failure_rate": s.failure_rate,
                    "retry_success_rate": s.retry_success_rate,
                    "completed_last_minute": s.completed_last_minute})
        return
    print_stats(out, s)


@cli.command("clean-expired")
def clean_expired(app: AppOption = None) -> None:
    """Move jobs past their TTL to dead now (workers also do it on their own)."""
    n = load_app(app).clean_expired()
    out.print(f"expired {n} jobs")


@cli.command()
def prune(app: AppOption = None) -> None:
    """Delete finished jobs past their retention now."""
    n = load_app(app).prune()
    out.print(f"pruned {n} jobs")


@cli.command()
def migrate(app: AppOption = None) -> None:
    """Create or upgrade the store's schema."""
    conveyor = Conveyor(settings=load_app(app).settings, auto_migrate=False)
    try:
        applied = conveyor.migrate()
        version = conveyor.call(lambda s: s.schema_version())
    except ConveyorError as exc:
        fail(str(exc))
    out.print(f"schema at version {version} ({applied} migration(s) applied)")


@keys_cli.command("rotate")
def keys_rotate(app: AppOption = None) -> None:
    """Re-encrypt stored payloads, results and errors with the newest key of
    CONVEYOR_ENCRYPTION_KEYS."""
    try:
        from .keys import rotate_keys
    except ImportError:
        fail("key rotation is not available in this version of Conveyor")
    conveyor = load_app(app)
    try:
        done = rotate_keys(conveyor)
    except ConveyorError as exc:
        fail(str(exc))
    out.print(f"re-encrypted {done.changed} jobs (payloads, results and errors)")
    if done.raced:
        out.print(f"{done.raced} jobs changed while it ran (or were deleted): run it again "
                  "to cover them")


@cli.command()
def serve(app: AppOption = None,
          host: Annotated[str | None, typer.Option(help="address to listen on (default "
                                                   "127.0.0.1; others need CONVEYOR_API_TOKENS)")
                          ] = None,
          port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
          with_worker: Annotated[bool, typer.Option("--with-worker", help="also run a worker "
                                                    "in this process")] = False,
          behind_tls: Annotated[bool, typer.Option("--behind-tls", help="browsers reach it "
                                                   "through HTTPS (a TLS proxy): Secure "
                                                   "cookies (CONVEYOR_BEHIND_TLS)")] = False,
          ) -> None:
    """Run the HTTP API, the live dashboard and /metrics."""
    try:
        from .web.server import serve as run_server
    except ImportError as exc:
        fail(f"the web server needs its extra: pip install 'conveyor-jobs[web]' ({exc})")
    conveyor = load_app(app)
    if behind_tls:
        conveyor.settings = conveyor.settings.with_(behind_tls=True)
    configure_logging(conveyor.settings)
    try:
        raise typer.Exit(run_server(conveyor, host=host, port=port, with_worker=with_worker))
    except ConveyorError as exc:
        fail(str(exc))


@cli.command()
def demo(db: Annotated[str, typer.Option(help="SQLite file for the demo")] = "conveyor-demo.db",
         seconds: Annotated[float | None, typer.Option(help="stop after this long "
                                                       "(default: until Ctrl-C)")] = None,
         port: Annotated[int, typer.Option(help="dashboard port on 127.0.0.1 (a free one "
                                           "if taken)")] = 8000,
         ) -> None:
    """The main job on the embedded default: API, dashboard, a worker and example jobs on
    SQLite, live."""
    from .demo import run_demo

    raise typer.Exit(run_demo(db, seconds, port))


from .cli_cron import cron_cli  # noqa: E402  (it uses the helpers above)
from .cli_limits import queue_cli, queues, task_cli  # noqa: E402  (they use the helpers above)

cli.command("queues")(queues)
cli.add_typer(cron_cli, name="cron")
cli.add_typer(queue_cli, name="queue")
cli.add_typer(task_cli, name="task")


def main() -> None:
    """The console script. Errors the commands did not catch still end in one line and 1."""
    try:
        cli()
    except ConveyorError as exc:  # a setting or the store (CONVEYOR_URL, CONVEYOR_LEASE ...)
        print_error(str(exc))
        sys.exit(1)
    except (sqlite3.Error, OSError) as exc:
        print_error(f"the store failed: {type(exc).__name__}: {exc}")
        sys.exit(1)


from . import cli_analytics  # noqa: E402  (its commands register on `cli`)

if __name__ == "__main__":
    main()
