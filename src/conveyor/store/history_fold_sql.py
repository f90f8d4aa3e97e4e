"""The history fold's statements, written once for both dialects: each reads the pending
attempt rows being folded as `a` (PostgreSQL: the rows its DELETE ... RETURNING took;
SQLite: the pending rows up to a rowid watermark) and inserts them into conveyor_attempts
or adds them to one kind of rollup, grouped on the server in key order (concurrent folds
lock rollup rows in one order: no deadlock). `floor` says how the dialect truncates a
positive number to an integer."""

from __future__ import annotations

from collections.abc import Callable

from ..history.records import Outcome
from ..history.rollup import BUCKETS, OUTCOMES
from . import history_sql as hq

PENDING_COLUMNS = (*hq.ATTEMPT_COLUMNS, "bucket")  # bucket: history/rollup.py's, of duration

_FAILED = "a.outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES if Outcome(o).failed) + ")"


# The task rollups' sums over `k`: the rows first counted per (minute, key, outcome, bucket),
# so the 33 conditional sums run over those few groups, not over every row and width
_SUMS = ", ".join([f"sum(CASE WHEN k.outcome = '{o}' THEN k.n ELSE 0 END)" for o in OUTCOMES]
                  + ["sum(k.duration)"]
                  + [f"sum(CASE WHEN k.bucket = {i} THEN k.n ELSE 0 END)"
                     for i in range(BUCKETS)])


def _widths(*widths: int) -> str:
    return "(" + " UNION ALL ".join(f"SELECT {w} AS width" for w in widths) + ") AS w"


def _head(upsert: str) -> str:
    return upsert.split(" VALUES ")[0]


def _tail(upsert: str) -> str:
    return "ON CONFLICT " + upsert.split(" ON CONFLICT ")[1]


def keys_statement(source: str, floor: Callable[[str], str]) -> str:
    """The rows of `source` counted per (minute, task, queue, tenant, outcome, bucket): the
    `keys` that fold_statements' two task rollups can share (a SELECT, columns minute, task,
    queue, tenant, outcome, bucket, n, duration)."""
    return (f"SELECT {floor('a.ended_at / 60')} AS minute, a.task, a.queue, "
            "coalesce(a.tenant, '') AS tenant, a.outcome, a.bucket, "
            "CAST(count(*) AS INTEGER) AS n, sum(a.duration) AS duration "
            f"FROM {source} WHERE true GROUP BY 1, 2, 3, 4, 5, 6")


# What worker_keys_upsert's rows are keyed by (one row per key: its table's UNIQUE key); an
# attempt with no fingerprint has '' there (NULLs would never be equal: a row each)
WORKER_KEY = ("minute", "task", "queue", "tenant", "outcome", "bucket", "worker_id",
              "fingerprint")
WORKER_KEY_COLUMNS = (*WORKER_KEY[:6], "n", "duration", "worker_id", "host", "pid",
                      "failures", "cpu", "rss", "fingerprint", "first_seen", "last_seen",
                      "slowest", "slowest_end")


def worker_keys_select(source: str, floor: Callable[[str], str]) -> str:
    """The rows of `source` counted per WORKER_KEY, as one SELECT of WORKER_KEY_COLUMNS
    (GROUP BY): what worker_keys_upsert fills its table with, in one statement that a
    PostgreSQL fold can hold as a CTE, so that its six rollups read these few rows rather
    than group every row of `source` once each."""
    return (f"SELECT {floor('a.ended_at / 60')} AS minute, a.task, a.queue, "
            "coalesce(a.tenant, '') AS tenant, a.outcome, a.bucket, "
            "CAST(count(*) AS INTEGER) AS n, sum(a.duration) AS duration, a.worker_id, "
            "max(a.host) AS host, max(a.pid) AS pid, "
            f"CAST(count(*) FILTER (WHERE {_FAILED}) AS INTEGER) AS failures, "
            "sum(coalesce(a.cpu, 0)) AS cpu, max(a.rss) AS rss, "
            "coalesce(a.fingerprint, '') AS fingerprint, min(a.ended_at) AS first_seen, "
            f"max(a.ended_at) AS last_seen FROM {source} "
            "GROUP BY 1, 2, 3, 4, 5, 6, a.worker_id, 15")


