-- Conveyor schema, version 22: an error group's dead jobs, kept as jobs change (issue 15;
-- store/dead_groups.py). A job that dies in a failed attempt carries the attempt's error
-- fingerprint (dead_fingerprint: written by the settle that kills it, cleared by a requeue);
-- conveyor_dead_groups counts, per tenant and fingerprint, the dead jobs that carry one. The
-- triggers below keep it in the transaction of the job's change, whatever the write (a
-- settle, a requeue, a discard, retention, a purge). Each fires only for a row that is or
-- was such a dead job (its WHEN), so a drain's claims and completions never run them.
ALTER TABLE conveyor_jobs ADD COLUMN dead_fingerprint TEXT;

CREATE TABLE conveyor_dead_groups (
    tenant      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (tenant, fingerprint)
) WITHOUT ROWID;

-- A group's dead jobs in id order (dead_groups.GROUP_DEAD_JOBS), and nothing else's
CREATE INDEX conveyor_jobs_dead_groups ON conveyor_jobs (dead_fingerprint, id)
WHERE dead_fingerprint IS NOT NULL;

-- No insert trigger (none on PostgreSQL either): no write path inserts a job that is already
-- dead with a fingerprint (it dies by a settle), and every enqueue would evaluate its WHEN.
CREATE TRIGGER conveyor_dead_groups_updated AFTER UPDATE OF state, tenant, dead_fingerprint
ON conveyor_jobs
WHEN (old.state = 'dead' AND old.dead_fingerprint IS NOT NULL)
  OR (new.state = 'dead' AND new.dead_fingerprint IS NOT NULL)
BEGIN
    UPDATE conveyor_dead_groups SET n = n - 1
    WHERE old.state = 'dead' AND tenant = old.tenant AND fingerprint = old.dead_fingerprint;
    INSERT INTO conveyor_dead_groups (tenant, fingerprint, n)
    SELECT new.tenant, new.dead_fingerprint, 1
    WHERE new.state = 'dead' AND new.dead_fingerprint IS NOT NULL
    ON CONFLICT (tenant, fingerprint) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER conveyor_dead_groups_deleted AFTER DELETE ON conveyor_jobs
WHEN old.state = 'dead' AND old.dead_fingerprint IS NOT NULL
BEGIN
    UPDATE conveyor_dead_groups SET n = n - 1
    WHERE tenant = old.tenant AND fingerprint = old.dead_fingerprint;
END;

-- The dead jobs already stored: each takes the fingerprint of its final attempt's death (the
-- newest, where a retried job's attempts repeat its number): from the folded attempts (their
-- job index), then from the pending ones (newer than any folded; one pass over them). The
-- update trigger above counts them.
UPDATE conveyor_jobs
SET dead_fingerprint = (
    SELECT fingerprint FROM conveyor_attempts
    WHERE job_id = conveyor_jobs.id AND attempt = conveyor_jobs.attempt
      AND outcome = 'dead' AND fingerprint IS NOT NULL
    ORDER BY ended_at DESC LIMIT 1)
WHERE state = 'dead';

UPDATE conveyor_jobs SET dead_fingerprint = pending.fingerprint
FROM (SELECT job_id, attempt, fingerprint, max(ended_at) FROM conveyor_attempts_pending
      WHERE outcome = 'dead' AND fingerprint IS NOT NULL
      GROUP BY job_id, attempt) AS pending
WHERE conveyor_jobs.id = pending.job_id AND conveyor_jobs.attempt = pending.attempt
  AND conveyor_jobs.state = 'dead';
