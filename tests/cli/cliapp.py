"""The app the CLI tests load with `--app cliapp:make_app` (tests/cli is on PYTHONPATH)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel

from conveyor import Conveyor, JobContext, KeyLimit, Retry, Sensitive
from conveyor.clock import Clock


class Signup(BaseModel):
    user_id: str
    password_hint: Annotated[str, Sensitive]


def make_app(url: str | None = None, clock: Clock | None = None) -> Conveyor:
    """A fresh app on `url`, else CONVEYOR_URL."""
    app = Conveyor(url, clock=clock)

    @app.task(queue="emails")
    def send_welcome(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"sent_to": payload.get("user_id")}

    @app.task(queue="hooks", retry=Retry(attempts=1))
    def always_fails(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("the endpoint answered 502")

    @app.task(queue="hooks", retry=Retry(attempts=3, backoff="fixed", base=600, jitter=0))
    def call_partner(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise ConnectionError("the partner API is down")

    @app.task(queue="emails", schema=Signup)
    def signup(ctx: JobContext, payload: Signup) -> dict[str, Any]:
        return {"user": payload.user_id}

    # a key per customer, no caps in code: `conveyor task set sync_customer --key-...` sets them
    @app.task(queue="sync", key=KeyLimit("payload.customer"))
    def sync_customer(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    return app


app = make_app()  # what users write; nothing is opened until it is used
not_an_app = "just a string"
