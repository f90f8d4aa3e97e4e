"""The settle records a worker makes per job (Complete, Fail, Snooze, Cancelled) are not
frozen (their __init__ per job), but still values: equal and of one hash by their fields,
as the frozen ones were; the tracker sets the attempt's record on the outcome itself."""

from __future__ import annotations

import pytest

from conveyor.history.records import AttemptRecord
from conveyor.job import ErrorInfo, Lease
from conveyor.store.base import Cancelled, Complete, Fail, Settle, Snooze


def _made() -> list[Settle]:
    error = ErrorInfo(attempt=1, type="E", message="m", traceback="t", worker="w", host="h",
                      at=1.0)
    return [Complete(Lease("a", 1), b"{}"), Fail(Lease("b", 2), error, 3.0),
            Snooze(Lease("c", 3), 5.0), Cancelled(Lease("d", 4), "stop")]


@pytest.mark.parametrize("index", range(4))
def test_settle_records_are_hashable_values(index: int) -> None:
    one, two = _made()[index], _made()[index]
    assert one == two and hash(one) == hash(two) and len({one, two}) == 1
    record = AttemptRecord("t", "q", None, 1, 1.0, 2.0, "w", "h", 1)
    one.attempt = record  # type: ignore[union-attr]
    assert one != two and one.attempt is record  # type: ignore[union-attr]
