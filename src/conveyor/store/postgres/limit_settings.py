"""Writing limits on PostgreSQL: an operator's change, the code's declarations, a slow-down
(a part of PostgresStore's Limits mixin, limits.py).

Lock order. A limited claim locks the limit rows it answers to in (kind, name) order
(limits.LOCK_LIMITS), and an upsert locks every row it meets, whether it changes it or not.
A worker declares its code's limits when it starts, while other workers claim: written one
statement per limit in declaration order (queues, then each task's limit and key limit), a
declaration could hold a task's row while a claim held the key rows and waited for that
task's row, and then wait for a key row itself. PostgreSQL found the deadlock after
deadlock_timeout (1 s) and failed the claim, and every claim queued behind it on the same
rows stalled that second (bench/results/2026-12-05-flow.md, stop 25). So a declaration is
one statement that writes in the claims' order, and only the limits that differ from what
is stored: a worker started again with the same code locks nothing at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ...limits import slowing
from ...limits.claiming import LimitedNames
from ...limits.model import Limit, declared_once
from ..base import LIMITS_HINT
from .keys import UNPARK_TASK

log = logging.getLogger("conveyor.store.postgres")

SET_LIMIT = """
INSERT INTO {schema}.conveyor_limits AS lim (kind, name, concurrency, rate, period, source,
                                             strategy, updated_at)
VALUES (%(kind)s, %(name)s, %(concurrency)s, %(rate)s, %(period)s, %(source)s, %(strategy)s,
        {now})
ON CONFLICT (kind, name) DO UPDATE
SET concurrency = excluded.concurrency, rate = excluded.rate, period = excluded.period,
    source = excluded.source, strategy = excluded.strategy, updated_at = excluded.updated_at"""
# The code's limits that differ from those stored, in (kind, name) order (see above); a
# declaration changes only what code set before: an operator's change stays.
DECLARE_LIMITS = """
WITH declared AS (
    SELECT * FROM unnest(%(kinds)s::text[], %(names)s::text[], %(concurrencies)s::integer[],
                         %(rates)s::integer[], %(periods)s::float8[], %(strategies)s::text[])
        AS declared(kind, name, concurrency, rate, period, strategy)),
changed AS (
    SELECT declared.* FROM declared
    LEFT JOIN {schema}.conveyor_limits AS lim
        ON lim.kind = declared.kind AND lim.name = declared.name
    WHERE lim.kind IS NULL
       OR lim.source = 'code'
          AND (lim.concurrency, lim.rate, lim.period, lim.strategy) IS DISTINCT FROM
              (declared.concurrency, declared.rate, declared.period, declared.strategy))
INSERT INTO {schema}.conveyor_limits AS lim (kind, name, concurrency, rate, period, source,
                                             strategy, updated_at)
SELECT kind, name, concurrency, rate, period, 'code', strategy, {now}
FROM changed ORDER BY kind, name
ON CONFLICT (kind, name) DO UPDATE
SET concurrency = excluded.concurrency, rate = excluded.rate, period = excluded.period,
    source = excluded.source, strategy = excluded.strategy, updated_at = excluded.updated_at
WHERE lim.source = 'code'"""
DELETE_LIMIT = """
WITH gone AS (DELETE FROM {schema}.conveyor_limits WHERE kind = %(kind)s AND name = %(name)s)
DELETE FROM {schema}.conveyor_limit_starts WHERE kind = %(kind)s AND name = %(name)s"""
# A slow-down on a name without a limit makes a row with no caps (listed, removable with
# set_limit of no caps); claims of that name then take the limited way.
# As (the end before, or NULL; the end now; the clock; whether the row was there).
SLOW_DOWN = """
WITH old AS (
    SELECT blocked_until FROM {schema}.conveyor_limits
    WHERE kind = %(kind)s AND name = %(name)s),
up AS (
    INSERT INTO {schema}.conveyor_limits AS lim (kind, name, source, blocked_until, updated_at)
    VALUES (%(kind)s, %(name)s, 'code', {now} + %(seconds)s, {now})
    ON CONFLICT (kind, name) DO UPDATE
    SET blocked_until = greatest(coalesce(lim.blocked_until, 0), excluded.blocked_until)
    RETURNING lim.blocked_until)
SELECT (SELECT blocked_until FROM old), (SELECT blocked_until FROM up), {now},
       EXISTS (SELECT FROM old)"""
# Sent after the change committed, and awaited: a CLI that exits at once still sends it.
LIMITS_CHANGED = "SELECT pg_notify(%(channel)s, %(hint)s)"


class LimitSettings:
    """Set, declare and slow down limits (PostgresStore, through its Limits mixin)."""

    _limited: LimitedNames

    async def set_limit(self: Any, limit: Limit, now: float | None = None) -> None:
        """Set (or with no caps, remove) an operator's limit."""
        await self._count(DELETE_LIMIT if limit.empty else SET_LIMIT, _params(limit, now))
        if limit.kind == "key":  # its parked keys are looked at again under the new caps
            await self._count(UNPARK_TASK, {"name": limit.name})
        await self._limits_changed()

    async def _limits_changed(self: Any) -> None:
        """Read the limits again here at the next claim, and tell every worker to."""
        self._limited.forget()
        try:
            await self._one(LIMITS_CHANGED, {"channel": self.target.channel,
                                             "hint": LIMITS_HINT})
        except Exception as exc:  # a hint: workers still read limits again within REFRESH
            log.warning("could not tell workers that a limit changed: %s", exc)

    async def declare_limits(self: Any, limits: Sequence[Limit],
                             now: float | None = None) -> None:
        """Write limits declared in code, leaving alone any an operator has set (one
        statement, in the claims' lock order; nothing is written or locked when the stored
        limits already are the declared ones)."""
        declared = declared_once(limits)
        if declared and await self._count(DECLARE_LIMITS, {
                "kinds": [d.kind for d in declared], "names": [d.name for d in declared],
                "concurrencies": [d.concurrency for d in declared],
                "rates": [d.rate for d in declared], "periods": [d.period for d in declared],
                "strategies": [d.strategy for d in declared], "now": now}):
            await self._limits_changed()
        self._limited.forget()

    async def slow_down(self: Any, kind: str, name: str, seconds: float,
                        now: float | None = None) -> bool:
        """No starts under this limit for `seconds` (a RateLimited with slow=...). True when
        that began a slow-down or moved its end later; only a beginning wakes the workers
        (limits/slowing.py)."""
        [(before, after, at, existed)] = await self._one(SLOW_DOWN, {
            "kind": kind, "name": name, "seconds": seconds, "now": now})
        change = slowing.change(before if existed else None, after, at)
        if change.began:
            await self._limits_changed()
        return change.moved


def _params(limit: Limit, now: float | None) -> dict[str, Any]:
    return {"kind": limit.kind, "name": limit.name, "concurrency": limit.concurrency,
            "rate": limit.rate, "period": limit.period, "source": limit.source,
            "strategy": limit.strategy, "now": now}
