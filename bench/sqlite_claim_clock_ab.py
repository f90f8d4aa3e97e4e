"""The SQLite drain, one source tree against another (rateflake: the claim reads the clock
under the write lock), interleaved: each round drains each tree unlimited and with the queue
limited (limit_drain.py's drain: 2 worker processes of 10 slots, `--jobs` no-op jobs), the
trees' order flipped every round (A B, B A, ...). Prints per round each drain's rate and
worker CPU per job and the B/A ratio of the rates; then the median ratios.

    /work/main/.venv/bin/python bench/sqlite_claim_clock_ab.py --trees /tmp/base,. --rounds 6

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import limit_drain  # noqa: E402  (bench/: the drain itself)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", required=True, help="A,B: repo roots (with src/)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--json", help="write every drain here")
    args = parser.parse_args()
    drain = argparse.Namespace(jobs=args.jobs, processes=2, concurrency=10,
                               timeout=120.0)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="claim-clock-ab-"))
    (workdir / "limit_drain_app.py").write_text(limit_drain.APP)
    results: list[dict[str, object]] = []
    ratios: dict[int, list[float]] = {0: [], args.limit: []}
    for round_no in range(args.rounds):
        order = trees if round_no % 2 == 0 else trees[::-1]
        got: dict[tuple[str, int], dict[str, object]] = {}
        for tree in order:
            for mode in (0, args.limit) if round_no % 4 < 2 else (args.limit, 0):
                got[(str(tree), mode)] = limit_drain.one(tree, "sqlite", mode, drain, workdir)
        for mode, found in ratios.items():
            a, b = (got[(str(tree), mode)] for tree in trees)
            found.append(float(b["rate"]) / float(a["rate"]))  # type: ignore[arg-type]
            print(f"round {round_no} {'unlimited' if not mode else f'limit {mode}':9} "
                  f"A {a['rate']:5.0f}/s {a['worker_us']:4.0f} us/job  "
                  f"B {b['rate']:5.0f}/s {b['worker_us']:4.0f} us/job  B/A {found[-1]:.3f}",
                  flush=True)
        results.append({"round": round_no, "order": [str(t) for t in order],
                        "drains": [{"tree": t, "limit": m, **d} for (t, m), d in got.items()]})
    for mode, found in ratios.items():
        print(f"median B/A {'unlimited' if not mode else f'limit {mode}'}: "
              f"{statistics.median(found):.3f} ({', '.join(f'{v:.3f}' for v in found)})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
