"""Pure parts of flow control: rates, budgets inside a claim, queue groups of a worker."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.limits.claiming import Budget, KeyedClaims, LimitedNames
from conveyor.limits.model import Limit, LimitUsage, format_rate, parse_rate
from conveyor.worker.groups import QueueGroup, parse_queues


@pytest.mark.parametrize(("text", "count", "period"), [
    ("10/min", 10, 60.0), ("20/s", 20, 1.0), ("100/10s", 100, 10.0), ("5/2.5min", 5, 150.0),
    ("1000/hour", 1000, 3600.0), ("7/minutes", 7, 60.0), ("1/day", 1, 86400.0)])
def test_rates(text: str, count: int, period: float) -> None:
    assert parse_rate(text) == (count, period)


@pytest.mark.parametrize("text", ["10", "x/s", "10/ms", "10/0s", "10/fortnight", "-1/s"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError, match="COUNT/PERIOD"):
        parse_rate(text)


def test_rates_read_back_as_written() -> None:
    assert [format_rate(*parse_rate(t)) for t in ("10/min", "20/s", "100/10s", "3/hour")] == \
        ["10/min", "20/s", "100/10s", "3/hour"]


def test_a_budget_takes_candidates_in_order_while_each_limit_has_room() -> None:
    usages = [LimitUsage(Limit("queue", "ai", concurrency=3), running=1, started=0),
              LimitUsage(Limit("task", "slow", rate=5, period=60.0), running=0, started=4)]
    budget = Budget.of(usages, now=0.0)
    candidates = [("1", "slow", "ai"), ("2", "slow", "ai"), ("3", "fast", "ai"),
                  ("4", "fast", "ai"), ("5", "fast", "mail")]
    taken = budget.take(candidates, limit=10)
    assert [c[0] for c in taken] == ["1", "3", "5"]
    assert budget.starts(taken) == [("task", "slow")]
    assert budget.blocked_tasks() == ["slow"]


def test_a_slowed_limit_has_no_room_until_its_time() -> None:
    usage = LimitUsage(Limit("queue", "ai", concurrency=3), 0, 0, blocked_until=100.0)
    assert usage.allowance(now=99.0) == 0
    assert "slowed down" in (usage.holding(99.0) or "")
    assert usage.allowance(now=100.0) == 3


def test_limited_names_decide_which_claims_go_the_limited_way() -> None:
    names = LimitedNames()
    names.update([("queue", "ai")])
    assert names.touches(["ai", "mail"]) and names.touches(None)
    assert not names.touches(["mail"])
    names.update([("task", "t")])
    assert names.touches(["mail"])  # a task's jobs may be in any queue
    names.update([])
    assert not names.touches(None)


def test_limited_names_say_which_claims_a_rate_may_hold_back() -> None:
    names = LimitedNames()
    names.update([("queue", "ai", True), ("queue", "mail", False), ("key", "k", True)])
    assert names.paces(["ai"]) and names.paces(None)
    assert not names.paces(["mail"]) and not names.paces(["other"])
    names.update([("task", "t", True)])
    assert names.paces(["other"])  # a task's jobs may be in any queue


@pytest.mark.parametrize("bad", [{"kind": "tenant"}, {"concurrency": -1}, {"rate": 3},
                                 {"rate": 3, "period": 0.0}, {"name": ""}])
def test_bad_limits(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"kind": "queue", "name": "ai", **bad}
    with pytest.raises(ValueError):
        Limit(**fields)  # type: ignore[arg-type]


def test_queue_groups() -> None:
    assert parse_queues("critical:10,emails:5,ai:2") == [
        QueueGroup(("critical",), 10), QueueGroup(("emails",), 5), QueueGroup(("ai",), 2)]
    assert parse_queues("a,b") == [QueueGroup(("a", "b"))]
    assert parse_queues("x:3,tenant:acme") == [QueueGroup(("x",), 3),
                                               QueueGroup(("tenant:acme",))]
    assert parse_queues(None) == [QueueGroup(None)]
    for bad in ("a:0", "a,a", "bad name:2", ","):
        with pytest.raises(ConfigError, match="queues"):
            parse_queues(bad)


def test_keyed_claims_name_the_settles_that_unpark_a_key_once_and_stay_bounded() -> None:
    claims = KeyedClaims(most=3)
    claims.claimed(["a", "b"])
    assert claims.ended(["x", "a", "a"]) == ["a"]  # an unkeyed job, and "a" counted once
    claims.claimed(["c", "d", "e"])  # "b" is the oldest: forgotten at the bound
    assert claims.ended(["b", "c", "d", "e"]) == ["c", "d", "e"]
    assert claims.ids == {}


def test_limited_names_say_whether_a_cap_concerns_a_worker() -> None:
    names = LimitedNames()
    names.update([("queue", "ai", False, True), ("queue", "mail", True, False),
                  ("task", "t", False, True), ("key", "k", False, True)])
    assert names.caps(["ai"], []) and names.caps(None, [])  # a capped queue of its own
    assert not names.caps(["mail"], [])  # a rate is not granted
    assert names.caps(["mail"], ["t"]) and names.caps(["mail"], None)  # a capped task
    assert not names.caps(["other"], ["u"])  # a key limit is not granted either
    names.update([("queue", "x")])  # rows without the flag: taken as capped
    assert names.caps(["x"], [])


def test_limited_names_read_before_a_forget_stay_stale() -> None:
    names = LimitedNames()
    began = names.forgotten
    names.forget()  # a limit changed while the read was out
    names.update([("queue", "ai")], began)
    assert names.touches(["ai"]) and names.stale()  # kept, but read again at the next claim
    names.update([("queue", "ai")], names.forgotten)
    assert not names.stale()
    names.update([])  # no read in flight to compare: fresh
    assert not names.stale()
