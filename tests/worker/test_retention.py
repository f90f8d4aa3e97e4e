"""Retention by count, as maintenance enforces it (CONVEYOR_KEEP_COMPLETED / _DEAD)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import ConfigError, Conveyor, FakeClock, JobContext, Retry, Settings
from conveyor.retention import KeepCounts

pytestmark = pytest.mark.anyio


async def test_maintenance_keeps_the_newest_jobs_per_queue_and_task(
        db_url: str, clock: FakeClock) -> None:
    settings = Settings(keep_completed="3,emails=1,task:report=2", keep_dead="1")
    app = Conveyor(db_url, settings=settings, clock=clock)

    @app.task(retry=Retry(attempts=1))
    async def work(ctx: JobContext, payload: Any) -> None:
        if payload.get("fail"):
            raise ValueError("no")

    @app.task(queue="emails")
    async def mail(ctx: JobContext, payload: Any) -> None: ...

    @app.task(queue="reports")
    async def report(ctx: JobContext, payload: Any) -> None: ...

    worker = app.worker(worker_id="worker-keep")
    try:
        ids: dict[str, list[str]] = {"work": [], "dead": [], "mail": [], "report": []}
        for i in range(5):
            ids["work"].append(work.enqueue({"i": i}).id)
            ids["dead"].append(work.enqueue({"fail": True}).id)
            ids["mail"].append(mail.enqueue().id)
            ids["report"].append(report.enqueue().id)
            await worker.run_until_idle()
            clock.advance(1)
        assert worker.maintenance is not None  # it ran in every round of run_until_idle
        await worker.maintenance.run_once()

        def alive(kind: str) -> list[bool]:
            return [_exists(app, job_id) for job_id in ids[kind]]

        assert alive("work") == [False, False, True, True, True]
        assert alive("dead") == [False] * 4 + [True]
        assert alive("mail") == [False] * 4 + [True]
        assert alive("report") == [False, False, False, True, True]
        assert (await worker.maintenance.run_once())["pruned"] == 0
    finally:
        worker.close()
        app.close()


def _exists(app: Conveyor, job_id: str) -> bool:
    from conveyor import JobNotFound

    try:
        app.get(job_id)
    except JobNotFound:
        return False
    return True


def test_keep_counts_parse_and_refuse_bad_specs() -> None:
    keep = KeepCounts.parse(" 100, emails=5 ,task:a.b=0", "X")
    assert (keep.default, keep.queues, keep.tasks) == (100, {"emails": 5}, {"a.b": 0})
    assert keep.for_queue("emails") == 5 and keep.for_queue("other") == 100
    assert KeepCounts.parse("", "X").empty
    for spec in ("lots", "emails=-1", "emails=", "=x"):
        with pytest.raises(ConfigError, match="CONVEYOR_KEEP_DEAD"):
            Settings(keep_dead=spec)