def _larger(column: str) -> str:
    """max() of two values as the aggregate counts it: NULL only when both are."""
    return (f"{column} = CASE WHEN k.{column} IS NULL OR excluded.{column} > k.{column} "
            f"THEN excluded.{column} ELSE k.{column} END")


def _smaller(column: str) -> str:
    """min() of two values that are never NULL."""
    return (f"{column} = CASE WHEN excluded.{column} < k.{column} "
            f"THEN excluded.{column} ELSE k.{column} END")


def worker_keys_upsert(source: str, floor: Callable[[str], str], keys: str) -> str:
    """Fills `keys` (a table of WORKER_KEY_COLUMNS, unique on WORKER_KEY) with the rows of
    `source` counted per (minute, task, queue, tenant, outcome, bucket, worker, error
    group), and what the worker rollups add up (host, pid and rss their largest, failures,
    cpu), the error rollups (first and last seen) and the slow tops (the key's slowest
    row's duration and end, the highest by (duration, end): fine_tops_from_keys): the
    `keys` fold_statements' task rollups and, with `worker_keys`, its worker and error
    rollups and the slow tops all share. Each row is added to its key's row by an upsert,
    not grouped: the few keys' rows are looked up in their unique index, where a GROUP BY
    sorts every row first."""
    slower = ("(excluded.slowest, excluded.slowest_end) > (k.slowest, k.slowest_end)")
    columns = ", ".join(WORKER_KEY_COLUMNS)
    return (f"INSERT INTO {keys} AS k ({columns}) "
            f"SELECT {floor('a.ended_at / 60')}, a.task, a.queue, coalesce(a.tenant, ''), "
            "a.outcome, a.bucket, 1, a.duration, a.worker_id, a.host, a.pid, "
            f"CASE WHEN {_FAILED} THEN 1 ELSE 0 END, coalesce(a.cpu, 0), a.rss, "
            "coalesce(a.fingerprint, ''), a.ended_at, a.ended_at, a.duration, a.ended_at "
            f"FROM {source} WHERE true "
            f"ON CONFLICT ({', '.join(WORKER_KEY)}) DO UPDATE SET n = k.n + 1, "
            "duration = k.duration + excluded.duration, "
            f"{_larger('host')}, {_larger('pid')}, failures = k.failures + excluded.failures, "
            f"cpu = k.cpu + excluded.cpu, {_larger('rss')}, {_smaller('first_seen')}, "
            f"{_larger('last_seen')}, "
            # both from the row before this update (an upsert's SET reads k's old values)
            f"slowest = CASE WHEN {slower} THEN excluded.slowest ELSE k.slowest END, "
            f"slowest_end = CASE WHEN {slower} THEN excluded.slowest_end "
            "ELSE k.slowest_end END")


