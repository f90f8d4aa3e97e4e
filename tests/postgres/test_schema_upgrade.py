"""A real `conveyor worker` on a PostgreSQL schema older than the code: it refuses to start
and says what to run (a producer too, from version 3 on: its jobs carry a column the old
schema lacks); `conveyor migrate` brings the schema up, and then the worker runs jobs.
(PostgreSQL apps do not migrate by themselves: a deploy runs `conveyor migrate` once.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conveyor import Conveyor, SchemaOutdated
from conveyor.job import JobState
from conveyor.lookup import resolve_sync

from .conftest import admin_connect
from .test_handoff import wait_for
from .test_system import CONVEYOR, ROOT, worker_process

pytestmark = pytest.mark.postgres


def schema_versions(schema: str) -> list[int]:
    with admin_connect() as conn:
        rows = conn.execute(f'SELECT version FROM "{schema}".conveyor_schema ORDER BY 1')
        return [int(row[0]) for row in rows.fetchall()]


def stored_states(schema: str) -> list[str]:
    with admin_connect() as conn:
        rows = conn.execute(f'SELECT state FROM "{schema}".conveyor_jobs ORDER BY id')
        return [str(row[0]) for row in rows.fetchall()]


@pytest.mark.timeout(120)
def test_a_worker_refuses_an_old_schema_until_it_is_migrated(schema: str, url: str,
                                                             tmp_path: Path) -> None:
    # this checkout's sources first: the `conveyor` script's own install may be another's
    env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_POLL_INTERVAL": "0.2",
           "CONVEYOR_TEST_RUN_LOG": str(tmp_path / "runs.log"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    migrate = [CONVEYOR, "migrate"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)
    newest = schema_versions(schema)[-1]
    assert newest >= 3
    app = Conveyor(url)
    try:
        waiting = app.enqueue("record", {"n": 1, "sleep_ms": 0})
        with admin_connect() as conn:  # the schema as the release before hand-off left it
            conn.execute(f'DROP TABLE "{schema}".conveyor_offers')
            conn.execute(f'ALTER TABLE "{schema}".conveyor_jobs DROP COLUMN sensitive')
            conn.execute(f'DROP TABLE "{schema}".conveyor_sessions')
            conn.execute(f'DROP TABLE "{schema}".conveyor_limits')
            conn.execute(f'DROP TABLE "{schema}".conveyor_limit_starts')
            conn.execute(f'DROP TABLE "{schema}".conveyor_limit_keys')
            conn.execute(f'ALTER TABLE "{schema}".conveyor_jobs DROP COLUMN limit_key')
            conn.execute(f'DROP TABLE "{schema}".conveyor_attempts')
            conn.execute(f'DROP TABLE "{schema}".conveyor_attempts_pending')
            conn.execute(f'DROP TABLE "{schema}".conveyor_rollups')
            conn.execute(f'DROP TABLE "{schema}".conveyor_rollups_all')
            conn.execute(f'DROP TABLE "{schema}".conveyor_worker_rollups')
            conn.execute(f'DROP TABLE "{schema}".conveyor_error_rollups')
            conn.execute(f'DROP TABLE "{schema}".conveyor_error_rollups_all')
            conn.execute(f'DROP TABLE "{schema}".conveyor_job_tails')  # and its id_tail index
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_dead')
            conn.execute(f'DROP TABLE "{schema}".conveyor_traces')
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_errored')
            conn.execute(f'DROP TABLE "{schema}".conveyor_cron')
            conn.execute(f'ALTER TABLE "{schema}".conveyor_workers DROP COLUMN claimed')
            for name in ("inserted", "updated", "deleted", "truncated"):  # their triggers too
                conn.execute(f'DROP FUNCTION "{schema}".conveyor_count_{name}() CASCADE')
            conn.execute(f'DROP TABLE "{schema}".conveyor_counts')
            conn.execute(f'DROP TABLE "{schema}".conveyor_tenant_counts')
            conn.execute(f'DROP TABLE "{schema}".conveyor_count_deltas')
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_retrying')
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_tenant_fields')
            conn.execute(f'ALTER TABLE "{schema}".conveyor_workers DROP COLUMN claimed_queues')
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_tenant')
            for table in ("finished", "tenant_finished", "finished_deltas"):
                conn.execute(f'DROP TABLE "{schema}".conveyor_{table}')
            conn.execute(f'DROP TABLE "{schema}".conveyor_dead_groups')
            conn.execute(f'ALTER TABLE "{schema}".conveyor_jobs DROP COLUMN dead_fingerprint')
            # version 24 put the queue's running index in place of version 1's lease index
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_running_queue')
            conn.execute(f'CREATE INDEX conveyor_jobs_lease ON "{schema}".conveyor_jobs '
                         "(lease_expires_at) WHERE state = 'running'")
            for table in ("slow_tops", "slow_tops_all", "slow_tops_pruned",  # version 26
                          "slow_tops_named", "slow_tops_named_all",  # version 27
                          "worker_rollups_all"):  # version 28
                conn.execute(f'DROP TABLE "{schema}".conveyor_{table}')
            conn.execute(f'DROP TABLE "{schema}".conveyor_cap_grants')  # version 29
            conn.execute(f'DROP INDEX "{schema}".conveyor_jobs_listed')  # version 30
            conn.execute(f'ALTER TABLE "{schema}".conveyor_workers'
                         ' DROP COLUMN claimed_until')  # version 34
            conn.execute(f'DROP TABLE "{schema}".conveyor_queue_heads')  # version 35
            conn.execute(f'DROP FUNCTION "{schema}".conveyor_queue_heads_kept() CASCADE')
            conn.execute(f'DROP TABLE "{schema}".conveyor_job_batches')  # version 37
            conn.execute(f'CREATE INDEX conveyor_jobs_batch ON "{schema}".conveyor_jobs'
                         ' USING brin (batch_id) WHERE batch_id IS NOT NULL')
            conn.execute(f'DELETE FROM "{schema}".conveyor_schema WHERE version >= 2')
        # a producer of this release needs the column of version 3: a clear error that says
        # what to run, and nothing stored
        with pytest.raises(SchemaOutdated, match=r'column "sensitive".*run `conveyor migrate`'):
            app.enqueue("record", {"n": 2, "sleep_ms": 0})
        command = [CONVEYOR, "worker", "--app", "tests.postgres.system_app:app"]
        refused = subprocess.run(command, cwd=ROOT, env=env, timeout=60, capture_output=True,
                                 text=True)
        assert refused.returncode == 1, refused.stderr
        assert (f"the store's schema is at version 1, this Conveyor needs {newest}: "
                "run `conveyor migrate`") in refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout
        assert stored_states(schema) == ["queued"]  # the refused worker took nothing

        upgraded = subprocess.run(migrate, cwd=ROOT, env=env, timeout=60, capture_output=True,
                                  text=True, check=True)
        assert f"schema at version {newest} ({newest - 1} migration(s) applied)" in (
            " ".join(upgraded.stdout.split()))
        assert schema_versions(schema) == list(range(1, newest + 1))
        # the job stored before the upgrade is found by the end of its id (version 20 copied
        # the tails of the jobs already there)
        assert resolve_sync(app, waiting.id[-12:]) == waiting.id

        with worker_process(command, env):
            wait_for(lambda: app.get(waiting.id).state == JobState.COMPLETED, 30)
    finally:
        app.close()
    assert (tmp_path / "runs.log").read_text().split()[::2] == [waiting.id]
