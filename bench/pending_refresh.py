"""Replace the pending (unfolded) attempt rows of a store loaded by view_reads.py with
--pending new ones ended in the last 5 minutes, as that load leaves them, so that reads
timed long after the load still see its tail in their last hour. --copy-to: SQLite files
that get the same rows (an old tree's file and a new tree's, for an A/B on one tail).

    .venv/bin/python bench/pending_refresh.py --url sqlite:////tmp/v30.db --copy-to /tmp/v31.db
    .venv/bin/python bench/pending_refresh.py --url "postgresql://...?schema=cvq_v30"
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from view_reads import history_pg, history_sqlite, vacuum_pg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--pending", type=int, default=20_000)
    parser.add_argument("--copy-to", nargs="*", default=[])
    args = parser.parse_args()
    if args.url.startswith("sqlite"):
        path = Path(args.url[len("sqlite:///"):])
        with sqlite3.connect(path, isolation_level=None) as conn:
            conn.execute("DELETE FROM conveyor_attempts_pending")
        added = history_sqlite(path, 300.0, args.pending, spread=True)
        for other in args.copy_to:
            conn = sqlite3.connect(other, isolation_level=None)
            conn.execute("ATTACH DATABASE ? AS source", (str(path),))
            conn.execute("DELETE FROM main.conveyor_attempts_pending")
            conn.execute("INSERT INTO main.conveyor_attempts_pending "
                         "SELECT * FROM source.conveyor_attempts_pending")
            conn.close()
    else:
        import psycopg

        schema = args.url.split("schema=")[-1]
        with psycopg.connect(args.url.split("?")[0], autocommit=True) as conn:
            conn.execute(f'DELETE FROM "{schema}".conveyor_attempts_pending')
        added = history_pg(args.url, schema, 300.0, args.pending, True, spread=True)
        vacuum_pg(schema)
    print(f"pending: {added:,} rows in the last 5 minutes")


if __name__ == "__main__":
    main()