def fold_statements(source: str, floor: Callable[[str], str], keys: str | None = None,
                    worker_keys: bool = False) -> tuple[str, ...]:
    """(attempts insert, task rollups, worker rollups, error-group rollups, all tenants' task
    rollups, all tenants' error-group rollups: 0023), each over the rows of `source` (a table
    expression aliased `a`). Every SELECT has a WHERE: SQLite needs one before an upsert's
    ON CONFLICT. With `keys` (a table holding keys_statement's rows of the same `source`),
    the two task rollups read those few counted rows instead of grouping every row of
    `source` twice; with `worker_keys` too (`keys` holding worker_keys_upsert's rows), so do
    the worker and error rollups."""
    at = f"{floor('a.ended_at / w.width')} * w.width / 60"  # a width's first minute
    counted = f"({keys_statement(source, floor)})" if keys is None else keys
    every_tenant = (
        "(SELECT minute, task, queue, outcome, bucket, CAST(sum(n) AS INTEGER) AS n, "
        f"sum(duration) AS duration FROM {keys} WHERE true GROUP BY 1, 2, 3, 4, 5)"
        if keys is not None else
        f"(SELECT {floor('a.ended_at / 60')} AS minute, "
        "a.task, a.queue, a.outcome, a.bucket, CAST(count(*) AS INTEGER) AS n, "
        f"sum(a.duration) AS duration FROM {source} WHERE true GROUP BY 1, 2, 3, 4, 5)")
    return (
        f"INSERT INTO {{schema}}.conveyor_attempts ({', '.join(hq.ATTEMPT_COLUMNS)}) "
        f"SELECT {', '.join(hq.ATTEMPT_COLUMNS)} FROM {source}",
        f"{_head(hq.UPSERT_ROLLUP)} SELECT w.width, k.minute * 60 / w.width * w.width / 60, "
        f"k.task, k.queue, k.tenant, {_SUMS} FROM {counted} AS k "
        f"CROSS JOIN {_widths(60, 3600, 86400)} WHERE true "
        f"GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 {_tail(hq.UPSERT_ROLLUP)}",
        f"{_head(hq.UPSERT_WORKER_ROLLUP)} SELECT k.minute / 60, k.worker_id, k.tenant, "
        "max(k.host), max(k.pid), CAST(sum(k.n) AS INTEGER), CAST(sum(k.failures) AS INTEGER), "
        f"sum(k.duration), sum(k.cpu), max(k.rss) FROM {keys} AS k "
        "WHERE k.worker_id IS NOT NULL "
        f"GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 {_tail(hq.UPSERT_WORKER_ROLLUP)}"
        if worker_keys else
        f"{_head(hq.UPSERT_WORKER_ROLLUP)} SELECT {floor('a.ended_at / 3600')}, "
        "a.worker_id, coalesce(a.tenant, ''), max(a.host), max(a.pid), count(*), "
        f"count(*) FILTER (WHERE {_FAILED}), sum(a.duration), sum(coalesce(a.cpu, 0)), "
        f"max(a.rss) FROM {source} WHERE a.worker_id IS NOT NULL "
        f"GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 {_tail(hq.UPSERT_WORKER_ROLLUP)}",
        f"{_head(hq.UPSERT_ERROR_ROLLUP)} SELECT w.width, "
        "k.minute * 60 / w.width * w.width / 60, k.fingerprint, k.task, k.queue, k.tenant, "
        "CAST(sum(k.n) AS INTEGER), min(k.first_seen), max(k.last_seen) "
        f"FROM {keys} AS k CROSS JOIN {_widths(3600, 86400)} WHERE k.fingerprint <> '' "
        f"GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6 {_tail(hq.UPSERT_ERROR_ROLLUP)}"
        if worker_keys else
        f"{_head(hq.UPSERT_ERROR_ROLLUP)} SELECT w.width, {at}, a.fingerprint, "
        "a.task, a.queue, coalesce(a.tenant, ''), count(*), min(a.ended_at), max(a.ended_at) "
        f"FROM {source} CROSS JOIN {_widths(3600, 86400)} WHERE a.fingerprint IS NOT NULL "
        f"GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6 {_tail(hq.UPSERT_ERROR_ROLLUP)}",
        f"{_head(hq.UPSERT_ALL_ROLLUP)} SELECT w.width, k.minute * 60 / w.width * w.width / 60, "
        f"k.task, k.queue, {_SUMS} FROM {every_tenant} AS k "
        f"CROSS JOIN {_widths(60, 3600, 86400)} WHERE true "
        f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 {_tail(hq.UPSERT_ALL_ROLLUP)}",
        f"{_head(hq.UPSERT_ERROR_ROLLUP_ALL)} SELECT w.width, "
        "k.minute * 60 / w.width * w.width / 60, k.fingerprint, k.task, "
        "CAST(sum(k.n) AS INTEGER), min(k.first_seen), max(k.last_seen) "
        f"FROM {keys} AS k CROSS JOIN {_widths(3600, 86400)} WHERE k.fingerprint <> '' "
        f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 {_tail(hq.UPSERT_ERROR_ROLLUP_ALL)}"
        if worker_keys else
        f"{_head(hq.UPSERT_ERROR_ROLLUP_ALL)} SELECT w.width, {at}, a.fingerprint, a.task, "
        "count(*), min(a.ended_at), max(a.ended_at) "
        f"FROM {source} CROSS JOIN {_widths(3600, 86400)} WHERE a.fingerprint IS NOT NULL "
        f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 {_tail(hq.UPSERT_ERROR_ROLLUP_ALL)}",
    )


