"""Compare two trees' merged profiles from bench/gap_profile.py by area, per job: each
function's own CPU (cProfile tottime, thread CPU clock) goes to its area; a built-in or
standard-library function's (sqlite3's execute, asyncio's machinery) goes to its callers'
areas in proportion to what each caller spent in it (one level up). Prints, per area, µs
per job in each tree, the difference and its share of the whole gap, largest first.

    .venv/bin/python bench/gap_compare.py --jobs 4000 --this /tmp/main.r*.prof \
        --base /tmp/base.r*.prof
"""

from __future__ import annotations

import argparse
import pstats
import re
from collections import defaultdict

# (pattern on "module path:function", area); first match wins. Store-thread areas first.
AREAS: list[tuple[str, str]] = [
    (r"sqlite/settling\.py:_complete_many@|sqlite/store\.py:<listcomp>@222|rows\.py:settle_stat",
     "store: settle UPDATE (SQL + its count triggers)"),
    (r"sqlite/claims\.py:claim_rows@|sqlite/store\.py:claim@",
     "store: claim statement (SQL + rows)"),
    (r"sqlite/connection\.py:(_transaction|write)@", "store: BEGIN/COMMIT (WAL commit)"),
    (r"history|sqlite/history", "store: attempt history rows (build + INSERT + fold)"),
    (r"count_sums|collections/__init__", "store: kept counts (Python deltas + executemany)"),
    (r"limits|sqlite/keys\.py|sqlite/grants|claiming", "store: limits / flow control / keys"),
    (r"sqlite/wake\.py|_publish", "store: wake / publish"),
    (r"sqlite/settling|sqlite/store\.py:settle@", "store: settle Python (rows, flags)"),
    (r"sqlite/exchange|sqlite/store\.py|sqlite/rows|sqlite/connection|storecalls|store/base",
     "store: trip Python (exchange, claimed jobs, names)"),
    (r"worker/tracking|worker/executor\.py:stamp|resource|peak_rss",
     "loop: attempt tracking (records for history, meter, rusage)"),
    (r"worker/lifecycle|logging/|hooks", "loop: lifecycle / logging / hook checks"),
    (r"worker/grants|worker/intake|worker/handoffs", "loop: grants / intake / handoffs"),
    (r"clock\.py|time\.(time|perf_counter)", "loop: clock reads"),
    (r"worker/(slots|executor|outcomes|worker)|codec|task\.py|job\.py|<string>",
     "loop: slots / executor / outcomes / decode"),
    (r"gap_profile", "bench task body"),
    (r"asyncio|concurrent|threading|selectors|queue|_weakrefset|socket|epoll|contextvars",
     "loop: asyncio / thread hand-off machinery"),
]


def key(func: tuple[str, int, str]) -> str:
    path, line, name = func
    return f"{path.split('src/')[-1]}:{name}@{line}"


def area_of(func: tuple[str, int, str]) -> str | None:
    text = key(func)
    own = "conveyor/" in func[0] or "gap_profile" in func[0]
    for pattern, area in AREAS:
        if (own or area.endswith("machinery") or ("logging" in pattern and "logging" in text)
                or ("collections" in text and "count_sums" in pattern)) and re.search(
                    pattern, text):
            return area
    return None


def areas(files: list[str], jobs: int, show: str | None = None) -> dict[str, float]:
    stats = pstats.Stats(files[0])
    for extra in files[1:]:
        stats.add(extra)
    out: dict[str, float] = defaultdict(float)
    table = stats.stats  # type: ignore[attr-defined]
    for func, (_cc, _nc, tottime, _ct, callers) in table.items():
        own = area_of(func)
        if own is not None and not func[0].startswith("~"):
            out[own] += tottime
            if show and show in own:
                print(f"  {tottime / jobs / len(files) * 1e6:6.2f} {key(func)}")
            continue
        spent = sum(v[2] for v in callers.values()) or 1.0
        for caller, values in callers.items():
            into = area_of(caller) or own or "other"
            out[into] += tottime * values[2] / spent
            if show and show in into:
                print(f"  {tottime * values[2] / spent / jobs / len(files) * 1e6:6.2f} "
                      f"{key(func)} <- {key(caller)}")
    return {name: value / jobs / len(files) * 1e6 for name, value in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--this", nargs="+", required=True)
    parser.add_argument("--base", nargs="+", required=True)
    parser.add_argument("--show", help="list this area's functions (own time), both trees")
    args = parser.parse_args()
    this = areas(args.this, args.jobs, args.show)
    base = areas(args.base, args.jobs, args.show)
    gap = sum(this.values()) - sum(base.values())
    print(f"cProfile CPU µs/job: this {sum(this.values()):.1f}, base {sum(base.values()):.1f},"
          f" gap {gap:.1f}")
    print(f"{'area':<62} {'this':>7} {'base':>7} {'diff':>7} {'share':>6}")
    for name in sorted(set(this) | set(base), key=lambda n: base.get(n, 0) - this.get(n, 0)):
        a, b = this.get(name, 0.0), base.get(name, 0.0)
        print(f"{name:<62} {a:7.2f} {b:7.2f} {a - b:+7.2f} {(a - b) / gap:6.1%}")


if __name__ == "__main__":
    main()
