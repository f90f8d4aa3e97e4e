"""The PostgreSQL store's operator controls: cancel, requeue and discard jobs by id, pause
and resume a queue. A part of PostgresStore (store.py), kept apart for size; every statement
runs in the caller's tenant session, so a tenant never reaches another tenant's job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from . import queries as q


class Control:
    async def cancel(self: Any, ids: Sequence[str], tenant: str | None = None,
                     now: float | None = None) -> dict[str, str]:
        params: dict[str, Any] = {"ids": list(ids), "tenant": tenant, "now": now}
        async with self._session(tenant, atomic=True) as conn:
            cancelled = await self._fetch(conn, q.CANCEL_WAITING, params)
            out = {r[0]: "cancelled" for r in cancelled}
            params["ids"] = [i for i in ids if i not in out]
            asked = await self._fetch(conn, q.CANCEL_RUNNING, params)
            out |= {r[0]: "cancel_requested" for r in asked}
            return await self._with_states(conn, ids, out, tenant)

    async def requeue(self: Any, ids: Sequence[str], tenant: str | None = None,
                      now: float | None = None) -> dict[str, str]:
        params: dict[str, Any] = {"ids": list(ids), "tenant": tenant, "now": now}
        async with self._session(tenant, atomic=True) as conn:
            requeued = await self._fetch(conn, q.REQUEUE, params)
            await self._touch_requeued(conn, [r[0] for r in requeued])  # keys.py
            if requeued:
                await self._notify_on(conn, sorted({r[2] for r in requeued}))
            out = await self._with_states(conn, ids, {r[0]: "queued" for r in requeued}, tenant)
        done = {r[0] for r in requeued}  # a job already queued is left as it is, and says so
        return {i: "already_queued" if o == "queued" and i not in done else o
                for i, o in out.items()}

    async def _with_states(self: Any, conn: psycopg.AsyncConnection[Any], ids: Sequence[str],
                           out: dict[str, str], tenant: str | None) -> dict[str, str]:
        rest = [i for i in ids if i not in out]
        if rest:
            rows = await self._fetch(conn, q.STATES_OF, {"ids": rest, "tenant": tenant})
            states: dict[str, str] = {r[0]: r[1] for r in rows}
            out |= {i: states.get(i, "not_found") for i in rest}
        return {i: out[i] for i in ids}

    async def discard(self: Any, ids: Sequence[str], tenant: str | None = None) -> int:
        """Delete finished jobs (completed, dead, cancelled) by id; returns how many."""
        async with self._session(tenant, atomic=tenant is not None) as conn:
            cursor = await conn.execute(self.statement(q.DISCARD),
                                        {"ids": list(ids), "tenant": tenant})
        return max(cursor.rowcount, 0)

    async def pause(self: Any, queue: str) -> None:
        await self._count(q.SET_PAUSED, {"name": queue, "paused": True})

    async def resume(self: Any, queue: str) -> None:
        async with self._session(atomic=True) as conn:
            await self._run(conn, q.SET_PAUSED, {"name": queue, "paused": False})
            await self._notify_on(conn, [queue])
