"""The app real `conveyor worker --app hookapp:app` subprocesses load in the hook and job-log
system tests. Every hook appends `EVENT JOB_ID ATTEMPT PID` to SYS_HOOK_LOG (O_APPEND, one
write per line), so the test sees which process fired what, and how often."""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import BaseModel

from conveyor import Conveyor, JobContext, Retry, Sensitive
from conveyor.hooks import EVENTS, HookEvent


class Signup(BaseModel):
    user: str
    email: Annotated[str, Sensitive]


def write_line(event: HookEvent) -> None:
    path = os.environ.get("SYS_HOOK_LOG")
    if not path:
        return
    line = f"{event.event} {event.job_id} {event.attempt} {os.getpid()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def make_app(url: str | None = None) -> Conveyor:
    app = Conveyor(url)
    for name in EVENTS:
        app.on(name)(write_line)

    @app.task(schema=Signup, retry=Retry(attempts=2, backoff="fixed", base=0.1, jitter=0))
    def welcome(ctx: JobContext, payload: Signup) -> str:
        ctx.logger.info("sending the welcome mail to %s", payload.email,
                        extra={"recipient": payload.email, "user": payload.user})
        if payload.user.startswith("flaky") and ctx.attempt == 1:
            raise ConnectionError(f"mail server refused {payload.email}")
        if payload.user.startswith("bad"):
            raise ValueError(f"no such mailbox: {payload.email!r}")
        return payload.user

    @app.task
    async def plain(ctx: JobContext, payload: dict[str, Any]) -> int:
        return int(payload["n"])

    return app


app = make_app()
