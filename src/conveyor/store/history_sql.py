"""The attempt history's statements, written once for both dialects: `{schema}.` names the
table's schema (PostgreSQL renders it, SQLite reads it as `main.`) and parameters are
written %(name)s (SQLite's copy uses :name, see `for_sqlite`). Every statement that
compares an optional parameter with NULL casts it, so PostgreSQL knows its type."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..history.records import Outcome
from ..history.rollup import BUCKET_COLUMNS, OUTCOMES
from .history_rows import ATTEMPT_COLUMNS

_PARAM = re.compile(r"%\((\w+)\)s")


def for_sqlite(template: str) -> str:
    return _PARAM.sub(r":\1", template.replace("{schema}.", "main."))


INSERT_ATTEMPT = (f"INSERT INTO {{schema}}.conveyor_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                  f"VALUES ({', '.join(f'%({c})s' for c in ATTEMPT_COLUMNS)})")

_ADDED = (*OUTCOMES, "duration_sum", *BUCKET_COLUMNS)
ROLLUP_FIGURES = _ADDED  # what a rollup row adds up
ROLLUP_COLUMNS = ("width", "minute", "task", "queue", "tenant", *_ADDED)
UPSERT_ROLLUP = (
    f"INSERT INTO {{schema}}.conveyor_rollups AS r ({', '.join(ROLLUP_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in ROLLUP_COLUMNS)}) "
    "ON CONFLICT (width, minute, task, queue, tenant) DO UPDATE SET "
    + ", ".join(f"{c} = r.{c} + excluded.{c}" for c in _ADDED))

# all tenants' sums (migration 0016): the same, without the tenant
ALL_ROLLUP_COLUMNS = ("width", "minute", "task", "queue", *_ADDED)
UPSERT_ALL_ROLLUP = (
    f"INSERT INTO {{schema}}.conveyor_rollups_all AS r ({', '.join(ALL_ROLLUP_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in ALL_ROLLUP_COLUMNS)}) "
    "ON CONFLICT (width, minute, task, queue) DO UPDATE SET "
    + ", ".join(f"{c} = r.{c} + excluded.{c}" for c in _ADDED))

WORKER_ROLLUP_COLUMNS = ("hour", "worker_id", "tenant", "host", "pid", "attempts", "failures",
                         "busy", "cpu", "peak_rss")
UPSERT_WORKER_ROLLUP = (
    f"INSERT INTO {{schema}}.conveyor_worker_rollups AS r ({', '.join(WORKER_ROLLUP_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in WORKER_ROLLUP_COLUMNS)}) "
    "ON CONFLICT (hour, worker_id, tenant) DO UPDATE SET host = excluded.host, "
    "pid = excluded.pid, attempts = r.attempts + excluded.attempts, "
    "failures = r.failures + excluded.failures, busy = r.busy + excluded.busy, "
    "cpu = r.cpu + excluded.cpu, peak_rss = CASE WHEN r.peak_rss IS NULL "
    "OR excluded.peak_rss > r.peak_rss THEN excluded.peak_rss ELSE r.peak_rss END")

# all tenants' worker hours (migration 0028): the same, without the tenant
WORKER_ROLLUP_ALL_COLUMNS = tuple(c for c in WORKER_ROLLUP_COLUMNS if c != "tenant")
UPSERT_WORKER_ROLLUP_ALL = (
    UPSERT_WORKER_ROLLUP.replace("conveyor_worker_rollups AS", "conveyor_worker_rollups_all AS")
    .replace(", ".join(WORKER_ROLLUP_COLUMNS), ", ".join(WORKER_ROLLUP_ALL_COLUMNS))
    .replace(", ".join(f"%({c})s" for c in WORKER_ROLLUP_COLUMNS),
             ", ".join(f"%({c})s" for c in WORKER_ROLLUP_ALL_COLUMNS))
    .replace("(hour, worker_id, tenant)", "(hour, worker_id)"))

ERROR_ROLLUP_COLUMNS = ("width", "minute", "fingerprint", "task", "queue", "tenant",
                        "failures", "first_seen", "last_seen")
UPSERT_ERROR_ROLLUP = (
    f"INSERT INTO {{schema}}.conveyor_error_rollups AS r ({', '.join(ERROR_ROLLUP_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in ERROR_ROLLUP_COLUMNS)}) "
    "ON CONFLICT (width, minute, fingerprint, task, queue, tenant) DO UPDATE SET "
    "failures = r.failures + excluded.failures, "
    "first_seen = CASE WHEN excluded.first_seen < r.first_seen THEN excluded.first_seen "
    "ELSE r.first_seen END, "
    "last_seen = CASE WHEN excluded.last_seen > r.last_seen THEN excluded.last_seen "
    "ELSE r.last_seen END")

# all tenants' and queues' error rollups (migration 0023): the same per (width, minute,
# fingerprint, task), so a long range of every tenant reads a row per group and task an hour,
# not one per queue and tenant too (261,805 hour rows for 289,218 failed attempts at 1M jobs)
ERROR_ROLLUP_ALL_COLUMNS = ("width", "minute", "fingerprint", "task", "failures",
                            "first_seen", "last_seen")
UPSERT_ERROR_ROLLUP_ALL = (
    UPSERT_ERROR_ROLLUP.replace("conveyor_error_rollups AS", "conveyor_error_rollups_all AS")
    .replace(", ".join(ERROR_ROLLUP_COLUMNS), ", ".join(ERROR_ROLLUP_ALL_COLUMNS))
    .replace(", ".join(f"%({c})s" for c in ERROR_ROLLUP_COLUMNS),
             ", ".join(f"%({c})s" for c in ERROR_ROLLUP_ALL_COLUMNS))
    .replace("(width, minute, fingerprint, task, queue, tenant)",
             "(width, minute, fingerprint, task)"))

_SCOPE = """
  AND (CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s)
  AND (CAST(%(task)s AS TEXT) IS NULL OR task = %(task)s)
  AND (CAST(%(queue)s AS TEXT) IS NULL OR queue = %(queue)s)"""

# Per point of the range and (task, queue): the summed counts, time and histogram, of the
# folded rollups and of the pending attempts not folded yet (a second or so of them:
# maintenance folds), in one statement, so one snapshot: a row is pending or folded, never
# both. Exact without a fold (a write, waiting for the write lock) before each read.
_TASK_SCOPE = _SCOPE.replace("tenant = %(tenant)s", "tenant = coalesce(%(tenant)s, '')")
# over `k`: pending rows first counted per minute, key, outcome, bucket. The counts as
# INTEGER, the rollups' type: in their UNION a bigint (PostgreSQL's count) or numeric (a sum
# of it) would make every folded row's 32 counts numeric, summed as such: 70 ms of server
# CPU in a 30-day read of 6,200 rows, against ~15 as integers.
# (named as the rollups' columns, so a statement can read them from the pending rows' own)
_PENDING_SUMS = ", ".join(
    [f"CAST(sum(CASE WHEN k.outcome = '{o}' THEN k.n ELSE 0 END) AS INTEGER) AS {o}"
     for o in OUTCOMES]
    + ["sum(k.duration) AS duration_sum"]
    + [f"CAST(sum(CASE WHEN k.bucket = {i} THEN k.n ELSE 0 END) AS INTEGER) AS {c}"
       for i, c in enumerate(BUCKET_COLUMNS)])


def _tenant_scope(every_tenant: bool) -> str:
    """_TASK_SCOPE of all tenants (no tenant line), or of one: a plain `tenant =` (the read
    of one tenant always names it; '' for none), not the scope's `IS NULL OR`, so both
    stores seek conveyor_rollups_tenant (0028) to the tenant's rows of the range, not walk
    the key's range of every tenant (30 days: 5,956 rows of 310,000)."""
    if every_tenant:
        return "\n".join(line for line in _TASK_SCOPE.splitlines() if "tenant" not in line)
    return _TASK_SCOPE.replace(
        "(CAST(%(tenant)s AS TEXT) IS NULL OR tenant = coalesce(%(tenant)s, ''))",
        "tenant = %(tenant)s")


