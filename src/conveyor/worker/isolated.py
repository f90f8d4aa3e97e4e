"""isolation="process": run a sync task in a child process that can be killed.

A thread cannot be stopped, so a sync task past its timeout would keep running. A task
declared `isolation="process"` runs in a fresh child (multiprocessing's forkserver: no
threads are forked) that imports the task's module, runs the function and sends back the
result, progress and errors over a pipe. Past its timeout the child is killed.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..context import JobContext
from .tracking import Meter, child_usage

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..task import Task


class IsolatedTaskError(Exception):
    """The task raised in its child process; the message carries the child's error."""

    def __init__(self, type_name: str, message: str, child_traceback: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.child_traceback = child_traceback


class _ChildContext:
    """What a task sees of JobContext inside the child process."""

    def __init__(self, info: dict[str, Any], conn: Connection, app: Conveyor) -> None:
        self.job_id: str = info["job_id"]
        self.task: str = info["task"]
        self.queue: str = info["queue"]
        self.attempt: int = info["attempt"]
        self.tenant: str | None = info["tenant"]
        self.correlation_id: str | None = info["correlation_id"]
        self._conn = conn
        self._app = app
        self.cancelled = False

    def progress(self, percent: float, step: str | None = None) -> None:
        self._conn.send(("progress", float(percent), step))

    def effect_key(self, name: str) -> str:
        return JobContext.effect_key(self, name)  # type: ignore[arg-type]

    def enqueue(self, task: str, payload: Any = None, **options: Any) -> Any:
        options.setdefault("tenant", self.tenant)
        options.setdefault("correlation_id", self.correlation_id)
        options.setdefault("parent_id", self.job_id)
        return self._app.enqueue(task, payload, **options)


def _child_main(module: str, name: str, payload: Any, info: dict[str, Any],
                conn: Connection) -> None:
    try:
        task = getattr(importlib.import_module(module), name)
        ctx = _ChildContext(info, conn, task.app)
        result = task.fn(ctx, task.load(payload))
        conn.send(("ok", result, *child_usage()))
    except BaseException as exc:  # report everything; the parent decides
        conn.send(("error", type(exc).__name__, str(exc), traceback.format_exc(),
                   *child_usage()))
    finally:
        conn.close()


async def run_isolated(app: Conveyor, task: Task, ctx: JobContext, payload: Any,
                       meter: Meter | None = None) -> Any:
    """Run `task` in a child process; kill it past the task's timeout. `meter` gets the
    child's CPU time and peak RSS (attempt history)."""
    module, name = _locate(task)
    mp = multiprocessing.get_context("forkserver")
    receive, send = mp.Pipe(duplex=False)
    info = {"job_id": ctx.job_id, "task": ctx.task, "queue": ctx.queue, "attempt": ctx.attempt,
            "tenant": ctx.tenant, "correlation_id": ctx.correlation_id}
    json_payload = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else payload
    process = mp.Process(target=_child_main, args=(module, name, json_payload, info, send),
                         daemon=True)
    process.start()
    send.close()
    try:
        async with asyncio.timeout(task.timeout):
            return await _receive(receive, ctx, meter)
    except (TimeoutError, asyncio.CancelledError):
        process.kill()
        raise
    finally:
        receive.close()
        await asyncio.get_running_loop().run_in_executor(None, process.join, 5)


async def _receive(conn: Connection, ctx: JobContext, meter: Meter | None) -> Any:
    loop = asyncio.get_running_loop()
    while True:
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(conn.fileno(), _resolve, ready)
        try:
            await ready
        finally:
            loop.remove_reader(conn.fileno())
        try:
            message = conn.recv()
        except EOFError:
            raise IsolatedTaskError("ChildDied", "the task's process exited without a "
                                    "result (killed, or crashed)", "") from None
        if message[0] == "progress":
            ctx.progress(message[1], message[2])
        elif message[0] == "ok":
            _measured(meter, message[2:])
            return message[1]
        else:
            _measured(meter, message[4:])
            raise IsolatedTaskError(message[1], message[2], message[3])


def _measured(meter: Meter | None, usage: tuple[Any, ...]) -> None:
    if meter is not None and len(usage) == 2:
        meter.cpu, meter.rss = float(usage[0]), usage[1]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _locate(task: Task) -> tuple[str, str]:
    """The module and attribute under which the Task object can be imported."""
    module, name = task.fn.__module__, task.fn.__qualname__
    if module == "__main__" or "<" in name:
        raise RuntimeError(f"task {task.name!r} with isolation='process' must be defined at "
                           "module level in an importable module")
    return module, name
