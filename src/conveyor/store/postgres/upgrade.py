"""A migration that waits for a table lock in short tries, not in one long wait.

Some migrations take a strong lock on a busy table (0020 and 0037 on conveyor_jobs: a
trigger, an index dropped). PostgreSQL grants locks in arrival order, so a migration
waiting behind one long transaction (a report, an idle-in-transaction session) holds up
every claim, settle and enqueue that arrives after it: the whole cluster stops until that
transaction ends, and a deploy looks like an outage. Here each try sets `lock_timeout`
(the URL's migrate_lock_timeout, 2 s by default) once it holds the migrators' advisory
lock; a statement that cannot get its lock in time fails the try, whose transaction rolls
back (nothing of the migration stays, and the locks it did take are released, so the
queued workers go on), and the migration tries again after a pause that doubles up to
5 s, for at most migrate_wait seconds in all (600 by default). Then it fails with
MigrationBlocked, naming the migration. So a migration holds the others up for at most
migrate_lock_timeout at a time, not for as long as the long transaction lasts.
migrate_lock_timeout=0 waits for ever, as before (lock_timeout 0 for the try, whatever the
role's or the server's setting).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import psycopg

from ... import _rng
from ...errors import MigrationBlocked, StoreUnavailable
from ..migrate import Migration
from .connection import PostgresURL

log = logging.getLogger("conveyor.store")

# The setting as the try's own (set_config(..., true): this transaction only)
LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %(timeout)s, true)"
FIRST_PAUSE = 0.25
LONGEST_PAUSE = 5.0


def lock_timeout(url: PostgresURL) -> str:
    """The try's lock_timeout as the server reads it (milliseconds; "0": no limit)."""
    if url.migrate_lock_timeout <= 0:
        return "0"
    return f"{max(1, round(url.migrate_lock_timeout * 1000))}ms"


def _waited_for_lock(exc: BaseException) -> bool:
    return (isinstance(exc, StoreUnavailable)
            and isinstance(exc.__cause__, psycopg.errors.LockNotAvailable))


async def apply_in_tries(apply: Callable[[], Awaitable[int]], migration: Migration,
                         url: PostgresURL, *,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                         clock: Callable[[], float] = time.monotonic) -> int:
    """`apply()` (one transaction of the migration, its statements under lock_timeout)
    until it does not fail for a lock, within url.migrate_wait seconds."""
    start = clock()
    pause = FIRST_PAUSE
    tries = 0
    while True:
        tries += 1
        try:
            return await apply()
        except StoreUnavailable as exc:
            if not _waited_for_lock(exc):
                raise
            name = f"{migration.version:04d}_{migration.name}"
            waited = clock() - start
            if waited + pause > url.migrate_wait:
                raise MigrationBlocked(
                    f"migration {name} on schema {url.schema} at {url.where} could not take "
                    f"the table locks it needs in {tries} tries over {waited:.1f}s "
                    f"(migrate_lock_timeout {url.migrate_lock_timeout:g}s a try): another "
                    "transaction holds them (see pg_stat_activity for long or idle-in-"
                    "transaction sessions). Nothing of this migration was applied; run "
                    "`conveyor migrate` again once that transaction has ended, or give the "
                    "store URL a longer migrate_wait") from exc
            log.warning("migration %s waits for a table lock another transaction holds; "
                        "rolled back, try %d again in %.2fs (%.1fs of %gs waited)", name,
                        tries + 1, pause, waited, url.migrate_wait)
            await sleep(pause * (0.75 + 0.5 * _rng.RNG.random()))
            pause = min(pause * 2, LONGEST_PAUSE)