def worker_rollups_all(keys: str) -> str:
    """All tenants' worker hours (0028), from `keys` (worker_keys_upsert's rows, as the
    worker rollups of fold_statements read them): the same sums per hour and worker,
    without the tenant, in key order."""
    return (f"{_head(hq.UPSERT_WORKER_ROLLUP_ALL)} SELECT k.minute / 60, k.worker_id, "
            "max(k.host), max(k.pid), CAST(sum(k.n) AS INTEGER), "
            "CAST(sum(k.failures) AS INTEGER), sum(k.duration), sum(k.cpu), max(k.rss) "
            f"FROM {keys} AS k WHERE k.worker_id IS NOT NULL "
            f"GROUP BY 1, 2 ORDER BY 1, 2 {_tail(hq.UPSERT_WORKER_ROLLUP_ALL)}")


_UPSERT_TOP = ("ON CONFLICT ({key}) DO UPDATE SET duration = excluded.duration, "
               "ended_at = excluded.ended_at "
               "WHERE (excluded.duration, excluded.ended_at) > (s.duration, s.ended_at)")


# The fold's rows' tops per (tenant, 10-minute part, task, queue): every kept top (0026's
# per tenant and of every tenant, 0027's per task and queue) is the highest of some of
# these, so the fold groups (SQLite) or sorts (PostgreSQL) its rows once, and the four
# upserts read these few rows.
FINE_COLUMNS = ("tenant", "part", "task", "queue", "duration", "ended_at")


def _named(fine: str) -> str:
    """The rows of `fine` (FINE_COLUMNS) once as their task's, once as their queue's
    (0027): kind, name, tenant, part, duration, ended_at."""
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, f.{kind} AS name, f.tenant, f.part, f.duration, "
        f"f.ended_at FROM {fine} AS f" for kind in ("task", "queue"))


def fine_tops_from_keys(keys: str, fine: str) -> str:
    """SQLite's: `fine` (a table of FINE_COLUMNS) filled from `keys` (worker_keys_upsert's
    rows, each with its key's slowest row): each (tenant, part, task, queue)'s slowest,
    with the end of a key's row that has it (SQLite's bare column of a max()). A part is
    whole minutes (SLOW_PART), so a key's minute says its part: the fold groups its few
    keys' rows here, not every pending row a second time."""
    assert hq.SLOW_PART % 60 == 0
    return (f"INSERT INTO {fine} ({', '.join(FINE_COLUMNS)}) SELECT k.tenant, "
            f"k.minute / {hq.SLOW_PART // 60}, k.task, k.queue, max(k.slowest), "
            f"k.slowest_end FROM {keys} AS k WHERE true GROUP BY 1, 2, 3, 4")