EVERY_TENANT_SCOPE = _tenant_scope(True)  # a task and a queue filter


def task_pending(floor: Callable[[str], str], every_tenant: bool = False) -> str:
    """The tasks read's pending rows (task_rollups), summed per rollup row of the range
    (its minute), task and queue: columns minute, task, queue and _ADDED's."""
    minute = f"{floor('a.ended_at / 60')} * 60 / %(width)s * %(width)s / 60"  # its row's
    scope = _tenant_scope(every_tenant)
    # the pending rows of the range's rollup rows: ended from its first minute to the end of
    # its last row (%(pending_end)s, in seconds): their row's minute is in range exactly
    # then, and a range of ended_at is cheaper than that minute's expression (twice a row).
    # They are grouped first per (task, queue, outcome, bucket, their row's minute), then
    # per row, task and queue. The count an INTEGER: PostgreSQL sums a bigint (its count's
    # type) as numeric, 33 sums a row (~8 -> ~5 ms for 4,000 rows). No index orders them
    # (PostgreSQL hashes; SQLite sorts: its 0031 index, which grouped them as walked, cost
    # every settle's insert more than it saved a read of a second's pending rows, and 0038
    # dropped it: bench/results/2026-12-11-sqhist.md)
    return (f"SELECT k.m * 60 / %(width)s * %(width)s / 60 AS minute, k.task, k.queue, "
            f"{_PENDING_SUMS} FROM (SELECT a.task, a.queue, a.outcome, a.bucket, "
            f"{minute} AS m, "
            "CAST(count(*) AS INTEGER) AS n, "
            "sum(a.duration) AS duration "
            "FROM {schema}.conveyor_attempts_pending AS a "
            "WHERE a.ended_at >= %(first_minute)s * 60 AND a.ended_at < %(pending_end)s"
            + scope.replace("tenant =", "coalesce(a.tenant, '') =")
            .replace(" task =", " a.task =").replace(" queue =", " a.queue =")
            + " GROUP BY 1, 2, 3, 4, 5) AS k GROUP BY 1, 2, 3")


