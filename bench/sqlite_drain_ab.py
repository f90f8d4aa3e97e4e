"""The unlimited SQLite drain of several source trees (the first is the reference, e.g. the
base): limit_drain.py's drain (a real `conveyor worker --processes P --concurrency 10`,
`--jobs` no-op jobs, timed first start to last start), unlimited only, trees rotated round
by round. Per round each tree's rate and worker CPU µs/job (/proc, every worker process);
then each tree's medians and the medians of its per-round ratios to the first tree.

    /work/main/.venv/bin/python bench/sqlite_drain_ab.py \
        --trees /tmp/pt-0303058,/work/main,. --processes 2 --rounds 6

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import limit_drain  # noqa: E402  (bench/: the drain itself)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", required=True, help="comma-separated repo roots (src/)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    drain = argparse.Namespace(jobs=args.jobs, processes=args.processes, concurrency=10,
                               timeout=300.0)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="sqlite-drain-ab-"))
    (workdir / "limit_drain_app.py").write_text(limit_drain.APP)
    got: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    for round_no in range(args.rounds):
        shift = round_no % len(trees)
        order = trees[shift:] + trees[:shift]
        if round_no // len(trees) % 2:
            order.reverse()
        for tree in order:
            found = limit_drain.one(tree, "sqlite", 0, drain, workdir)
            got[tree].append({"rate": float(found["rate"]),  # type: ignore[arg-type]
                              "us": float(found["worker_us"])})  # type: ignore[arg-type]
        print(f"round {round_no}: " + "  ".join(
            f"{tree.name} {got[tree][-1]['rate']:6.0f}/s {got[tree][-1]['us']:5.1f} us/job"
            for tree in trees), flush=True)
    first = trees[0]
    print(f"{args.jobs} no-op jobs, {args.processes} worker processes x 10 slots, SQLite, "
          f"unlimited; medians of {args.rounds} rounds")
    for tree in trees:
        rates = [r["rate"] for r in got[tree]]
        cpus = [r["us"] for r in got[tree]]
        rate_ratio = [a["rate"] / b["rate"] for a, b in zip(got[tree], got[first], strict=True)]
        cpu_ratio = [a["us"] / b["us"] for a, b in zip(got[tree], got[first], strict=True)]
        print(f"  {tree!s:40} rate {statistics.median(rates):6.0f}/s "
              f"(x{statistics.median(rate_ratio):.3f} of {first.name})  worker "
              f"{statistics.median(cpus):5.1f} us/job (x{statistics.median(cpu_ratio):.3f})")


if __name__ == "__main__":
    main()
