"""Claim exclusivity under real concurrency: threads and processes, each with its own store
instance on the same database; every job must be claimed exactly once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest

from conveyor.store.base import Complete, Store

from .conftest import StoreSetup
from .support import LEASE, T0, new_job

pytestmark = pytest.mark.anyio

JOBS = 300


async def _drain(store: Store, worker_id: str, batch: int) -> list[str]:
    taken: list[str] = []
    while jobs := await store.claim(None, worker_id, batch, LEASE, now=T0 + 1):
        taken.extend(j.id for j in jobs)
        await store.settle([Complete(j.lease) for j in jobs], now=T0 + 1)
        # a pause between trips, as a worker running its jobs has: SQLite's busy waiters
        # poll, so a claimer that never lets go can take every job before the others' next
        # try (the CI flake "only one thread got any work"); what is tested is that no job
        # is claimed twice while they contend, not SQLite's lock fairness
        await asyncio.sleep(0.001)
    return taken


def _thread_claimer(setup: StoreSetup, index: int, start: threading.Barrier,
                    results: dict[int, list[str] | BaseException]) -> None:
    async def run() -> list[str]:
        store = setup.make()  # type: ignore[misc]
        await store.open()
        try:
            start.wait(timeout=30)
            return await _drain(store, f"thread-{index}", 1 + index % 3)
        finally:
            await store.close()

    try:
        results[index] = asyncio.run(run())
    except BaseException as exc:  # reported by the test thread
        results[index] = exc


async def test_threads_each_with_their_own_store_claim_each_job_once(
        store_setup: StoreSetup, store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    jobs = [new_job() for _ in range(JOBS)]
    await store.enqueue_many(jobs, now=T0)
    threads = 6
    start = threading.Barrier(threads)
    results: dict[int, list[str] | BaseException] = {}
    workers = [threading.Thread(target=_thread_claimer, args=(store_setup, i, start, results))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)

    errors = [r for r in results.values() if isinstance(r, BaseException)]
    assert not errors, errors
    claimed = [job_id for r in results.values() for job_id in r]  # type: ignore[union-attr]
    assert len(claimed) == JOBS, f"claimed {len(claimed)} times for {JOBS} jobs"
    assert sorted(claimed) == sorted(j.id for j in jobs)
    assert sum(1 for r in results.values() if r) > 1, "only one thread got any work"
    assert (await store.stats(now=T0 + 2)).by_state.get("completed") == JOBS


CHILD = r"""
import asyncio, json, sys
from conveyor.store.base import Complete, open_store

async def main(url, name, batch):
    store = open_store(url)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()               # the go signal: every child starts together
    taken = []
    try:
        while jobs := await store.claim(None, name, batch, 30.0, now=1_700_000_001.0):
            taken.extend(j.id for j in jobs)
            await store.settle([Complete(j.lease) for j in jobs], now=1_700_000_001.0)
    finally:
        await store.close()
    print(json.dumps(taken), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_processes_each_with_their_own_store_claim_each_job_once(
        store_setup: StoreSetup, store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store lives in one process")
    jobs = [new_job() for _ in range(JOBS)]
    await store.enqueue_many(jobs, now=T0)
    children = [subprocess.Popen([sys.executable, "-c", CHILD, store_setup.url, f"proc-{i}",
                                  str(1 + i % 4)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
                for i in range(4)]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    claimed = [job_id for out, _ in outputs for job_id in json.loads(out.strip())]
    assert len(claimed) == JOBS, f"claimed {len(claimed)} times for {JOBS} jobs"
    assert sorted(claimed) == sorted(j.id for j in jobs)