# A rollup row's (or a pending row's minute's) entry in the tasks read's points:
# `point:attempts:failures` (history_rows.task_summaries adds up a point's entries)
POINT_ENTRY = ("CAST((minute - %(first_minute)s) / %(minutes_per_point)s AS TEXT) || ':' "
               f"|| CAST({' + '.join(OUTCOMES)} AS TEXT) || ':' || "
               f"CAST({' + '.join(o for o in OUTCOMES if Outcome(o).failed)} AS TEXT)")
# the tasks read's figures of a (task, queue) from rows of _ADDED's columns: the counts by
# outcome, the duration's sum, the histogram as comma-separated counts
TASK_TOTALS = (", ".join(f"CAST(sum({o}) AS BIGINT) AS {o}" for o in OUTCOMES)
               + ", sum(duration_sum) AS duration, "
               + " || ',' || ".join(f"sum({c})" for c in BUCKET_COLUMNS) + " AS histogram")


def task_rollups(floor: Callable[[str], str], every_tenant: bool = False,
                 tenant_index: str = "",
                 joined: Callable[[str], str] = lambda x: f"string_agg({x}, ',')") -> str:
    """TASK_ROLLUPS in a dialect (`floor` truncates a positive number to an integer): of the
    range's tenant, or, `every_tenant`, of all tenants summed (conveyor_rollups_all, 0016:
    a row per minute, task and queue, not one per tenant too). `tenant_index` (SQLite's
    ` INDEXED BY conveyor_rollups_tenant`) follows the tenant's table: SQLite's planner,
    with no statistics, prefers the key's range of every tenant (no lookup per row) to the
    tenant's index (0028: a lookup in the key per row), 2-3x slower over 30 days. `joined`:
    the dialect's aggregate joining texts with commas (PostgreSQL's string_agg, SQLite's
    group_concat)."""
    scope = _tenant_scope(every_tenant)
    pending = task_pending(floor, every_tenant)
    folded = (f"SELECT minute, task, queue, {', '.join(_ADDED)} FROM {{schema}}."
              f"{'conveyor_rollups_all' if every_tenant else 'conveyor_rollups' + tenant_index} "
              "WHERE width = %(width)s AND minute >= %(first_minute)s "
              "AND minute < %(end_minute)s" + scope)
    # one row per task and queue: the range's outcome counts, duration sum and histogram,
    # and its points as text (`point:attempts:failures`, comma-separated): a month of 200
    # task/queue pairs sends 200 rows, not 6,200 (the client's decoding of those was a
    # third of a 30-day read). One entry per rollup row (and pending row's minute), not
    # per point: a point of several rows has several entries, which the client adds up
    # (history_rows.task_summaries), so the rows are grouped once, per task and queue, not
    # a second time per point and joined (over an hour or a day rollup row is a point
    # anyway): one pass over the rows, no table of them kept for two (SQLite's CPU of a
    # 30-day read -20 %, PostgreSQL's server time -20 %)
    return (f"SELECT task, queue, {TASK_TOTALS}, {joined(POINT_ENTRY)} AS points "
            f"FROM ({folded} UNION ALL {pending}) AS r GROUP BY task, queue")


