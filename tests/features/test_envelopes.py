"""The envelope `enqueue` returns is the stored job, field for field, on the embedded store:
one job or a batch, sync or async, with every option a job can carry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel

from conveyor import Conveyor, Sensitive

OPTIONS: dict[str, Any] = {
    "queue": "mail", "priority": 3, "delay": 60.0, "ttl": 600.0, "tenant": "acme",
    "correlation_id": "corr-1", "idempotency_key": "key-1", "max_attempts": 5,
    "unique_for": 30.0}


class Secret(BaseModel):
    n: int
    pin: Annotated[str, Sensitive]


def same_as_stored(app: Conveyor, jobs: list[Any]) -> None:
    for job in jobs:
        stored = app.get(job.id, tenant=job.tenant)
        assert job.to_dict() == stored.to_dict()
        assert job.sensitive == stored.sensitive


def test_envelopes_are_the_stored_jobs(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/e.db")
    app.task(name="send")(lambda ctx, payload: None)
    app.task(name="secret", schema=Secret)(lambda ctx, payload: None)
    try:
        parent = app.enqueue("send", {"n": 0})
        secret = app.enqueue("secret", {"n": 5, "pin": "1234"})
        child = app.enqueue("send", {"n": 1}, parent_id=parent.id, **OPTIONS)
        batch = app.enqueue_many([("send", {"n": 2}),
                                  {"task": "send", "payload": {"n": 3}, "parent_id": parent.id,
                                   **OPTIONS, "idempotency_key": "key-2"}])
        later = asyncio.run(app.enqueue_async("send", {"n": 4}, **{**OPTIONS,
                                                                   "idempotency_key": None}))
        same_as_stored(app, [parent, child, *batch, later, secret])
        assert secret.sensitive == {"pin": True}
        assert (child.parent_id, child.correlation_id, child.tenant) == (
            parent.id, "corr-1", "acme")
        assert child.expires_at == child.created_at + 600.0  # type: ignore[operator]
        assert batch[1].parent_id == parent.id and batch[0].batch_id == batch[1].batch_id
    finally:
        app.close()
