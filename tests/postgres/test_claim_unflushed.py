"""An unlimited claim commits without waiting for its WAL flush (queries.unflushed): each
claim statement sets synchronous_commit off for its own transaction, a settle does not, and
neither setting outlives its transaction on the pooled connection."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.postgres import handoff
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.store import PostgresStore

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

CLAIMS = {
    "CLAIM_QUEUE": (q.CLAIM_QUEUE, {"queue": "q"}),
    "CLAIM_QUEUE_AFTER": (q.CLAIM_QUEUE_AFTER, {
        "queue": "q", "after_priority": 0, "after_run_at": 0.0, "after_id": ""}),
    "CLAIM_QUEUES": (q.CLAIM_QUEUES, {"queues": ["q"]}),
    "CLAIM_QUEUES_AFTER": (q.CLAIM_QUEUES_AFTER, {
        "queues": ["q"], "after_priorities": [0], "after_run_ats": [0.0], "after_ids": [""]}),
    "CLAIM_ANY": (q.CLAIM_ANY, {}),
}


async def setting_after(store: PostgresStore, template: str, params: dict[str, Any]
                        ) -> tuple[int, str, str]:
    """Rows the statement returned, synchronous_commit in its transaction after it, and on
    the same connection after the commit."""
    async with store.pools.connection() as conn:
        async with conn.transaction():
            rows = await store._fetch(conn, template, params)
            inside = (await (await conn.execute("SHOW synchronous_commit")).fetchone())[0]
        after = (await (await conn.execute("SHOW synchronous_commit")).fetchone())[0]
    return len(rows), inside, after


def claim_params(**extra: Any) -> dict[str, Any]:
    return {"token": 7, "now": None, "limit": 1, "lease_for": 30.0, "worker_id": "w1",
            "host": "h", **extra}


@pytest.mark.parametrize("name", list(CLAIMS))
async def test_a_claim_commits_without_its_flush(store: PostgresStore, name: str) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="t", queue="q", payload=b"{}")])
    template, extra = CLAIMS[name]
    assert await setting_after(store, template, claim_params(**extra)) == (1, "off", "on")


async def test_an_offering_claim_commits_without_its_flush(store: PostgresStore) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="t", queue="q", payload=b"{}")])
    params = claim_params(queue="q", offer=2, offer_for=5.0, listener_pid=0,
                          offer_queues=["q"])
    assert await setting_after(store, handoff.OFFERING[q.CLAIM_QUEUE], params) == \
        (1, "off", "on")


async def test_a_settle_still_waits_for_its_flush(store: PostgresStore) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="t", queue="q", payload=b"{}")])
    [job] = await store.claim(["q"], "w1", 1, 30.0)
    async with store.pools.connection() as conn, conn.transaction():
        rows = await store._fetch(conn, q.COMPLETE, {
            "ids": [job.id], "tokens": [job.lease.token], "results": [None],
            "now": None, "progress": [None]})
        inside = (await (await conn.execute("SHOW synchronous_commit")).fetchone())[0]
    assert inside == "on"
    assert rows  # the settle applied
