"""VACUUMs of the tables Conveyor itself churns (count deltas, pending attempts, attempts),
each at most every so often per database: after a fold that moved rows, not at autovacuum's
pace (which may lag, or be off). A vacuum that would wait for a lock is skipped (the
statements say SKIP_LOCKED).

Once per interval for the whole database, not per store: every store (each worker process
has one) folds, and each vacuum of a table updates its pg_class row, which invalidates every
cached plan that reads or writes the table in every backend (the settle, the fold, the count
triggers' inserts), each then planned again at its next run there (issue 15,
bench/results/2026-12-09-pgplan.md). With P worker processes the tables were vacuumed P times
per interval. Now a store asks the server first: it vacuums only when nobody has (a VACUUM
statement's or autovacuum's time in the cumulative statistics, which PostgreSQL writes as a
vacuum ends) within the interval, and only while holding a session advisory lock on the table,
tried and never waited for, so no two stores vacuum it at once, nor one just after another.
A store still asks at most once per interval itself (its own clock), so the ask costs a
statement per interval per process, not one per fold. Behind PgBouncer's transaction pooling
(the URL's prepare=off) a session lock could be taken on one server connection and released
on another (and so never): there the store asks the statistics only, and two stores that ask
at the same moment may both vacuum (SKIP_LOCKED: never one waiting for the other).
"""

from __future__ import annotations

import time
from typing import Any

# the first key of the vacuums' advisory locks (the second: the first table's oid)
VACUUM_LOCK_KEY = 0x63766163  # "cvac"
# Due unless every table the statement names was vacuumed (a VACUUM statement or autovacuum)
# within `every` seconds by the server's clock (an autovacuum of one table alone must not
# let the others wait another interval); then the lock on the first table, tried. A table
# never vacuumed, or with statistics off, has no time (NULL): due.
_CLAIM = """
SELECT CASE WHEN (SELECT bool_and(coalesce(
                      greatest(pg_stat_get_last_vacuum_time(CAST(CAST(named AS regclass) AS oid)),
                               pg_stat_get_last_autovacuum_time(CAST(CAST(named AS regclass)
                                                                     AS oid)))
                      > statement_timestamp() - make_interval(secs => %(every)s), false))
                  FROM unnest(CAST(%(tables)s AS text[])) AS named)
            THEN false
            ELSE pg_try_advisory_lock(%(key)s, vacuumed.oid::int4) END
FROM (SELECT CAST(CAST(%(table)s AS regclass) AS oid) AS oid) AS vacuumed"""
_DUE = _CLAIM.replace("pg_try_advisory_lock(%(key)s, vacuumed.oid::int4)", "true")
_RELEASE = """
SELECT pg_advisory_unlock(%(key)s, CAST(CAST(%(table)s AS regclass) AS oid)::int4)"""


def tables_of(statement: str) -> list[str]:
    """The tables a `VACUUM (options) a, b` statement names, in order."""
    return [name.strip() for name in statement.split(")", 1)[1].split(",")]


async def vacuum_at_most_every(store: Any, statement: str, every: float) -> bool:
    """Run `statement` (a VACUUM template) unless this store asked less than `every` seconds
    ago, or the server says the table was vacuumed within `every` seconds, or another store
    holds the table's vacuum lock (vacuuming it now). Whether it ran."""
    now = time.monotonic()
    last: dict[str, float] = store.__dict__.setdefault("_vacuumed_at", {})
    if now - last.get(statement, now - every) < every:
        return False
    last[statement] = now
    tables = [store.statement(name) for name in tables_of(statement)]
    params = {"key": VACUUM_LOCK_KEY, "table": tables[0], "tables": tables, "every": every}
    locks = bool(store.pools.url.prepare)  # not behind PgBouncer's transaction pooling
    async with store._session() as conn:  # the lock is the session's: one connection
        try:
            [(claimed,)] = await (await conn.execute(_CLAIM if locks else _DUE,
                                                     params)).fetchall()
            if not claimed:
                return False
            await conn.execute(store.statement(statement))
            if locks:
                await conn.execute(_RELEASE, {"key": VACUUM_LOCK_KEY, "table": params["table"]})
        except BaseException:
            # cancelled or failed between asking for the lock and its release: the session
            # may hold it still, and a pooled connection would keep it from every other
            # store for good; a closed connection's session lock ends with it. (No release
            # in a `finally`: on a connection psycopg closed when a cancel was interrupted,
            # its error replaced the CancelledError, and a shutdown's maintenance concern
            # went on for ever: workers that did not exit after SIGTERM.)
            if locks:
                await conn.close()
            raise
    return True