def queue_rollups(floor: Callable[[str], str], every_tenant: bool = False) -> str:
    """Per point of the range and queue, every task summed: the attempts by outcome, of the
    rollups and the pending attempts (as task_rollups, in one statement). What the charts
    of the overview and the queues page draw: at most points x queues rows, where
    task_rollups returns one per point, task and queue with the histogram's columns too
    (an hour of 200 task/queue pairs: 12,000 rows of 30 values, summed again in Python).

    The charts' read sums at most %(pending_limit)s pending rows (history_reads.PENDING_READ):
    exact while maintenance keeps up (it folds about every second), bounded when it falls
    behind (the rows past the limit show once folded). They are counted per minute and queue
    first, so the outer sum sees a few rows per minute, not one per attempt."""
    minute = f"{floor('a.ended_at / 60')} * 60 / %(width)s * %(width)s / 60"  # its row's
    scope = _tenant_scope(every_tenant)
    taken = ("SELECT a.ended_at, a.queue, a.outcome FROM {schema}.conveyor_attempts_pending AS a "
             f"WHERE {minute} >= %(first_minute)s AND {minute} < %(end_minute)s"
             + scope.replace("tenant =", "coalesce(a.tenant, '') =")
             .replace(" task =", " a.task =").replace(" queue =", " a.queue =")
             + " LIMIT %(pending_limit)s")
    pending = (f"SELECT {minute} AS minute, a.queue, "
               + ", ".join(f"count(*) FILTER (WHERE a.outcome = '{o}')" for o in OUTCOMES)
               + f" FROM ({taken}) AS a WHERE true GROUP BY 1, 2")
    folded = (f"SELECT minute, queue, {', '.join(OUTCOMES)} FROM {{schema}}."
              f"{'conveyor_rollups_all' if every_tenant else 'conveyor_rollups'} "
              "WHERE width = %(width)s AND minute >= %(first_minute)s "
              "AND minute < %(end_minute)s" + scope)
    return ("SELECT (minute - %(first_minute)s) / %(minutes_per_point)s AS point, queue, "
            + ", ".join(f"CAST(sum({o}) AS BIGINT)" for o in OUTCOMES)
            + f" FROM ({folded} UNION ALL {pending}) AS r GROUP BY 1, queue")


_INFO = ("job_id, attempt, task, queue, tenant, worker_id, started_at, duration, outcome, cpu, "
         "rss, host, error_type, error_message, fingerprint")


def _tail(columns: str, where: str) -> str:
    """The pending attempt rows (not folded yet) a read adds to the folded ones: the first
    %(pending_limit)s of them (history_reads.PENDING_READ; on SQLite the fold's next), then
    filtered: the read costs at most that many rows, exact while maintenance keeps up (it
    folds about every second), a little behind when it does not (the rest show once folded).
    One statement, so one snapshot: a row is pending or folded, never both."""
    return (f"SELECT {columns} FROM (SELECT * FROM {{schema}}.conveyor_attempts_pending "
            f"LIMIT %(pending_limit)s) AS p WHERE {where}")


_RANGE = "ended_at >= %(start)s AND ended_at < %(end)s"

# The slowest attempts' order: duration, then the newest end, then job and attempt (a total
# order, so a row's place does not hang on the plan, nor on whether it is folded yet)
_SLOW_ORDER = "duration DESC, ended_at DESC, job_id DESC, attempt DESC"
# The width of a part of conveyor_attempts_slow_10min (0025), in seconds: a fold's rows go to
# the current part only, cheap while a part holds up to ~60,000 attempts (100/s for 10
# minutes); the read takes one step per part of its range (bench/results/2026-12-07-slow10.md)
SLOW_PART = 600


def _slow_filter(part: str, of: str, every_tenant: bool) -> str:
    """The range and scope of one part (`part`: the dialect's expression of
    conveyor_attempts_slow_10min; `of`: that part). The range's filter applies to its first
    and last parts only: every attempt of a part between is in it. A CASE, not an OR:
    PostgreSQL guesses that a range of an expression keeps 0.5 % of a part's rows
    (`+ended_at` keeps the planner off the ended index), and then reads and sorts the whole
    part (a bitmap scan) rather than walk to the limit. The tenant a plain `tenant = ...`
    (or none), not _SCOPE's OR: the index's last column, so a tenant's entries are picked
    in the index (PostgreSQL: an index condition, not a row fetched for each entry)."""
    scope = _SCOPE.replace("(CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s)",
                           "true" if every_tenant else "tenant = %(tenant)s")
    return (f"{part} = {of} AND CASE WHEN {of} > %(first_part)s AND {of} < %(last_part)s "
            "THEN true ELSE +ended_at >= %(start)s AND +ended_at < %(end)s END" + scope)


