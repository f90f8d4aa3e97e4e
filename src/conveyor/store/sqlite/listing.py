"""How the SQLite store lists jobs (list_jobs): the page's statement, chosen from the kept counts.

A list is newest first, a page at a time. Two plans, each bounded by what it reads:

- the walk: the primary key (or a tenant's range of conveyor_jobs_tenant, a batch's, the
  running jobs') in id order, each row tested, stopping at the page's end. It reads about
  `limit * scope / matches` rows: a few when the filter matches often, the whole scope when
  it rarely does (a tenant's 20,000 jobs for 40 matches: 220 ms at 1M jobs, issue 16).
- the keyed read (migration 0030): the counted keys (queue, task, state) the filter selects,
  from the kept counts, and each key's range of conveyor_jobs_listed (with the tenant's part
  of it when the filter names one), in the index alone; the page's ids sorted there, then only
  those rows read. It reads the matches and the keys, never a row that does not match. The
  running jobs are not in that index (0032: a job only passes through 'running'): when the
  filter's running keys hold jobs, the keyed read takes them from the running jobs' own index,
  every running row looked at (a few: the workers' slots).

Every filter of queue, task (or a search's lists of them), tenant and states (one or several)
takes
the cheaper of the two by the costs below; so a page costs at most about
min(limit * scope / matches, matches + keys) steps, whatever the combination: at most
sqrt(limit * jobs) (7,100 entries at 1M jobs, a page of 51) plus the keys. Other filters
(a batch, a correlation id, a search's names, jobs waiting to retry: each with an index of
the few rows it selects) keep the walk of list_statement. The running jobs' list is always
the walk of their own index (every tenant's running jobs, with a look at each row, newest
first to the page's end): the keyed read would look at all of them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ...job import JobFilter, JobState
from ..counting import counted_states
from ..filters import where_clause
from . import queries as q

# The relative cost of one step of each plan, measured at 1M jobs (bench/results/
# 2026-12-07-jobs4f.md): a row of the primary key's walk ~0.15 µs; a row of a tenant's walk,
# its entry then the row looked up by id, ~3 µs; an entry of conveyor_jobs_listed read in the
# index ~0.3 µs; a key's probe of it ~1.5 µs.
WALK_ROW = 1
TENANT_WALK_ROW = 20
KEYED_ENTRY = 2
KEYED_KEY = 10
# the keyed read's upper bound of ids when there is no cursor: above every id (ids are ASCII)
NO_CURSOR = "\U0010ffff"

# The keyed read (migration 0030): the counted keys a filter selects, read from
# the kept counts in the same statement (one snapshot: a key the jobs hold is in the counts),
# each key's range of conveyor_jobs_listed read in the index alone, the page's ids sorted
# there, and only those rows read. A retrying job is counted apart but stored `scheduled`.
_MATCHING_KEYS = """(:queue IS NULL OR queue = :queue) AND (:task IS NULL OR task = :task)
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
  AND state IN (SELECT value FROM json_each(:states))"""
_KEYS_ALL = """SELECT DISTINCT queue, task,
       CASE state WHEN 'retrying' THEN 'scheduled' ELSE state END AS state
FROM conveyor_counts WHERE n > 0 AND """ + _MATCHING_KEYS
_KEYS_TENANT = _KEYS_ALL.replace("conveyor_counts WHERE", "conveyor_tenant_counts WHERE "
                                 "tenant = :tenant AND", 1)
# The running rows are not in conveyor_jobs_listed (0032): the matching running keys' jobs
# are read from conveyor_jobs_running_ids, and only when such a key holds jobs (EXISTS: a
# constant of the statement, so no running row is read otherwise).
_KEYED = """ WHERE id IN (
  WITH counted AS ({keys})
  SELECT listed.id FROM counted
  CROSS JOIN conveyor_jobs AS listed INDEXED BY conveyor_jobs_listed
    ON listed.queue = counted.queue AND listed.task = counted.task
   AND listed.state = counted.state AND listed.queue <> '' AND listed.state <> 'running'{tenant}
  WHERE listed.id < :after AND counted.state <> 'running'
  UNION ALL
  SELECT running.id FROM conveyor_jobs AS running INDEXED BY conveyor_jobs_running_ids
  WHERE running.state = 'running' AND running.id < :after{running_tenant}
    AND EXISTS (SELECT 1 FROM counted WHERE state = 'running')
    AND (running.queue, running.task) IN (
        SELECT queue, task FROM counted WHERE state = 'running')
  ORDER BY 1 DESC LIMIT :limit)
ORDER BY id DESC LIMIT :limit"""
LIST_KEYED_ALL = _KEYED.format(keys=_KEYS_ALL, tenant="", running_tenant="")
LIST_KEYED_TENANT = _KEYED.format(keys=_KEYS_TENANT, tenant=" AND listed.tenant = :tenant",
                                  running_tenant=" AND running.tenant = :tenant")
# what planned_list chooses by: the jobs the filter matches, the keys they are kept under,
# the jobs a walk would pass (every job; a tenant's: the tenant's range of
# conveyor_jobs_tenant), and of the matches, the running ones (the keyed read reads them
# from every running row)
LIST_PLAN_ALL = """
SELECT coalesce(sum(n) FILTER (WHERE """ + _MATCHING_KEYS + """), 0),
       count(*) FILTER (WHERE """ + _MATCHING_KEYS + """), coalesce(sum(n), 0),
       coalesce(sum(n) FILTER (WHERE state = 'running' AND """ + _MATCHING_KEYS + """), 0)
