"""Conveyor never draws from the `random` module's shared generator (conveyor/_rng.py): an
application that seeds it for reproducible runs, or a property-based test drawing from it while
a worker runs in another thread (the schemathesis fuzz test did, and Hypothesis refused the
draw), sees its sequence untouched by ids, claim tokens, poll jitter and retry backoff. The
private generator is reseeded in a forked child like the shared one: two children never
draw the same ids."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from conveyor import Conveyor, JobContext, JobState, Retry, Settings, _rng
from conveyor.job import new_id

pytestmark = pytest.mark.anyio


async def test_a_worker_run_leaves_the_shared_generator_alone(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}", settings=Settings())
    tries: dict[str, int] = {}

    @app.task(retry=Retry(attempts=2, backoff="fixed", base=0.01, jitter=0.5))
    async def flaky(ctx: JobContext, n: int) -> None:
        tries[ctx.job_id] = tries.get(ctx.job_id, 0) + 1
        if tries[ctx.job_id] == 1:
            raise RuntimeError("first try fails: the retry's delay is jittered")

    random.seed(1234)
    before = random.getstate()
    jobs = [await app.enqueue_async(flaky, {"n": n}) for n in range(20)]
    worker = app.worker(concurrency=4, worker_id="rng", poll_interval=0.01)
    running = asyncio.ensure_future(worker.run(install_signals=False))
    try:
        for _ in range(500):
            states = {(await app.get_async(job.id)).state for job in jobs}
            if states == {JobState.COMPLETED}:
                break
            await asyncio.sleep(0.02)
        assert states == {JobState.COMPLETED}
        assert sorted(tries.values()) == [2] * 20
    finally:
        worker.stop()
        await running
        worker.close()
        app.close()
    assert random.getstate() == before


def test_a_forked_child_draws_its_own_ids_and_tokens() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id and token, then out without pytest's teardown
        os.write(write, f"{new_id()} {_rng.getrandbits(62)}".encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode().split()
    os.waitpid(pid, 0)
    parent = [new_id(), str(_rng.getrandbits(62))]
    assert child[0][-16:] != parent[0][-16:]  # the random tail of the id
    assert child[1] != parent[1]