def _slowest_of_part(part: str, columns: str, of: str, ties: bool, every_tenant: bool) -> str:
    """The range's slowest attempts of one part down to the cut (slow()), walked from the
    top of the index's part for it. `ties` (PostgreSQL): the index's own order (duration,
    end) and every row tied with the last (FETCH ... WITH TIES), so the walk needs no sort;
    the merge orders the ties by job and attempt."""
    order = ("ORDER BY duration DESC, ended_at DESC FETCH FIRST %(limit)s ROWS WITH TIES"
             if ties else f"ORDER BY {_SLOW_ORDER} LIMIT %(limit)s")
    return (f"SELECT {columns} FROM {{schema}}.conveyor_attempts WHERE "
            f"{_slow_filter(part, of, every_tenant)} AND (duration, ended_at) >= (cut.d, cut.e) "
            + order)


def _top_of_part(part: str, columns: str, of: str, every_tenant: bool) -> str:
    """The slowest attempt of the range in one part (then the newest): one step down the
    index."""
    return (f"SELECT {columns} FROM {{schema}}.conveyor_attempts "
            f"WHERE {_slow_filter(part, of, every_tenant)} "
            "ORDER BY duration DESC, ended_at DESC LIMIT 1")


# The prune's mark (0026): the newest part it may have deleted attempts from
_PRUNED = "(SELECT part FROM {schema}.conveyor_slow_tops_pruned)"


def _kept_tops(every_tenant: bool, named: str | None = None) -> str:
    """The tops the fold kept (conveyor_slow_tops, 0026) of the range's parts between its
    first and last (wholly in range) above the prune's mark: exact, since none of their
    attempts was deleted after the fold kept their top. `named` ('task' or 'queue'): the
    tops of the read's task or queue (conveyor_slow_tops_named, 0027). Columns part, top,
    top_end."""
    tenant = "WHERE true" if every_tenant else "WHERE tenant = %(tenant)s"
    table = ("{schema}.conveyor_slow_tops" + ("_all" if every_tenant else "")
             if named is None else
             "{schema}.conveyor_slow_tops_named" + ("_all" if every_tenant else ""))
    name = "" if named is None else f" AND kind = '{named}' AND name = %({named})s"
    return (f"SELECT part, duration, ended_at FROM {table} {tenant}{name}"
            f" AND part > %(first_part)s AND part < %(last_part)s AND part > {_PRUNED}")


