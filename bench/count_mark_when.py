"""The count trigger's WHEN per updated row (migration 0036), on a synthetic table in memory:
one UPDATE of 20,000 rows whose trigger stands aside, as the store's summed statements have
it, by the deferral row of 0019 (NOT EXISTS, the row in), by the flipped count_mark of 0036,
by an application function the connection registers (returning 1), and by WHEN 0 (the
floor: the trigger program still entered per row). Best of 7, CPU ns per row
(time.process_time).

    /work/main/.venv/bin/python bench/count_mark_when.py

Figures only: it asserts nothing (2026-12-10-sqdefer.md).
"""

from __future__ import annotations

import sqlite3
import time

ROWS = 20_000
_TRIGGER = """
CREATE TRIGGER counted AFTER UPDATE OF state ON jobs WHEN {when}
BEGIN
    UPDATE counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
    INSERT INTO counts VALUES (new.queue, new.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END"""
_MOVE = "UPDATE jobs SET state = CASE state WHEN 'a' THEN 'b' ELSE 'a' END"
_MARK = ", count_mark = 1 - count_mark"
VARIANTS = (
    ("0019: NOT EXISTS (the deferral row in)",
     "NOT EXISTS (SELECT 1 FROM deferred) AND old.state IS NOT new.state", "", True),
    ("0036: count_mark flipped",
     "new.count_mark = old.count_mark AND NOT EXISTS (SELECT 1 FROM deferred) "
     "AND old.state IS NOT new.state", _MARK, False),
    ("an application function (Python) in WHEN",
     "NOT conveyor_deferred() AND old.state IS NOT new.state", "", False),
    ("floor: WHEN 0", "0", "", False),
    ("floor, count_mark flipped: WHEN 0", "0", _MARK, False),
)


def per_row(when: str, mark: str, deferral_row: bool) -> float:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT, queue TEXT, "
                 "count_mark INTEGER NOT NULL DEFAULT 0)")
    conn.execute("CREATE TABLE deferred (one INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE counts (queue TEXT, state TEXT, n INT, "
                 "PRIMARY KEY (queue, state))")
    conn.create_function("conveyor_deferred", 0, lambda: 1, deterministic=False)
    conn.execute(_TRIGGER.format(when=when))
    conn.executemany("INSERT INTO jobs (id, state, queue) VALUES (?, 'a', 'q')",
                     [(i,) for i in range(ROWS)])
    best = float("inf")
    for _ in range(7):
        conn.execute("BEGIN")
        if deferral_row:
            conn.execute("INSERT INTO deferred VALUES (1)")
        started = time.process_time()
        conn.execute(_MOVE + mark)
        best = min(best, time.process_time() - started)
        if deferral_row:
            conn.execute("DELETE FROM deferred")
        conn.execute("COMMIT")
    conn.close()
    return best / ROWS * 1e9


def main() -> None:
    for name, when, mark, deferral_row in VARIANTS:
        print(f"{name:42} {per_row(when, mark, deferral_row):6.0f} ns/row", flush=True)


if __name__ == "__main__":
    main()