FROM conveyor_counts WHERE n > 0"""
LIST_PLAN_TENANT = LIST_PLAN_ALL.replace("conveyor_counts WHERE n", "conveyor_tenant_counts "
                                         "WHERE tenant = :tenant AND n", 1)
# a running list's walk passes every tenant's running jobs (conveyor_jobs_running_ids)
LIST_RUNNING = "SELECT coalesce(sum(n), 0) FROM conveyor_counts WHERE state = 'running'"


def keyed_applies(where: JobFilter) -> bool:
    """Whether the filter names only counted keys (queues, tasks, tenant, stored states;
    a search's names too, search.py): the keyed read can serve it. Not jobs waiting to
    retry (a count apart, stored `scheduled`: their own index, conveyor_jobs_retrying, is
    walked), nor a filter of a field the counts do not hold."""
    return not (where.retrying or where.correlation_id or where.idempotency_key
                or where.batch_id or where.with_errors)


def planned_list(conn: sqlite3.Connection, where: JobFilter, after: str | None, limit: int,
                 bodies: bool = True) -> tuple[str, dict[str, Any]] | None:
    """The page's statement and parameters for a filter keyed_applies to; None when the
    counts say nothing matches."""
    if not (where.queue or where.task or where.states or where.queues or where.tasks):
        # every job of the walk's scope (all, or the tenant's range) matches: the walk stops
        # at the page's end, and finds nothing at once when there is nothing
        return list_statement(where, after, limit, bodies)
    params = _key_params(where)
    plan = LIST_PLAN_TENANT if where.tenant else LIST_PLAN_ALL
    matches, keys, scope, running = conn.execute(plan, params).fetchone()
    if not matches:
        return None
    if running_only(where):  # the walk of conveyor_jobs_running_ids is the keyed read's too
        return list_statement(where, after, limit, bodies)
    running_rows = conn.execute(LIST_RUNNING).fetchone()[0] if running else 0
    if prefer_keyed(where, limit, matches, keys, scope, running_rows):
        return keyed_statement(where, after, limit, bodies)
    return list_statement(where, after, limit, bodies)


def prefer_keyed(where: JobFilter, limit: int, matches: int, keys: int, scope: int,
                 running_rows: int = 0) -> bool:
    """The keyed read when it costs less than the walk, the matches taken as spread evenly
    over the ids (the walk passes `scope / matches` rows per row of the page); the keyed
    read looks at every running row (`running_rows`) when the filter's running keys hold
    jobs."""
    walked = min(scope, limit * scope / matches)
    walk = walked * (TENANT_WALK_ROW if where.tenant else WALK_ROW)
    keyed = matches * KEYED_ENTRY + keys * KEYED_KEY + running_rows * TENANT_WALK_ROW
    return keyed < walk


def keyed_statement(where: JobFilter, after: str | None, limit: int,
                    bodies: bool = True) -> tuple[str, dict[str, Any]]:
    select = q.LIST_SELECT if bodies else q.LIST_SELECT_LIGHT
    keyed = LIST_KEYED_TENANT if where.tenant else LIST_KEYED_ALL
    return select + keyed, {**_key_params(where), "after": after or NO_CURSOR, "limit": limit}


def list_statement(where: JobFilter, after: str | None, limit: int,
                   bodies: bool = True) -> tuple[str, dict[str, Any]]:
    """The walk: a page's SELECT and its parameters, its plan pinned where the planner would
    guess wrong without statistics of the moment: a batch's jobs from their index (0015), not
    a walk of the key; running jobs (only as many as the workers' slots) from their own index
    (0015), newest first, not a walk of the key past millions of finished jobs."""
    where_sql, params = list_where(where, after, limit)
    select = q.LIST_SELECT if bodies else q.LIST_SELECT_LIGHT
    if where.batch_id:
        select += " INDEXED BY conveyor_jobs_batch"
    elif running_only(where):
        select += " INDEXED BY conveyor_jobs_running_ids"  # its predicate: state = 'running'

    return f"{select}{where_sql} {q.LIST_ORDER}", params


def list_where(where: JobFilter, after: str | None, limit: int) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a walk or a count, and its parameters."""
    return where_clause(where, after, limit, q.LIST_CLAUSES,
                        lambda values: orjson.dumps(values).decode())


def running_only(where: JobFilter) -> bool:
    return tuple(where.states) == (JobState.RUNNING,) and not where.retrying


def _key_params(where: JobFilter) -> dict[str, Any]:
    return {"tenant": where.tenant, "queue": where.queue, "task": where.task,
            "queues": _listed(where.queues), "tasks": _listed(where.tasks),
            "states": orjson.dumps(counted_states(where)).decode()}


def _listed(names: tuple[str, ...]) -> str | None:
    return orjson.dumps(names).decode() if names else None