def slow_tops_statements(fine: str) -> tuple[str, str, str, str]:
    """(per tenant, of every tenant, per task and queue and tenant, per task and queue),
    SQLite's: each 10-minute part's slowest row of the fold, read from `fine`
    (fine_tops_from_keys'), upserted into the tops kept (0026, 0027) where it is higher, by
    (duration, end), than the part's kept one. The slowest by max(duration), with the end
    of a row that has it (a group, not a window's sort, which cost the fold ~4 µs a row).
    Of equal durations in one part, which end is kept does not change the read: its cut is
    another part's top or this one's, and an end between two of this part's is in this
    part (history_sql.slow)."""
    named = f"({_named(fine)}) AS n"
    return (
        "INSERT INTO {schema}.conveyor_slow_tops AS s (tenant, part, duration, ended_at) "
        f"SELECT tenant, part, max(duration), ended_at FROM {fine} "
        "WHERE true GROUP BY 1, 2 " + _UPSERT_TOP.format(key="tenant, part"),
        "INSERT INTO {schema}.conveyor_slow_tops_all AS s (part, duration, ended_at) "
        f"SELECT part, max(duration), ended_at FROM {fine} WHERE true "
        "GROUP BY 1 " + _UPSERT_TOP.format(key="part"),
        "INSERT INTO {schema}.conveyor_slow_tops_named AS s "
        "(kind, name, tenant, part, duration, ended_at) "
        f"SELECT kind, name, tenant, part, max(duration), ended_at FROM {named} "
        "WHERE true GROUP BY 1, 2, 3, 4 "
        + _UPSERT_TOP.format(key="kind, name, tenant, part"),
        "INSERT INTO {schema}.conveyor_slow_tops_named_all AS s "
        "(kind, name, part, duration, ended_at) "
        f"SELECT kind, name, part, max(duration), ended_at FROM {named} "
        "WHERE true GROUP BY 1, 2, 3 " + _UPSERT_TOP.format(key="kind, name, part"))


def fine_top_rows(source: str, floor: Callable[[str], str]) -> str:
    """PostgreSQL's: each (tenant, 10-minute part, task, queue)'s slowest and newest row of
    `source`, by one DISTINCT ON (FINE_COLUMNS): what slow_tops_from upserts from."""
    return (f"SELECT DISTINCT ON (1, 2, 3, 4) coalesce(a.tenant, '') AS tenant, "
            f"{floor(f'a.ended_at / {hq.SLOW_PART}')} AS part, a.task, a.queue, a.duration, "
            f"a.ended_at FROM {source} ORDER BY 1, 2, 3, 4, a.duration DESC, a.ended_at DESC")


def slow_tops_from(fine: str) -> tuple[str, str, str, str]:
    """(per tenant, of every tenant, per task and queue and tenant, per task and queue),
    PostgreSQL's: fine_top_rows' rows (named `fine`) upserted into the tops kept (0026,
    0027), each key's highest of them by DISTINCT ON (a few rows sorted, not the fold's
    every row again), in key order."""
    named = f"({_named(fine)}) AS n"
    order = "duration DESC, ended_at DESC"
    return (
        "INSERT INTO {schema}.conveyor_slow_tops AS s (tenant, part, duration, ended_at) "
        f"SELECT DISTINCT ON (tenant, part) tenant, part, duration, ended_at FROM {fine} "
        f"ORDER BY tenant, part, {order} " + _UPSERT_TOP.format(key="tenant, part"),
        "INSERT INTO {schema}.conveyor_slow_tops_all AS s (part, duration, ended_at) "
        f"SELECT DISTINCT ON (part) part, duration, ended_at FROM {fine} "
        f"ORDER BY part, {order} " + _UPSERT_TOP.format(key="part"),
        "INSERT INTO {schema}.conveyor_slow_tops_named AS s "
        "(kind, name, tenant, part, duration, ended_at) "
        "SELECT DISTINCT ON (kind, name, tenant, part) kind, name, tenant, part, duration, "
        f"ended_at FROM {named} ORDER BY kind, name, tenant, part, {order} "
        + _UPSERT_TOP.format(key="kind, name, tenant, part"),
        "INSERT INTO {schema}.conveyor_slow_tops_named_all AS s "
        "(kind, name, part, duration, ended_at) "
        "SELECT DISTINCT ON (kind, name, part) kind, name, part, duration, ended_at "
        f"FROM {named} ORDER BY kind, name, part, {order} "
        + _UPSERT_TOP.format(key="kind, name, part"))
