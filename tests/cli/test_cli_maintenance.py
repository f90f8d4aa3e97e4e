"""`conveyor migrate`, `clean-expired` and `prune`."""

from __future__ import annotations

import re
import time

from conveyor import FakeClock
from conveyor.testing import run_until_idle

from .conftest import Cli


def test_migrate_creates_then_keeps_the_schema(cli: Cli) -> None:
    first = cli.ok("migrate")
    match = re.fullmatch(r"schema at version (\d+) \((\d+) migration\(s\) applied\)\n", first)
    assert match is not None and int(match[1]) >= 1 and int(match[2]) >= 1
    assert cli.ok("migrate") == f"schema at version {match[1]} (0 migration(s) applied)\n"
    assert (cli.cwd / "jobs.db").exists()


def test_clean_expired_moves_overdue_jobs_to_dead(cli: Cli) -> None:
    past = FakeClock(time.time() - 3600)  # enqueued an hour ago with a ten-minute TTL
    app = cli.app(past)
    overdue = app.enqueue("send_welcome", {}, ttl=600).id
    app.close()
    fresh = cli.json("enqueue", "send_welcome", "--ttl", "600")["id"]
    assert cli.ok("clean-expired") == "expired 1 jobs\n"
    job = cli.json("job", overdue)
    assert (job["state"], job["dead_reason"]) == ("dead", "expired")
    assert cli.json("job", fresh)["state"] == "queued"


def test_prune_deletes_finished_jobs_past_retention(cli: Cli) -> None:
    # run_until_idle also prunes, so the recent job runs first and the old ones after it,
    # on a clock three days back (to which the recent job is in the future, so it stays)
    recent = cli.app()
    kept = recent.enqueue("send_welcome", {}).id
    run_until_idle(recent)
    recent.close()
    old = cli.app(FakeClock(time.time() - 3 * 24 * 3600))
    old_ids = [old.enqueue("send_welcome", {}).id for _ in range(3)]
    run_until_idle(old)
    waiting = old.enqueue("send_welcome", {}, delay=3 * 24 * 3600 + 60).id  # not finished
    old.close()
    assert cli.ok("prune") == "pruned 3 jobs\n"
    remaining = {j["id"] for j in cli.json("jobs")}
    assert remaining == {kept, waiting} and not remaining & set(old_ids)