def slow(floor: Callable[[str], str], lateral: bool, every_tenant: bool,
         kept: bool = False, named: str | None = None) -> str:
    """The slowest attempts of a range, in a dialect, from conveyor_attempts_slow_10min: a
    fold's rows land in the current 10 minutes' part of it, not all over an index of every
    duration. Two steps over the range's parts (%(first_part)s to %(last_part)s, within
    those of the stored attempts):
    1. each part's slowest attempt, (duration, end) (`tops`: one index step a part; parts
       with no attempt in range and scope drop out). The %(limit)s-th highest of those is
       the cut: that many attempts are at least that high, so no attempt below the cut can
       be among the slowest %(limit)s (the read's order is the index's, then job and
       attempt: rows equal to the cut are kept).
    2. the parts whose top reaches the cut (%(limit)s of them, more only on ties of both
       duration and end: not one per part of a month), each walked from its top down to
       the cut, at most %(limit)s; with the pending tail, the top %(limit)s of those. No
       cut (fewer parts with an attempt than the limit): every part is walked.
    `kept` (no task or queue filter): step 1 reads the tops the fold kept (_kept_tops) of
    the parts wholly in range above the prune's mark (a month: ~4,320 short rows), and
    steps down the index only for the range's first and last parts and the parts at or
    below the mark (partly pruned, or with pruned tops); a part above it with no kept top
    has no attempt. With `named` too ('task' or 'queue': the read's filter, not both), the
    tops kept of that task or queue (per tenant, and of every tenant: 0027). Else (a task
    and a queue, or a tenant '') every part is stepped.
    `lateral` (PostgreSQL): a LATERAL per part of a generate_series; else (SQLite) a
    recursive CTE of the parts, each part's top by two steps in the index alone (its
    duration; then its end, a step to that duration: no row read, and one tenant's walk
    past the others' entries made once), its rows picked by id from a correlated IN.
    `every_tenant`: the read of all tenants (%(tenant)s None), else of %(tenant)s alone.
    Columns: _INFO's, then ended_at."""
    part = floor(f"ended_at / {SLOW_PART}")
    # the range's parts within those of the stored attempts (two ends of the ended index):
    # a range from 1970 walks the parts of the retention, not millions of empty ones
    first, last = (f"CAST(%({p})s AS BIGINT), " + floor(
        f"(SELECT {f}(ended_at) FROM {{schema}}.conveyor_attempts) / {SLOW_PART}")
        for p, f in (("first_part", "min"), ("last_part", "max")))
    if kept:  # stepped: the parts up to the prune's mark (or the first), then the last
        last += (f", {'greatest' if lateral else 'max'}(CAST(%(first_part)s AS BIGINT), "
                 f"{_PRUNED})")
    # no cut (fewer parts than the limit): (-1, -1) is below every attempt
    cut = "cut(d, e) AS MATERIALIZED (SELECT " + ", ".join(
        f"coalesce((SELECT {c} FROM tops ORDER BY top DESC, top_end DESC "
        "LIMIT 1 OFFSET %(limit)s - 1), -1)" for c in ("top", "top_end")) + ") "
    if lateral:  # greatest and least ignore a NULL (no attempt stored: the range's parts)
        parts = f"generate_series(greatest({first}), least({last}))"
        if kept:
            parts = f"(SELECT * FROM {parts} UNION SELECT CAST(%(last_part)s AS BIGINT))"
        head = (f"WITH tops AS MATERIALIZED (SELECT p.part, t.top, t.top_end FROM "
                f"{parts} AS p(part) CROSS JOIN LATERAL ("
                + _top_of_part(part, "duration AS top, ended_at AS top_end", "p.part", every_tenant)
                + ") AS t" + (f" UNION ALL {_kept_tops(every_tenant, named)}" if kept else "")
                + "), " + cut)
        folded = ("SELECT f.* FROM tops CROSS JOIN cut CROSS JOIN LATERAL ("
                  + _slowest_of_part(part, _INFO + ", ended_at", "tops.part", True, every_tenant)
                  + ") AS f WHERE (tops.top, tops.top_end) >= (cut.d, cut.e)")
    else:  # max and min of a NULL are NULL: no part matches (none is stored)
        stepped = "stepped" if kept else "parts"
        head = (f"WITH RECURSIVE parts(part) AS (SELECT max({first}) UNION ALL "
                f"SELECT part + 1 FROM parts WHERE part < min({last})), "
                # (the seed is a part even above the mark: the first stored one)
                + ("stepped(part) AS (SELECT part FROM parts WHERE part <= max(CAST("
                   f"%(first_part)s AS BIGINT), {_PRUNED}) UNION "
                   "SELECT CAST(%(last_part)s AS BIGINT)), " if kept else "")
                + "durations AS MATERIALIZED (SELECT part, ("
                + _top_of_part(part, "duration", f"{stepped}.part", every_tenant)
                + f") AS top FROM {stepped}), tops AS MATERIALIZED (SELECT part, top, ("
                + _top_of_part(part, "ended_at", "durations.part", every_tenant).replace(
                    " ORDER BY", " AND duration = durations.top ORDER BY")
                + ") AS top_end FROM durations WHERE top IS NOT NULL"
                + (f" UNION ALL {_kept_tops(every_tenant, named)}" if kept else "") + "), " + cut)
        folded = ("SELECT " + ", ".join(f"a.{c}" for c in _INFO.split(", "))
                  + ", a.ended_at FROM tops, cut, {schema}.conveyor_attempts AS a "
                  "WHERE (tops.top, tops.top_end) >= (cut.d, cut.e) AND a.id IN ("
                  + _slowest_of_part(part, "id", "tops.part", False, every_tenant) + ")")
    return (head + f"SELECT * FROM ({folded} UNION ALL "
            + _tail(_INFO + ", ended_at", _RANGE + _SCOPE)
            + ") AS s ORDER BY 8 DESC, 16 DESC, 1 DESC, 2 DESC LIMIT %(limit)s")


JOB_ATTEMPTS = ("SELECT " + _INFO + " FROM {schema}.conveyor_attempts WHERE job_id = %(id)s "
                "AND (CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s) "
                "ORDER BY attempt, id")

