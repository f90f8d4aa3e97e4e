"""The pending rows a settle writes (history_rows.pending_rows, its fast path for items with
no error) are exactly the generic attempt rows with their duration's bucket appended."""

from __future__ import annotations

from conveyor.history.records import AttemptRecord
from conveyor.history.rollup import bucket
from conveyor.job import ErrorInfo
from conveyor.store.base import Cancelled, Complete, Fail, Lease, Release, Settle, Snooze
from conveyor.store.history_rows import attempt_rows, pending_rows


def _record(n: int, took: float, **errors: str) -> AttemptRecord:
    return AttemptRecord(f"task{n % 3}", "q", None if n % 2 else "acme", n, 1000.0 + n,
                         1000.0 + n + took, "w1", "host", 42, 0.25 if n % 2 else None,
                         1 << 20 if n % 3 else None, **errors)


def _error(n: int) -> ErrorInfo:
    return ErrorInfo(attempt=n, type="ValueError", message=f"boom {n}", traceback="tb",
                     worker="w1", host="host", at=2000.0)


class _MyComplete(Complete):  # a subclass: its outcome is found the generic way
    pass


def test_pending_rows_are_attempt_rows_with_their_bucket() -> None:
    items: list[Settle] = [
        Complete(Lease("a", 1), b"{}", _record(1, 0.003)),
        Complete(Lease("b", 1), None, _record(2, -1.0)),           # clock went back: 0
        Snooze(Lease("c", 1), 5.0, _record(3, 0.2)),
        Cancelled(Lease("d", 1), "stop", _record(4, 12.0)),
        Fail(Lease("e", 1), _error(5), 3.0, attempt=_record(5, 0.01)),         # retried
        Fail(Lease("f", 1), _error(6), None, "discarded", _record(6, 0.01)),   # dead
        Fail(Lease("g", 1), _error(7), None, attempt=_record(
            7, 0.5, fingerprint="abc", error_message="scrubbed", error_traceback="tb2",
            error_sealed="sealed")),
        Complete(Lease("h", 1), b"{}", _record(8, 0.001, error_message="odd",
                                                 error_traceback="t")),
        Complete(Lease("i", 1), b"{}"),                                       # no record
        Release(Lease("j", 1)),
        _MyComplete(Lease("k", 1), b"{}", _record(9, 0.004)),
        Complete(Lease("l", 1), b"{}", _record(10, 0.004)),                   # refused below
    ]
    applied = [True] * (len(items) - 1) + [False]
    for given in (applied, None):
        expected = [(*row, bucket(row[10])) for row in attempt_rows(items, given)]
        got = pending_rows(items, given)
        assert got == expected
        assert [type(v) for row in got for v in row] == [
            type(v) for row in expected for v in row]
    assert [row[0] for row in pending_rows(items, applied)] == list("abcdefghk")
    assert pending_rows(items, applied)[1][10] == 0.0


def test_plain_params_split_the_same_rows_by_whether_they_carry_an_error() -> None:
    """The SQLite settle's two inserts (history_rows.plain_params): a row with no error
    leaves out exactly the error columns, which are all None in its full row; together the
    two sets are pending_rows, each in the items' order; the plain rows' values come flat,
    row after row, their buckets as rollup.bucket gives them (at and around 1 ms too)."""
    from conveyor.store.history_fold_sql import PENDING_COLUMNS
    from conveyor.store.history_rows import PLAIN_COLUMNS, plain_params

    items: list[Settle] = [
        Complete(Lease("a", 1), b"{}", _record(1, 0.003)),
        Fail(Lease("b", 1), _error(2), 3.0, attempt=_record(2, 0.01)),
        Complete(Lease("c", 1), None, _record(3, -1.0)),
        Complete(Lease("d", 1), b"{}", _record(4, 0.001, fingerprint="fp")),  # no message
        Snooze(Lease("e", 1), 5.0, _record(5, 0.2)),
        Complete(Lease("f", 1), b"{}", _record(6, 0.001, error_message="odd")),
        Release(Lease("g", 1)),
        Complete(Lease("i", 1), b"{}", _record(9, 0.001)),      # bucket 0's bound
        Complete(Lease("j", 1), b"{}", _record(10, 0.0011)),    # just past it: bucket 1
        Complete(Lease("k", 1), b"{}", _record(11, 0.0)),
        Complete(Lease("h", 1), b"{}", _record(8, 0.004)),                   # refused below
    ]
    applied = [True] * (len(items) - 1) + [False]
    expected = {row[0]: row for row in pending_rows(items, applied)}
    flat, count, full = plain_params(items, applied)
    assert len(flat) == count * len(PLAIN_COLUMNS)
    plain = [tuple(flat[i:i + len(PLAIN_COLUMNS)]) for i in range(0, len(flat),
                                                                  len(PLAIN_COLUMNS))]
    assert [row[0] for row in plain] == ["a", "c", "e", "i", "j", "k"]
    assert [row[-1] for row in plain] == [bucket(row[10]) for row in plain]
    assert [row[-1] for row in plain][3:] == [0, 1, 0]
    assert [row[0] for row in full] == ["b", "d", "f"]
    assert all(row == expected[row[0]] for row in full)
    for row in plain:
        widened = dict(zip(PLAIN_COLUMNS, row, strict=True))
        want = dict(zip(PENDING_COLUMNS, expected[row[0]], strict=True))
        assert {c: want.get(c) for c in PENDING_COLUMNS} == {
            c: widened.get(c) for c in PENDING_COLUMNS}
        assert [type(widened.get(c)) for c in PENDING_COLUMNS] == [
            type(want[c]) for c in PENDING_COLUMNS]
