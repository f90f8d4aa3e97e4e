"""An error group's dead jobs, kept as jobs change (issue 15; migration 0022 on both stores).

A job that dies in a failed attempt carries that attempt's error fingerprint in
`conveyor_jobs.dead_fingerprint`: the settle that kills it writes it (FAIL in each dialect's
queries.py), a requeue clears it, and deleting the job takes it away. The table
`conveyor_dead_groups (tenant, fingerprint, n)` counts the dead jobs carrying each
fingerprint, per tenant; the store's count triggers keep it in the same transaction as the
job's change (on PostgreSQL the statement triggers of version 11, on SQLite row triggers), so
a read is a few rows of that table, not a join of the attempt history with the jobs.

Before this, the reads joined each dead job with its final attempt: a job retried by hand
and dead again in another group was counted in both (its old attempt row had the same
number), and a dead job left its group once its attempts were pruned."""

from __future__ import annotations

from ..history.records import AttemptRecord
from .history_sql import _TENANT  # the history reads' tenant filter (none: every tenant)

# Per fingerprint: its dead jobs (every tenant's summed when no tenant is given)
DEAD_GROUP_COUNTS = """
SELECT fingerprint, CAST(sum(n) AS BIGINT) FROM {schema}.conveyor_dead_groups
WHERE """ + _TENANT + """
GROUP BY fingerprint HAVING sum(n) > 0"""

# A page of a group's dead jobs, in id order after %(after)s ('' for the first page): the
# partial index conveyor_jobs_dead_groups (dead_fingerprint, id) over the jobs that carry
# one. A page, not the whole group: a group of this size held 14,000 dead jobs at 1M jobs,
# and moving 10,000 ids cost 33 ms p50 (127 ms p95 on PostgreSQL); whoever wants them all
# (retry_group, discard_group) reads page after page.
#
# Written as a range of (dead_fingerprint, id) from (group, after) up to the group's last,
# in that order, which means `dead_fingerprint = group AND id > after ORDER BY id`: with an
# equality PostgreSQL may walk the primary key in id order instead and filter (it costs that
# low, the ids being in insertion order), reading every job from `after` until a page of the
# group's is found (14 ms at 200,000 jobs for 1,000 ids; the group's index: 1 ms). Only the
# group's index gives this order.
PAGE = 1_000
GROUP_DEAD_JOBS = """
SELECT id FROM {schema}.conveyor_jobs
WHERE (dead_fingerprint, id) > (%(fingerprint)s, %(after)s)
  AND dead_fingerprint <= %(fingerprint)s AND state = 'dead'
ORDER BY dead_fingerprint, id LIMIT %(limit)s"""

# The same of one tenant, from conveyor_jobs_dead_tenants (tenant, dead_fingerprint, id;
# 0023): the group's entries of that tenant alone, where the index above holds every
# tenant's (org-17's 2,000 of a group among 14,000)
TENANT_GROUP_DEAD_JOBS = GROUP_DEAD_JOBS.replace(
    "AND state = 'dead'", "AND tenant = %(tenant)s AND state = 'dead'")


def dead_fingerprint(attempt: AttemptRecord | None) -> str | None:
    """The fingerprint a failed attempt gives its job when the failure kills it (none when
    no history is recorded, or the error carries none)."""
    return None if attempt is None else attempt.fingerprint
