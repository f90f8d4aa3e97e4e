"""Priority between queues, as README ("Worker types") and `conveyor worker --help` state it:
each `queue:N` entry has N slots of its own that no other queue borrows, whatever the
backlogs; queues named without a count share one pool, where jobs start by job priority,
then oldest first, whatever their queue."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Conveyor, FakeClock, JobContext
from conveyor.worker.groups import WorkerGroup, parse_queues

pytestmark = pytest.mark.anyio


def _tasks(app: Conveyor, ran: list[str]) -> None:
    @app.task(queue="critical")
    async def page(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(payload["n"])

    @app.task(queue="emails")
    async def mail(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(payload["n"])


async def test_each_counted_queue_has_its_own_slots_and_none_borrows(app: Conveyor) -> None:
    ran: list[str] = []
    _tasks(app, ran)
    for n in range(5):
        app.enqueue("mail", {"n": f"mail-{n}"})
    group = WorkerGroup.build(app, parse_queues("critical:2,emails:1"), concurrency=10)
    critical, emails = group.workers
    try:
        assert (critical.queues, critical.concurrency) == (("critical",), 2)
        assert (emails.queues, emails.concurrency) == (("emails",), 1)
        assert await critical.run_once() == 0  # idle slots never take the emails backlog
        assert await emails.run_once() == 1  # one slot of its own, the others idle or not
        for n in range(3):
            app.enqueue("page", {"n": f"page-{n}"})
        assert await critical.run_once() == 2  # the emails backlog takes none of its slots
        assert ran == ["mail-0", "page-0", "page-1"]
    finally:
        for worker in group.workers:
            worker.close()


async def test_a_shared_pool_starts_by_job_priority_then_age_whatever_the_queue(
        app: Conveyor, clock: FakeClock) -> None:
    ran: list[str] = []
    _tasks(app, ran)
    app.enqueue("mail", {"n": "old mail"})
    clock.advance(1)
    app.enqueue("page", {"n": "newer page"})
    clock.advance(1)
    app.enqueue("mail", {"n": "urgent mail"}, priority=10)
    [pool] = parse_queues("critical,emails")  # no counts: one pool, no queue outranks
    assert pool.queues == ("critical", "emails") and pool.slots is None
    worker = app.worker(queues=list(pool.queues), concurrency=1)
    try:
        assert await worker.run_until_idle() == 3
    finally:
        worker.close()
    assert ran == ["urgent mail", "old mail", "newer page"]
