"""The demo's example tasks, its app, and the stream of jobs its producer enqueues."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, Field

from ..app import Conveyor
from ..codec import Sensitive
from ..context import JobContext
from ..errors import ConveyorError
from ..job import Job
from ..outcome import Discard
from ..retry import Retry

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
