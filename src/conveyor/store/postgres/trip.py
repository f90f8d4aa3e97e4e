"""A transaction in one network round trip (pipeline mode).

    async with pools.connection() as conn, one_trip(conn):
        await conn.execute(LOCK, params)          # queued
        claimed = await conn.execute(CLAIM, ...)  # queued
    rows = await claimed.fetchall()               # BEGIN .. COMMIT went out as one trip

psycopg's `conn.transaction()` syncs the pipeline at BEGIN and again at COMMIT (it reads
their results to track the transaction state), which is two extra round trips on every
transaction. Here BEGIN and COMMIT are plain statements queued in the same pipeline as the
work, so the whole transaction goes out and comes back with the pipeline's one sync (plus
one flush for each result the caller reads in the middle).

An error aborts the rest of the pipeline on the server (the COMMIT is skipped), leaving the
transaction failed; a Python error in the block leaves it open. Either way the transaction
is rolled back here, after the pipeline, before the connection goes back to its pool, so
nothing of it is committed and the next user gets a clean connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

BEGIN = "BEGIN"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"

# A limited claim's transaction (limits.py) sets, for itself only:
# - no bitmap scans: it counts each limited queue's running jobs (a few rows of a partial
#   index: conveyor_jobs_lease until 0024, now the queue's range of
#   conveyor_jobs_running_queue), and with bitmap scans allowed the planner often built a bitmap
#   for that count instead of walking the index, at a measured cost (2026-12-05-flow.md);
# - a commit that does not wait for its WAL flush. Claimers on one limit wait for each other's
#   commit (the limit rows' lock), so a flush in each commit capped a limited queue at one claim
#   per flush however many workers (2 workers under a limit of 20 drained at half the unlimited
#   rate: 2026-12-05-peers-ab.md). The job's settle is durable and flushes the claim with it; a
#   claim lost in a server crash leaves its job queued, to run again as after a lost lease.
LIMITED_CLAIM = ("SELECT set_config('enable_bitmapscan', 'off', true),"
                 " set_config('synchronous_commit', 'off', true)")


@contextlib.asynccontextmanager
async def one_trip(conn: psycopg.AsyncConnection[Any]
                   ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """BEGIN, the block's statements and COMMIT in one pipeline (the connection must be in
    autocommit mode, as the pools' are); rolled back on any error."""
    try:
        async with conn.pipeline():
            await conn.execute(BEGIN)
            yield conn
            await conn.execute(COMMIT)
    except BaseException:
        await _roll_back(conn)
        raise


async def _roll_back(conn: psycopg.AsyncConnection[Any]) -> None:
    """End a transaction the block left open or failed (outside the pipeline, which is over).
    A broken connection is left to the pool, which discards it."""
    if conn.closed:
        return
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with contextlib.suppress(psycopg.OperationalError):
            await conn.execute(ROLLBACK)
