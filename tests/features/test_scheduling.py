"""A running worker starts a delayed job and a retry on time, not at its next poll."""

import asyncio
import time

from conveyor import Conveyor, Retry


def test_delayed_job_and_retry_start_on_time(tmp_path):
    app = Conveyor(f"sqlite:///{tmp_path}/d.db")
    starts: dict[str, list[float]] = {}

    @app.task(retry=Retry(attempts=2, backoff="fixed", base=0.3))
    async def job(ctx, payload):
        starts.setdefault(payload["k"], []).append(time.monotonic())
        if payload.get("fail") and ctx.attempt == 1:
            raise RuntimeError("first attempt fails")

    async def scenario():
        worker = app.worker(concurrency=2, poll_interval=30)  # polling would take 30 s
        running = asyncio.create_task(worker.run(install_signals=False))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        job.enqueue({"k": "delayed"}, delay=0.4)
        job.enqueue({"k": "retry", "fail": True})
        for _ in range(300):
            if len(starts.get("retry", [])) == 2 and starts.get("delayed"):
                break
            await asyncio.sleep(0.01)
        worker.stop()
        await running
        return t0

    t0 = asyncio.run(scenario())
    assert 0.39 <= starts["delayed"][0] - t0 < 1.5
    first, second = starts["retry"]
    assert 0.29 <= second - first < 1.5
    app.close()
