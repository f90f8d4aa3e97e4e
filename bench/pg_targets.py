"""Conveyor on PostgreSQL against issue 3's targets, from peer-harness runs (results/*.json).

    python bench/pg_targets.py /tmp/bench-peers/results/A.json B.json C.json

For each run, and for the medians over the runs (the issue asks for the medians of the first
three), prints Conveyor's figures, the best PostgreSQL peer's in the same run, and the ratio,
next to the target as a ratio (the issue's table: its target over the best peer's figure of
that table) and as the issue's absolute figure. Figures, not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

PEERS = ("pgqueuer_pg", "oban_pg", "procrastinate_pg")
# figure: (scenario, key, higher is better, ratio target, absolute target)
FIGURES = {
    "enqueue /s": ("enqueue", "rate", True, 2500 / 2186, 2500.0),
    "enqueue p95 ms": ("enqueue", "p95_ms", False, 0.5 / 0.54, 0.5),
    "bulk /s": ("bulk", "rate", True, 75000 / 54226, 75000.0),
    "drain 2 procs /s": ("drain_2p", "rate", True, 6000 / 3990, 6000.0),
    "pickup p50 ms": ("pickup", "p50_ms", False, 2.0 / 2.9, 2.0),
    # The table gives the peers' pickup p50 only: p95 <= 3 ms over oban's 2.9 ms, read as a
    # ratio to the best peer's p95 of the same run.
    "pickup p95 ms": ("pickup", "p95_ms", False, 3.0 / 2.9, 3.0),
}
RAW_BULK = ("pg_bulk_insert", 75000 / 101508)  # bulk against the raw unnest of the same run


def figure(run: dict[str, Any], peer: str, scenario: str, key: str) -> float | None:
    value = run["peers"].get(peer, {}).get("scenarios", {}).get(scenario, {}).get(key)
    return float(value) if value is not None else None


def best_peer(run: dict[str, Any], scenario: str, key: str, higher: bool) -> float:
    found = [v for p in PEERS if (v := figure(run, p, scenario, key)) is not None]
    return max(found) if higher else min(found)


def rows(runs: list[dict[str, Any]]) -> list[tuple[str, list[float], list[float]]]:
    """(figure, Conveyor's per run, best peer's per run)."""
    out = []
    for name, (scenario, key, higher, _, _) in FIGURES.items():
        ours = [figure(r, "conveyor_pg", scenario, key) or 0.0 for r in runs]
        out.append((name, ours, [best_peer(r, scenario, key, higher) for r in runs]))
    raw = [float(r["baselines"][RAW_BULK[0]]["rate"]) for r in runs]
    out.append(("bulk, raw unnest /s", raw, raw))
    return out


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main(paths: list[str]) -> None:
    runs = []
    for path in paths:
        with open(path) as file:
            runs.append(json.load(file))
    table = {name: (ours, best) for name, ours, best in rows(runs)}
    print(f"{len(runs)} run(s): " + ", ".join(paths))
    print("\n| figure | Conveyor per run | best peer per run | median: Conveyor / best peer | "
          "ratio (target) | ratio met | absolute met |")
    print("| --- | --- | --- | --: | --: | :-: | :-: |")
    for name, (_, _, higher, target, absolute) in FIGURES.items():
        ours, best = table[name]
        mine, theirs = statistics.median(ours), statistics.median(best)
        ratio = mine / theirs
        ratio_ok = ratio >= target if higher else ratio <= target
        absolute_ok = mine >= absolute if higher else mine <= absolute
        print(f"| {name} | {' / '.join(f'{v:,.2f}' for v in ours)} | "
              f"{' / '.join(f'{v:,.2f}' for v in best)} | {mine:,.2f} / {theirs:,.2f} | "
              f"{ratio:.2f}x ({'>=' if higher else '<='} {target:.2f}x) | "
              f"{verdict(ratio_ok)} | {verdict(absolute_ok)} |")
    ours = table["bulk /s"][0]
    raw = table["bulk, raw unnest /s"][0]
    share = statistics.median(ours) / statistics.median(raw)
    shares = " / ".join(f"{o / r:.2f}" for o, r in zip(ours, raw, strict=True))
    print(f"| bulk of raw unnest | {shares} | "
          f"raw {' / '.join(f'{v:,.0f}' for v in raw)} | {share:.2f} | "
          f"{share:.2f} (>= {RAW_BULK[1]:.2f}) | {verdict(share >= RAW_BULK[1])} | - |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
