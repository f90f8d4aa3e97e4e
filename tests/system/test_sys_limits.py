"""Flow control with real `conveyor worker` processes (2 on SQLite, 4 on PostgreSQL), a random
one SIGKILLed and started again about every second. A ledger of every run's start and end
(limitapp.py; a killed run ends when its worker was killed) shows that a queue limited to 3
never had more than 3 running at any instant, a task limited to 1 never ran two at once, a
key limited to 1 never ran two of its jobs at once; and that every job completed all the
same. Keys take turns: two small keys finish before a big key's 50th job starts."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.windows import busiest

from conveyor import Conveyor, JobFilter, JobState, KeyLimit

pytestmark = pytest.mark.system

HERE = Path(__file__).resolve().parent
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
POSTGRES = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Cluster:
    folder: Path
    url: str
    ledger: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed_at: dict[int, float] = field(default_factory=dict)  # pid: when it was SIGKILLed
    poll_interval: str = "0.2"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "PYTEST"))}
        env.update({"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE),
                                                               env.get("PYTHONPATH")])),
                    "CONVEYOR_URL": self.url, "CONVEYOR_LEASE": "2",
                    "CONVEYOR_HEARTBEAT": "0.5", "CONVEYOR_POLL_INTERVAL": self.poll_interval,
                    "CONVEYOR_CONFIG": str(self.folder / "none.toml"),
                    "LIMITS_LEDGER": str(self.ledger)})
        return env

    def start(self, index: int, queues: str = "capped,mixed",
              app: str = "limitapp:app") -> subprocess.Popen[bytes]:
        log = open(self.folder / f"worker-{index}.log", "ab")  # noqa: SIM115 - the child's
        proc = subprocess.Popen([CONVEYOR, "worker", "--app", app, "--queues",
                                 queues, "--concurrency", "4"], cwd=self.folder,
                                env=self.env(), stdout=log, stderr=log,
                                start_new_session=True)
        log.close()
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.killed_at[proc.pid] = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture(params=[pytest.param(("sqlite", 2), id="sqlite-2-workers"),
                        pytest.param(("postgres", 4), id="postgres-4-workers",
                                     marks=pytest.mark.postgres)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Cluster, int]]:
    kind, workers = request.param
    schema = f"conveyor_limits_{secrets.token_hex(5)}"
    url = (f"sqlite:///{tmp_path / 'jobs.db'}" if kind == "sqlite"
           else f"{POSTGRES}?schema={schema}")
    found = Cluster(tmp_path, url, tmp_path / "ledger.log")
    try:
        yield found, workers
    finally:
        found.close()
        if kind == "postgres":
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def runs(cluster: Cluster) -> dict[str, list[tuple[float, float]]]:
    """Every run of every job, (start, end); a run cut short ends when its worker died."""
    starts: dict[tuple[str, int], list[float]] = {}
    ends: dict[tuple[str, int], list[float]] = {}
    for line in cluster.ledger.read_text().splitlines():
        event, job_id, pid, at = line.split()
        (starts if event == "start" else ends).setdefault((job_id, int(pid)), []).append(
            float(at))
    out: dict[str, list[tuple[float, float]]] = {}
    for (job_id, pid), began in starts.items():
        finished = sorted(ends.get((job_id, pid), []))
        for index, start in enumerate(sorted(began)):
            if index < len(finished):
                end = finished[index]
            else:
                assert pid in cluster.killed_at, f"run of {job_id} in {pid} never ended"
                end = cluster.killed_at[pid]
            out.setdefault(job_id, []).append((start, end))
    return out


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t comes before a start at t)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_limits_hold_while_workers_are_killed(cluster: tuple[Cluster, int]) -> None:
    system, count = cluster
    app = Conveyor(system.url)
    app.migrate()
    rng = random.Random(14)
    capped = [app.enqueue("capped", {"ms": rng.randint(30, 120)}, queue="capped").id
              for _ in range(150)]
    solo = [app.enqueue("solo", {"ms": rng.randint(20, 60)}, queue="mixed").id
            for _ in range(40)]
    system.procs = [system.start(i) for i in range(count)]
    deadline, kills = time.monotonic() + 90, 0
    try:
        while time.monotonic() < deadline:
            done = app.list_jobs(JobFilter(states=(JobState.COMPLETED,)), limit=1000)
            if len(done) == len(capped) + len(solo):
                break
            time.sleep(rng.uniform(0.8, 1.4))
            if kills < 6:
                index = rng.randrange(count)
                system.kill(system.procs[index])
                system.procs[index] = system.start(index)
                kills += 1
    finally:
        system.close()
    states = {app.get(job_id).state for job_id in capped + solo}
    assert states == {"completed"}, "every job completes although workers were killed"
    assert kills == 6
    every = runs(system)
    capped_runs = [run for job_id in capped for run in every[job_id]]
    solo_runs = [run for job_id in solo for run in every[job_id]]
    assert most_at_once(capped_runs) == 3  # reached, and never over
    assert most_at_once(solo_runs) == 1
    app.close()


def test_a_rate_holds_in_every_window_across_workers(cluster: tuple[Cluster, int]) -> None:
    """20 starts a second for about 4 s (the 50/s for 60 s run is bench/limits.py): never more
    than 20 claims (the store's start times) in any one-second window, and the rate used."""
    system, count = cluster
    app = Conveyor(system.url)
    app.migrate()
    app.limits.set("queue", "rated", rate="20/s")
    ids = [app.enqueue("rated", {"ms": 5}, queue="rated").id for _ in range(80)]
    system.procs = [system.start(i, queues="rated") for i in range(count)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(app.list_jobs(
                JobFilter(states=(JobState.COMPLETED,)), limit=100)) < len(ids):
            time.sleep(0.2)
    finally:
        system.close()
    claims = sorted(t for t in (app.get(job_id).started_at for job_id in ids) if t is not None)
    assert len(claims) == len(ids)
    low, most = 0, 0
    for high, at in enumerate(claims):
        while claims[low] <= at - 1.0:
            low += 1
        most = max(most, high - low + 1)
    assert most == 20  # reached, never over
    assert claims[-1] - claims[0] >= 3.0  # 80 starts at 20 a second take three windows more
    app.close()


def ledger_starts(cluster: Cluster) -> list[float]:
    return sorted(float(line.split()[3]) for line in cluster.ledger.read_text().splitlines()
                  if line.startswith("start "))


def test_a_limit_changed_at_run_time_reaches_every_worker_within_a_second(
        cluster: tuple[Cluster, int]) -> None:
    """Issue 14: "every worker applies a change within a second". The workers poll only
    every 5 s here, and the jobs run far longer than the test: only the change's own
    wake-up (LIMITS_HINT) can make them claim. Concurrency 1 -> 6 over 2 or 4 workers of 4
    slots: the five more starts happen within a second of the change, on several workers."""
    system, count = cluster
    system.poll_interval = "5"
    app = Conveyor(system.url)
    app.migrate()
    app.limits.set("queue", "changing", concurrency=1)
    app.enqueue_many([{"task": "changing", "queue": "changing", "payload": {"ms": 60_000}}]
                     * 12)
    system.procs = [system.start(i, queues="changing") for i in range(count)]
    try:
        deadline = time.monotonic() + 30
        while not system.ledger.exists() or not ledger_starts(system):
            assert time.monotonic() < deadline, "no job started"
            time.sleep(0.05)
        time.sleep(2.0)  # every worker is up and waiting out its poll
        assert len(ledger_starts(system)) == 1
        changed = time.time()
        app.limits.set("queue", "changing", concurrency=6)
        time.sleep(2.5)
        starts = ledger_starts(system)
    finally:
        system.close()
    pids = {line.split()[2] for line in system.ledger.read_text().splitlines()}
    print(f"starts after the change: {[round(at - changed, 3) for at in starts[1:]]}")
    assert len(starts) == 6  # the new cap, reached and never over
    assert starts[-1] - changed < 1.0
    assert len(pids) >= 2  # more than one worker took the change
    app.close()


@pytest.mark.long
def test_a_rate_of_50_a_second_for_60_s_starts_within_2_percent(
        cluster: tuple[Cluster, int]) -> None:
    """Issue 14: 50 starts a second held for 60 s by real workers, a random one SIGKILLed
    and started again every 3 to 5 s. Each run's body writes the store's start time of that
    run (what the rate counts; limitapp.rated) to the ledger, reruns of killed jobs too: no
    one-second window holds more than 50, and the first 60 s hold 3,000 within 2 %. Workers
    wake a little before the window has room again (Store.room_at, worker/pacing.py), and
    the store books their starts at exactly that time (limits/claiming.claim_time); no body
    began before its booked start. A killed worker's claims that never reached a body (its
    prefetched jobs) are missing from the ledger: the count there is a lower bound. The jobs
    wait before the workers start: the 60 s include the later workers' start-ups."""
    system, count = cluster
    app = Conveyor(system.url)
    app.migrate()
    app.limits.set("queue", "rated", rate="50/s")
    for _ in range(9):  # 4,500: more than 60 s can start
        app.enqueue_many([{"task": "rated", "queue": "rated", "payload": {"ms": 5}}] * 500)
    system.procs = [system.start(i, queues="rated") for i in range(count)]
    rng, kills = random.Random(50), 0
    try:
        first: float | None = None
        deadline = time.monotonic() + 120
        next_kill = time.monotonic() + rng.uniform(3, 5)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if time.monotonic() >= next_kill:
                index = rng.randrange(count)
                system.kill(system.procs[index])
                system.procs[index] = system.start(index, queues="rated")
                kills += 1
                next_kill = time.monotonic() + rng.uniform(3, 5)
            started = [j.started_at for j in app.list_jobs(JobFilter(), limit=5000, bodies=False)
                       if j.started_at is not None]
            if first is None and started:
                first = min(started)
            if first is not None and max(started) > first + 61:
                break
    finally:
        system.close()
    booked: list[float] = []  # every run's store start time, as its body wrote it
    early, bodies = 0, []
    for line in system.ledger.read_text().splitlines():
        event, _, _, at, *rest = line.split()
        if event == "booked":
            booked.append(float(rest[0]))
            bodies.append(float(at))
            early += float(at) < float(rest[0]) - 0.001
    booked.sort()
    in_run = [at for at in booked if at < booked[0] + 60]
    print(f"{kills} kills; {len(in_run)} starts in the first 60 s, busiest second "
          f"{busiest(booked)}; the bodies' own clocks: busiest second {busiest(sorted(bodies))}")
    assert kills >= 10
    assert busiest(booked) == 50  # reached, never over
    assert early == 0, f"{early} runs began before their booked start"
    assert abs(len(in_run) - 3000) <= 60, f"{len(in_run)} starts in 60 s"
    app.close()


# The longest pause between two starts under "5/0.1s" while workers start: the starts come
# five every 0.1 s, and a claim stalled behind a deadlock waited deadlock_timeout (1 s).
STALL = 0.5


def test_workers_starting_one_after_another_never_stall_the_claims(
        cluster: tuple[Cluster, int]) -> None:
    """Jobs wait under a rate of 5 per 0.1 s while workers start one after another, then
    each is stopped and started again: each start-up declares the app's limits (startapp.py)
    while the others claim. The starts never pause for more than STALL. Before declarations
    wrote in the claims' lock order (store/postgres/limit_settings.py), a start-up could
    deadlock with a claim on PostgreSQL, and every claim stalled for 1 s."""
    system, count = cluster
    app = Conveyor(system.url)
    app.migrate()
    ids = [j.id for j in app.enqueue_many(
        [{"task": "paced", "queue": "paced", "payload": {"ms": 5}}] * 900)]
    ups: list[float] = []  # when each worker had started (its first heartbeat)

    def start(index: int) -> None:
        proc = system.start(index, queues="paced", app="startapp:app")
        system.procs[index:index + 1] = [proc]
        deadline = time.monotonic() + 30
        while proc.pid not in {w.pid for w in app.workers()}:
            assert proc.poll() is None and time.monotonic() < deadline, f"worker {index}"
            time.sleep(0.05)
        ups.append(time.time())
        time.sleep(0.5)

    try:
        system.procs = []
        for index in range(count):
            start(index)
        for index in range(count):  # stopped, and started again
            system.procs[index].send_signal(signal.SIGTERM)
            system.procs[index].wait(30)
            start(index)
        _until_completed(app, ids, 60)
    finally:
        system.close()
    jobs = [app.get(job_id) for job_id in ids]
    assert {job.state for job in jobs} == {"completed"}
    starts = sorted((job.started_at or 0.0, job.worker_id or "") for job in jobs)
    gap, after = max((b[0] - a[0], a) for a, b in itertools.pairwise(starts))
    print(f"{len(starts)} starts over {starts[-1][0] - starts[0][0]:.1f} s, longest pause "
          f"{gap:.3f} s; workers up at "
          + ", ".join(f"{at - starts[0][0]:+.2f}" for at in ups))
    assert gap <= STALL, f"the starts paused {gap:.2f} s after {after[0] - starts[0][0]:.2f} s"
    app.close()


def _until_completed(app: Conveyor, ids: list[str], seconds: float,
                     system: Cluster | None = None, rng: random.Random | None = None,
                     count: int = 0) -> int:
    """Wait for `ids` to complete, killing a random worker about every second (6 at most)
    when `system` is given; returns how many were killed."""
    deadline, kills = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        done = app.list_jobs(JobFilter(states=(JobState.COMPLETED,)), limit=1000)
        if len({j.id for j in done} & set(ids)) == len(ids):
            break
        if system is None or rng is None:
            time.sleep(0.1)
            continue
        time.sleep(rng.uniform(0.8, 1.4))
        if kills < 6:
            index = rng.randrange(count)
            system.kill(system.procs[index])
            system.procs[index] = system.start(index, queues="keyed")
            kills += 1
    return kills


def producer(url: str) -> Conveyor:
    """A producer that knows the keyed tasks (it computes their keys at enqueue)."""
    app = Conveyor(url)
    for name, queue, most in (("per_customer", "keyed", 1), ("fair", "fair", 2)):
        app.task(name=name, queue=queue, key=KeyLimit("payload.customer", concurrency=most))(
            lambda ctx, payload: None)
    app.migrate()
    return app


def test_a_key_limited_to_one_never_runs_two_of_its_jobs_at_once(
        cluster: tuple[Cluster, int]) -> None:
    system, count = cluster
    app = producer(system.url)
    rng = random.Random(15)
    keys: dict[str, list[str]] = {f"c{n}": [] for n in range(8)}
    for index in range(200):  # 25 a key, about 3.5 s of work each: the kills land mid-run
        customer = f"c{index % 8}"
        keys[customer].append(app.enqueue("per_customer", {"ms": rng.randint(80, 200),
                                                           "customer": customer}).id)
    ids = [job_id for found in keys.values() for job_id in found]
    system.procs = [system.start(i, queues="keyed") for i in range(count)]
    try:
        kills = _until_completed(app, ids, 55, system, rng, count)
    finally:
        system.close()
    assert {app.get(job_id).state for job_id in ids} == {"completed"}
    assert kills == 6
    every = runs(system)
    for customer, found in keys.items():
        assert most_at_once([run for job_id in found for run in every[job_id]]) == 1, customer
    assert most_at_once([run for job_id in ids for run in every[job_id]]) >= 3  # keys overlap
    app.close()


def test_keys_take_turns_across_workers(cluster: tuple[Cluster, int]) -> None:
    """Backlogs of 1,000, 10 and 10 under 2 per key: both small keys finish before the big
    key's 50th job starts. No kills here: a killed small job waits out its lease (2 s) while
    the big key goes on, which says nothing about turns."""
    system, count = cluster
    app = producer(system.url)
    big = [j.id for j in app.enqueue_many(
        [{"task": "fair", "payload": {"ms": 30, "customer": "big"}}] * 1000)]
    small = [app.enqueue("fair", {"ms": 30, "customer": name}).id
             for name in ("s1", "s2") for _ in range(10)]
    system.procs = [system.start(i, queues="fair") for i in range(count)]
    try:
        _until_completed(app, small, 55)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(app.list_jobs(
                JobFilter(states=(JobState.COMPLETED,), task="fair"), limit=200)) < 80:
            time.sleep(0.1)
    finally:
        system.close()
    events: dict[str, list[tuple[str, float]]] = {}  # the workers were stopped mid-run:
    for line in system.ledger.read_text().splitlines():  # starts and ends, not runs()
        event, job_id, _, at = line.split()
        events.setdefault(job_id, []).append((event, float(at)))
    big_starts = sorted(at for job_id in big for event, at in events.get(job_id, [])
                        if event == "start")
    small_ends = [at for job_id in small for event, at in events[job_id] if event == "end"]
    assert len(small_ends) == len(small)
    assert len(big_starts) >= 50
    assert max(small_ends) < big_starts[49]
    app.close()
