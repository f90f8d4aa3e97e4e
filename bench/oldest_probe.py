"""The queues page's oldest-queued lookup alone on PostgreSQL (issue 16): EXPLAIN (ANALYZE,
BUFFERS) of the lookup the tree sends (counters.OLDEST_QUEUED_ALL, and _TENANT for one
tenant), every --every seconds, in a READ ONLY transaction on its own connection (so it can
run against a schema it must not write). Prints one line per sample: execution ms, heap
fetches, shared buffers hit / read of the whole statement. PYTHONPATH selects the tree.

    PYTHONPATH=src .venv/bin/python bench/oldest_probe.py \
        'postgresql://postgres@127.0.0.1:5432/test?schema=bench_pgq_2m' --samples 10 --every 5

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

import psycopg

from conveyor.store.postgres import counters


def explain(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> dict[str, Any]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL jit = off")
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
    text = "\n".join(r[0] for r in rows)
    buffers = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)
    return {"ms": float(re.findall(r"Execution Time: ([\d.]+)", text)[0]),
            "heap_fetches": sum(int(n) for n in re.findall(r"Heap Fetches: (\d+)", text)),
            "hit": int(buffers.group(1)) if buffers else 0,
            "read": int(buffers.group(2) or 0) if buffers else 0, "plan": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--tenant", default="org-17")
    parser.add_argument("--plan", action="store_true", help="print the first sample's plans")
    args = parser.parse_args()
    base, schema = args.url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        for n in range(args.samples):
            line: dict[str, Any] = {"t": time.strftime("%H:%M:%S")}
            for label, template, tenant in (("all", counters.OLDEST_QUEUED_ALL, None),
                                            ("tenant", counters.OLDEST_QUEUED_TENANT,
                                             args.tenant)):
                sql = template.replace("{schema}", f'"{schema}"')
                got = explain(conn, sql, {"tenant": tenant, "now": None})
                if args.plan and n == 0:
                    print(got["plan"])
                line[label] = {k: v for k, v in got.items() if k != "plan"}
            print(json.dumps(line), flush=True)
            if n + 1 < args.samples:
                time.sleep(args.every)


if __name__ == "__main__":
    main()