# Per (group, task) in range: the counts, first and last seen. The failed attempts' ended
# index (0023: partial, failed attempts only, covering) reads the range's failed attempts
# alone; before it, `+ended_at` kept the planner off the index of every attempt, and
# PostgreSQL read the whole table (a parallel seq scan of 1.09M rows for 10,000 kept).
ERROR_GROUPS = """
SELECT fingerprint, task, count(*), min(ended_at), max(ended_at) FROM (
SELECT fingerprint, task, ended_at FROM {schema}.conveyor_attempts
WHERE fingerprint IS NOT NULL AND ended_at >= %(start)s AND ended_at < %(end)s""" + _SCOPE + """
UNION ALL """ + _tail("fingerprint, task, ended_at",
                      "fingerprint IS NOT NULL AND " + _RANGE + _SCOPE) + """) AS a
GROUP BY fingerprint, task"""

# The same from the error rollups of one width (whole hours or days from the range's start),
# and the pending rows that will fold into them (ended from the first minute to the end of
# the last rollup row: %(pending_end)s)
ERROR_GROUP_ROLLUPS = """
SELECT fingerprint, task, CAST(sum(n) AS BIGINT), min(first_seen), max(last_seen) FROM (
SELECT fingerprint, task, failures AS n, first_seen, last_seen
FROM {schema}.conveyor_error_rollups
WHERE width = %(width)s AND minute >= %(first_minute)s AND minute < %(end_minute)s""" + (
    _SCOPE.replace("tenant = %(tenant)s", "tenant = coalesce(%(tenant)s, '')")) + """
UNION ALL """ + _tail(
    "fingerprint, task, 1, ended_at, ended_at",
    "fingerprint IS NOT NULL AND ended_at >= %(first_minute)s * 60 "
    "AND ended_at < %(pending_end)s" + _SCOPE) + """) AS a
GROUP BY fingerprint, task"""

# The same of every tenant and queue, from conveyor_error_rollups_all (0023)
ERROR_GROUP_ROLLUPS_ALL = (
    ERROR_GROUP_ROLLUPS.replace("{schema}.conveyor_error_rollups\n",
                                "{schema}.conveyor_error_rollups_all\n", 1)
    .replace(_SCOPE.replace("tenant = %(tenant)s", "tenant = coalesce(%(tenant)s, '')"),
             "\n  AND (CAST(%(task)s AS TEXT) IS NULL OR task = %(task)s)", 1))

# The same of one tenant: a plain `tenant =` (not the scope's `IS NULL OR`), so both
# stores seek conveyor_error_rollups_tenant (0023) to the tenant's rows of the range
ERROR_GROUP_ROLLUPS_TENANT = ERROR_GROUP_ROLLUPS.replace(
    "AND (CAST(%(tenant)s AS TEXT) IS NULL OR tenant = coalesce(%(tenant)s, ''))",
    "AND tenant = %(tenant)s", 1)

# The same of a queue (every tenant): a plain `queue =`, so both stores seek
# conveyor_error_rollups_queue (0028) to the queue's rows of the range, not scan every
# queue's (a month: 13,323 of 555,000 rows, a parallel seq scan on PostgreSQL)
ERROR_GROUP_ROLLUPS_QUEUE = ERROR_GROUP_ROLLUPS.replace(
    "AND (CAST(%(queue)s AS TEXT) IS NULL OR queue = %(queue)s)\nUNION ALL",
    "AND queue = %(queue)s\nUNION ALL", 1)

# A group's newest attempt (its type, message and sample job), found by the errors index
GROUP_NEWEST = """
SELECT fingerprint, error_type, error_message, job_id FROM {schema}.conveyor_attempts
WHERE fingerprint = %(fingerprint)s AND ended_at = %(last)s
  AND (CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s) LIMIT 1"""

# The same, of the groups whose newest attempt is pending still (fingerprint, type, message,
# job, ended)
PENDING_NEWEST = _tail(
    "fingerprint, error_type, error_message, job_id, ended_at",
    "fingerprint IS NOT NULL AND (CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s)")

# A group's dead jobs: dead_groups.py (kept as jobs change, not read from the history)

_WORKER_COLUMNS = ("worker_id, host, pid, CASE WHEN outcome IN ('retried', 'dead', 'lost') "
                   "THEN 1 ELSE 0 END AS failed, duration, coalesce(cpu, 0) AS cpu, rss")
WORKER_ATTEMPTS = """
SELECT worker_id, max(host), max(pid), count(*), sum(failed), sum(duration), sum(cpu), max(rss)
FROM (SELECT """ + _WORKER_COLUMNS + """ FROM {schema}.conveyor_attempts
WHERE ended_at >= %(start)s AND ended_at < %(end)s AND worker_id IS NOT NULL""" + _SCOPE + """
UNION ALL """ + _tail(_WORKER_COLUMNS, _RANGE + " AND worker_id IS NOT NULL" + _SCOPE) + """
) AS a GROUP BY worker_id"""

