"""Small builders shared by the conformance tests. Times are explicit epoch seconds."""

from __future__ import annotations

from typing import Any

from conveyor.job import ClaimedJob, ErrorInfo, NewJob, WorkerInfo, new_id
from conveyor.store.base import Store

T0 = 1_700_000_000.0
PAYLOAD = b'{"a":1}'
LEASE = 30.0


def new_job(**fields: Any) -> NewJob:
    values: dict[str, Any] = {"id": new_id(), "task": "demo.task", "queue": "default",
                              "payload": PAYLOAD}
    values.update(fields)
    return NewJob(**values)


async def enqueue(store: Store, now: float = T0, **fields: Any) -> str:
    [result] = await store.enqueue_many([new_job(**fields)], now=now)
    return result.id


async def claim_one(store: Store, now: float = T0, queues: list[str] | None = None,
                    worker_id: str = "worker-1", lease_for: float = LEASE) -> ClaimedJob:
    jobs = await store.claim(queues, worker_id, 1, lease_for, now=now)
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]


async def claim_ids(store: Store, now: float = T0, limit: int = 100,
                    queues: list[str] | None = None) -> list[str]:
    return [j.id for j in await store.claim(queues, "worker-1", limit, LEASE, now=now)]


def error(attempt: int, message: str = "boom", worker: str = "worker-1",
          at: float = T0) -> ErrorInfo:
    return ErrorInfo(attempt=attempt, type="ValueError", message=message,
                     traceback="Traceback (most recent call last):\nValueError: boom",
                     worker=worker, host="host-a", at=at)


def worker_info(worker_id: str = "worker-1", queues: tuple[str, ...] = ("default",)
                ) -> WorkerInfo:
    return WorkerInfo(id=worker_id, host="host-a", pid=4242, queues=queues, concurrency=4)


async def rows_in(store: Store, table: str) -> int:
    """How many rows one of the store's tables holds, read behind the store's back (for
    tests of what a write left where; no store read folds or touches anything first)."""
    if store.__class__.__name__ == "SQLiteStore":
        with store.db.read() as conn:  # type: ignore[attr-defined]
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    [(count,)] = await store._one(f"SELECT count(*) FROM {{schema}}.{table}")  # type: ignore[attr-defined]
    return int(count)


async def limit_times(store: Store) -> dict[tuple[str, str], float]:
    """Each stored limit's updated_at, read behind the store's back (when was it written)."""
    statement = "SELECT kind, name, updated_at FROM {schema}.conveyor_limits"
    if store.__class__.__name__ == "SQLiteStore":
        with store.db.read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(statement.replace("{schema}.", "")).fetchall()
    else:
        rows = await store._one(statement)  # type: ignore[attr-defined]
    return {(kind, name): float(at) for kind, name, at in rows}
