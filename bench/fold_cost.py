"""The SQLite history's per-row write costs apart from a drain, for instruction counts
under valgrind callgrind (deterministic: no interval work, no threads). On a fresh file:
`--rows` pending attempt rows written as a drain's settles write them (the settle's own
insert, history.write_history's plain rows, `--trip` rows a transaction), then, with
`--fold`, store.fold_history(10_000) until the table is empty. Figures only.

    PYTHONHASHSEED=0 PYTHONPATH=src valgrind --tool=callgrind --callgrind-out-file=F.out \
        .venv/bin/python bench/fold_cost.py --rows 3000 [--fold]

    insert per row = (Ir(3000 rows) - Ir(1000 rows)) / 2000, both without --fold
    fold per row   = (Ir(3000, --fold) - Ir(3000)) / 3000

`--tasks`/`--queues` spread the rows over that many names (a drain of one task: 1, 1).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from itertools import chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--trip", type=int, default=15, help="rows a settle transaction")
    parser.add_argument("--fold", action="store_true")
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--queues", type=int, default=1)
    parser.add_argument("--drop-index", action="append", default=[],
                        help="drop this index after the migrations (a knock-out; repeatable)")
    parser.add_argument("--skip", action="append", default=[],
                        help="a knock-out: leave this statement out of the fold (an index "
                             "of history_fold.FOLD, or `keys` for FILL_KEYS); repeatable")
    args = parser.parse_args()
    from conveyor import Conveyor, Settings
    from conveyor.store.base import drive_inline
    from conveyor.store.history_rows import PLAIN_COLUMNS
    from conveyor.store.sqlite.history import _PLAIN_ROWS, CHUNK

    with tempfile.TemporaryDirectory() as folder:
        app = Conveyor(settings=Settings.load(url=f"sqlite:///{folder}/fold.db",
                                              log_level="CRITICAL"), auto_migrate=True)
        store = app.store
        if args.skip:
            from conveyor.store.sqlite import history_fold

            history_fold.FOLD = tuple(sql for i, sql in enumerate(history_fold.FOLD)
                                      if str(i) not in args.skip)
            if "keys" in args.skip:
                history_fold.FILL_KEYS = "SELECT :watermark"
        for name in args.drop_index:
            with store.db.write() as conn:  # type: ignore[attr-defined]
                conn.execute(f'DROP INDEX "{name}"')
        start = 1_800_000_000.0
        rows = []
        for n in range(args.rows):
            ended = start + n * 0.0005  # a drain's ~2,000 attempts a second
            rows.append((f"job-{n:08d}", 1, f"task{n % args.tasks}", f"queue{n % args.queues}",
                         None, "bench-fold", "host", 4242, ended - 0.0001, ended, 0.0001,
                         "completed", 0.0001, 50_000_000, 0))
        assert len(rows[0]) == len(PLAIN_COLUMNS)
        for at in range(0, len(rows), args.trip):
            trip = rows[at:at + args.trip]
            with store.db.write() as conn:  # type: ignore[attr-defined]
                for part in range(0, len(trip), CHUNK):
                    chunk = trip[part:part + CHUNK]
                    conn.execute(_PLAIN_ROWS[len(chunk)], list(chain.from_iterable(chunk)))
        if args.fold:
            while drive_inline(store.fold_history(10_000)) >= 10_000:  # type: ignore[attr-defined]
                pass
        app.close()


if __name__ == "__main__":
    os.environ.setdefault("CONVEYOR_LOG_LEVEL", "CRITICAL")
    main()
