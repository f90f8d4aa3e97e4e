"""SQLite's tasks read of every tenant over day rows (20 days and more: a month's read),
summed per (task, queue) as the rows are walked (issue 15).

history_sql.task_rollups sums the folded rows and the pending ones in one grouping per
(task, queue) over their UNION: SQLite cannot walk a UNION in the grouping's order, so it
copied every row of the range (a month of 200 task/queue pairs: ~6,200 day rows of 36
columns) into a sorter first. Here the day rows come from conveyor_rollups_all_days (0033:
every tenant's day rows in (task, queue, minute) order, covering) and are summed per pair
as walked, with no sort; the pending rows' own sums per (row, task, queue) join them, and
the outer grouping adds up those few rows (a pair's one folded row, its pending rows'
minutes). The same figures as task_rollups: the counts and histogram are sums of the same
integers, the points the same entries (one per day row, one per pending row's minute), the
duration's sum the same floats added in another order.
"""

from __future__ import annotations

from ..history_sql import (
    EVERY_TENANT_SCOPE,
    POINT_ENTRY,
    ROLLUP_FIGURES,
    TASK_TOTALS,
    for_sqlite,
    task_pending,
)

_SUMMED = ", ".join(f"sum({c}) AS {c}" for c in ROLLUP_FIGURES)
_TAKEN = ", ".join(ROLLUP_FIGURES)


def every_tenant_days() -> str:
    """The tasks read of every tenant over day rows (history_sql.task_rollups' rows), in
    SQLite's dialect. The width is written out: the index is partial (day rows only)."""
    floor = lambda x: f"CAST({x} AS INTEGER)"  # noqa: E731
    folded = (f"SELECT task, queue, {_SUMMED}, group_concat({POINT_ENTRY}, ',') AS points "
              "FROM {schema}.conveyor_rollups_all INDEXED BY conveyor_rollups_all_days "
              "WHERE width = 86400 AND minute >= %(first_minute)s "
              "AND minute < %(end_minute)s" + EVERY_TENANT_SCOPE + " GROUP BY task, queue")
    pending = (f"SELECT task, queue, {_TAKEN}, {POINT_ENTRY} AS points "
               f"FROM ({task_pending(floor, True)}) AS p")
    return for_sqlite(f"SELECT task, queue, {TASK_TOTALS}, group_concat(points, ',') AS points "
                      f"FROM ({folded} UNION ALL {pending}) AS r GROUP BY task, queue")
