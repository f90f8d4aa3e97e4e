"""The app bench/reads.py runs in its 2 `conveyor worker` processes: ten no-op tasks, the
tasks its loaded jobs carry (bench.t0 ... bench.t9)."""

from __future__ import annotations

from conveyor import Conveyor, JobContext

app = Conveyor()


def _noop(ctx: JobContext, payload: dict[str, object]) -> None:
    return None


for _n in range(10):
    app.task(name=f"bench.t{_n}")(_noop)