# The same figures from the hour rollups (ranges of hours; no task or queue filter), and the
# pending rows of those hours
_TENANT = "(CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s)"
WORKER_HOURS = """
SELECT worker_id, max(host), max(pid), CAST(sum(attempts) AS BIGINT),
       CAST(sum(failures) AS BIGINT), sum(busy), sum(cpu), max(peak_rss) FROM (
SELECT worker_id, host, pid, attempts, failures, busy, cpu, peak_rss
FROM {schema}.conveyor_worker_rollups
WHERE hour >= %(first_hour)s AND hour < %(end_hour)s AND """ + _TENANT + """
UNION ALL """ + _tail(
    "worker_id, host, pid, 1, CASE WHEN outcome IN ('retried', 'dead', 'lost') THEN 1 ELSE 0 "
    "END, duration, coalesce(cpu, 0), rss",
    "ended_at >= %(first_hour)s * 3600 AND ended_at < %(end_hour)s * 3600 "
    "AND worker_id IS NOT NULL AND " + _TENANT) + """) AS a
GROUP BY worker_id"""

# The same of one tenant, a plain `tenant =`: its rows by conveyor_worker_rollups_tenant (0028)
WORKER_HOURS_TENANT = WORKER_HOURS.replace(
    "AND " + _TENANT + "\nUNION ALL", "AND tenant = %(tenant)s\nUNION ALL", 1)

# The same of every tenant, from conveyor_worker_rollups_all (0028): a row per hour and
# worker, not one per tenant too (a month of 4 workers and 50 tenants: 2,880 rows, not
# 144,000)
WORKER_HOURS_ALL = WORKER_HOURS.replace(
    "FROM {schema}.conveyor_worker_rollups\nWHERE hour >= %(first_hour)s AND hour < "
    "%(end_hour)s AND " + _TENANT,
    "FROM {schema}.conveyor_worker_rollups_all\nWHERE hour >= %(first_hour)s AND hour < "
    "%(end_hour)s", 1)

RUNNING_NOW = """
SELECT worker_id, task FROM {schema}.conveyor_jobs
WHERE state = 'running' AND worker_id IS NOT NULL
  AND (CAST(%(tenant)s AS TEXT) IS NULL OR tenant = %(tenant)s)"""

PRUNE_ATTEMPTS = """
DELETE FROM {schema}.conveyor_attempts WHERE id IN (
    SELECT id FROM {schema}.conveyor_attempts WHERE ended_at < %(before)s LIMIT %(limit)s)"""

# Before the attempts of a prune are deleted: its mark raised to the newest part it may
# delete from (%(part)s, of its cut-off), and the tops kept of the parts up to it deleted
# (the slow read steps down the index for those parts: history_sql.slow)
PRUNE_SLOW_MARK = ("UPDATE {schema}.conveyor_slow_tops_pruned SET part = %(part)s "
                   "WHERE part < %(part)s")
PRUNE_SLOW_TOPS = "DELETE FROM {schema}.conveyor_slow_tops WHERE part <= %(part)s"
PRUNE_SLOW_TOPS_ALL = "DELETE FROM {schema}.conveyor_slow_tops_all WHERE part <= %(part)s"
PRUNE_SLOW_TOPS_NAMED = ("DELETE FROM {schema}.conveyor_slow_tops_named "
                         "WHERE part <= %(part)s")
PRUNE_SLOW_TOPS_NAMED_ALL = ("DELETE FROM {schema}.conveyor_slow_tops_named_all "
                             "WHERE part <= %(part)s")

PRUNE_ROLLUPS = "DELETE FROM {schema}.conveyor_rollups WHERE minute < %(before_minute)s"
PRUNE_ALL_ROLLUPS = ("DELETE FROM {schema}.conveyor_rollups_all "
                     "WHERE minute < %(before_minute)s")
PRUNE_ERROR_ROLLUPS = ("DELETE FROM {schema}.conveyor_error_rollups "
                       "WHERE minute < %(before_minute)s")
PRUNE_ERROR_ROLLUPS_ALL = ("DELETE FROM {schema}.conveyor_error_rollups_all "
                           "WHERE minute < %(before_minute)s")
PRUNE_WORKER_ROLLUPS = ("DELETE FROM {schema}.conveyor_worker_rollups "
                        "WHERE hour < %(before_minute)s / 60")
PRUNE_WORKER_ROLLUPS_ALL = PRUNE_WORKER_ROLLUPS.replace("_rollups ", "_rollups_all ")
