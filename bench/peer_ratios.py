"""The issues' drain ratios from peer-harness JSON runs, with the median across runs.

    .venv/bin/python bench/peer_ratios.py bench/results/DATE-peers-rotate1.json ...

Each run's ratio is taken within that run (both sides measured minutes apart on the same
boot), then the median across runs is printed, as the issues ask.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

RATIOS = (
    ("SQLite main / base", "conveyor_sqlite", "conveyor_base_sqlite"),
    ("PostgreSQL main / base", "conveyor_pg", "conveyor_base_pg"),
    ("SQLite history off / base", "conveyor_nohist_sqlite", "conveyor_base_sqlite"),
    ("PostgreSQL history off / base", "conveyor_nohist_pg", "conveyor_base_pg"),
    ("SQLite limit 20 / unlimited", "conveyor_limit20_sqlite", "conveyor_sqlite"),
    ("PostgreSQL limit 20 / unlimited", "conveyor_limit20_pg", "conveyor_pg"),
    ("SQLite main / Huey", "conveyor_sqlite", "huey_sqlite"),
    ("PostgreSQL main / PgQueuer", "conveyor_pg", "pgqueuer_pg"),
    ("PostgreSQL main / Procrastinate", "conveyor_pg", "procrastinate_pg"),
)


def rate(run: dict, peer: str, scenario: str) -> float | None:
    try:
        return float(run["peers"][peer]["scenarios"][scenario]["rate"])
    except (KeyError, TypeError, ValueError):
        return None


def main(paths: list[str]) -> None:
    runs = [json.loads(Path(path).read_text()) for path in paths]
    print("| ratio (drain rate) | 1 process: runs -> median | 2 processes: runs -> median |")
    print("| --- | --: | --: |")
    for label, top, bottom in RATIOS:
        cells = []
        for scenario in ("drain_1p", "drain_2p"):
            values = []
            for run in runs:
                a, b = rate(run, top, scenario), rate(run, bottom, scenario)
                if a and b:
                    values.append(a / b)
            if values:
                listed = ", ".join(f"{v:.3f}" for v in values)
                cells.append(f"{listed} -> **{statistics.median(values):.3f}**")
            else:
                cells.append("n/a")
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    print()
    peers = sorted({peer for run in runs for peer in run["peers"]})
    heads = " | ".join(f"run {i + 1}" for i in range(len(runs)))
    print(f"| rate (jobs/s, 1p / 2p) | {heads} |")
    print("| --- |" + " --: |" * len(runs))
    for peer in peers:
        cells = []
        for run in runs:
            one, two = rate(run, peer, "drain_1p"), rate(run, peer, "drain_2p")
            cells.append(f"{one or 0:,.0f} / {two or 0:,.0f}")
        print(f"| {peer} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
