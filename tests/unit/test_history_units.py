"""Fingerprints (masking, top frame) and the rollup histogram's arithmetic."""

from __future__ import annotations

import random

import pytest

from conveyor.analytics import check_fingerprint, parse_span
from conveyor.errors import ConfigError
from conveyor.history.fingerprint import fingerprint, mask_message, top_frame, top_frame_from_text
from conveyor.history.rollup import BOUNDS, BUCKETS, bucket, fold, quantile


@pytest.mark.parametrize(("message", "masked"), [
    ("order 12345 not found", "order <n> not found"),
    ("GET https://api.test/v1/orders/77?x=1 failed: 503", "GET <url> failed: <n>"),
    ("job 0f8fad5b-d9cb-469f-a165-70867728950e gone", "job <uuid> gone"),
    ("user ada@example.com blocked", "user <email> blocked"),
    ("KeyError: 'user-42'", "KeyError: <str>"),
    ("hash deadbeefcafe0042 differs", "hash <id> differs"),
    ("timeout after 2.5s", "timeout after <n>s"),
])
def test_masking_hides_what_varies(message: str, masked: str) -> None:
    assert mask_message(message) == masked


def test_same_kind_same_fingerprint_other_frame_other_group() -> None:
    one = fingerprint("ValueError", "order 1 gone", "tasks.py:charge")
    assert one == fingerprint("ValueError", "order 982 gone", "tasks.py:charge")
    assert one != fingerprint("ValueError", "order 1 gone", "tasks.py:refund")
    assert one != fingerprint("KeyError", "order 1 gone", "tasks.py:charge")
    assert len(one) == 16 and check_fingerprint(one) == one


def _raise_here() -> None:
    raise ValueError("x")


def test_top_frame_is_the_innermost_frame_of_user_code() -> None:
    try:
        _raise_here()
    except ValueError as exc:
        assert top_frame(exc.__traceback__) == "test_history_units.py:_raise_here"
    text = ('Traceback (most recent call last):\n  File "/app/tasks.py", line 3, in charge\n'
            '  File "/usr/lib/python3.12/json/__init__.py", line 9, in loads\nValueError: x')
    assert top_frame_from_text(text) == "tasks.py:charge"


def test_buckets_double_from_a_millisecond() -> None:
    assert bucket(0.0) == 0 and bucket(0.001) == 0 and bucket(0.0011) == 1
    assert bucket(0.5) == 9 and bucket(10 ** 9) == BUCKETS - 1
    assert BOUNDS[9] >= 0.5 > BOUNDS[8]


def test_quantiles_come_within_their_bucket() -> None:
    row, hour, day = fold((3700.0, "t", "q", None, "completed", d)
                          for d in [0.01] * 50 + [0.1] * 50)
    assert [(r.width, r.minute) for r in (row, hour, day)] == [(60, 61), (3600, 60), (86400, 0)]
    assert row.tenant == "" and row.counts == {"completed": 100} and hour.buckets == row.buckets
    p25, p75 = quantile(row.buckets, 0.25), quantile(row.buckets, 0.75)
    assert p25 is not None and 0.008 < p25 <= 0.016
    assert p75 is not None and 0.064 < p75 <= 0.128
    assert quantile([0] * BUCKETS, 0.5) is None


def test_fold_matches_a_row_per_item_sum() -> None:
    """fold counts per (minute, key, outcome, bucket) first; the rows must equal adding every
    item to its minute, hour and day row one by one."""
    rng = random.Random(3)
    items = [(86400 * 3 + rng.random() * 7200, rng.choice("ab"), rng.choice("qr"),
              rng.choice([None, "t1"]), rng.choice(["completed", "dead", "retried"]),
              rng.lognormvariate(-4, 2)) for _ in range(2000)]
    expected: dict[tuple[object, ...], tuple[dict[str, int], float, list[int]]] = {}
    for ended, task, queue, tenant, outcome, took in items:
        for width in (60, 3600, 86400):
            key = (width, int(ended // width) * width // 60, task, queue, tenant or "")
            counts, total, slots = expected.setdefault(key, ({}, 0.0, [0] * BUCKETS))
            counts[outcome] = counts.get(outcome, 0) + 1
            slots[bucket(took)] += 1
            expected[key] = (counts, total + took, slots)
    got = {(r.width, r.minute, r.task, r.queue, r.tenant): r for r in fold(items)}
    assert got.keys() == expected.keys()
    for key, (counts, total, slots) in expected.items():
        assert (got[key].counts, got[key].buckets) == (counts, slots)
        assert got[key].duration_sum == pytest.approx(total)


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("30d", 2_592_000),
                                               ("90m", 5400), ("2w", 1_209_600)])
def test_spans(text: str, seconds: float) -> None:
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "0h", "61d", "1y", "-1h"])
def test_bad_spans_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="time range"):
        parse_span(text)
