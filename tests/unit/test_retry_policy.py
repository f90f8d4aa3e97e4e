"""Retry policies are pure functions of (policy, failures) -> delay."""

from __future__ import annotations

import random

import pytest

from conveyor import Retry, Snooze
from conveyor.retry import next_delay, retry_at


def test_fixed_backoff_is_constant() -> None:
    policy = Retry(backoff="fixed", base=7)
    assert [next_delay(policy, n) for n in (1, 2, 5)] == [7, 7, 7]


def test_linear_backoff_grows_by_base() -> None:
    policy = Retry(backoff="linear", base=3)
    assert [next_delay(policy, n) for n in (1, 2, 3, 10)] == [3, 6, 9, 30]


def test_exponential_backoff_doubles_without_jitter() -> None:
    policy = Retry(backoff="exponential", base=2, jitter=0)
    assert [next_delay(policy, n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 16, 32]


def test_exponential_jitter_stays_within_its_band() -> None:
    policy = Retry(backoff="exponential", base=10, jitter=0.25, max_delay=10_000)
    rng = random.Random(1234)
    for failures in (1, 2, 3, 6):
        centre = 10 * 2 ** (failures - 1)
        delays = [next_delay(policy, failures, rng) for _ in range(200)]
        assert all(0.75 * centre <= d <= 1.25 * centre for d in delays)
        assert len(set(delays)) > 100  # actually jittered


def test_jitter_is_deterministic_for_a_seeded_rng() -> None:
    policy = Retry(base=5, jitter=0.5)
    first = [next_delay(policy, n, random.Random(9)) for n in (1, 2, 3)]
    second = [next_delay(policy, n, random.Random(9)) for n in (1, 2, 3)]
    assert first == second


@pytest.mark.parametrize("backoff", ["exponential", "fixed", "linear"])
def test_every_backoff_is_capped_by_max_delay(backoff: str) -> None:
    policy = Retry(backoff=backoff, base=300, max_delay=250, jitter=0.1)  # type: ignore[arg-type]
    assert next_delay(policy, 50, random.Random(0)) == 250


def test_huge_failure_counts_do_not_overflow() -> None:
    policy = Retry(base=1, max_delay=600, jitter=0)
    assert next_delay(policy, 10_000) == 600


def test_retry_at_is_none_once_attempts_are_used_up() -> None:
    policy = Retry(attempts=3, backoff="fixed", base=10)
    assert retry_at(policy, 1, 3, now=1000.0) == 1010.0
    assert retry_at(policy, 2, 3, now=1000.0) == 1010.0
    assert retry_at(policy, 3, 3, now=1000.0) is None
    assert retry_at(policy, 4, 3, now=1000.0) is None


def test_defaults() -> None:
    policy = Retry()
    assert (policy.attempts, policy.backoff, policy.base) == (3, "exponential", 2.0)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"attempts": 0}, "at least 1"),
    ({"backoff": "cubic"}, "'cubic'"),
    ({"base": -1}, "base"),
    ({"max_delay": -1}, "max_delay"),
    ({"jitter": 1.0}, "jitter"),
])
def test_invalid_policies_say_what_to_change(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_retry_later_is_a_snooze_to_raise() -> None:
    outcome = Retry.later(45)
    assert isinstance(outcome, Snooze)
    assert outcome.seconds == 45.0
    with pytest.raises(Snooze):
        raise Retry.later(1)


def test_policies_are_frozen_values() -> None:
    policy = Retry(attempts=5)
    assert policy == Retry(attempts=5)
    with pytest.raises(AttributeError):
        policy.attempts = 1  # type: ignore[misc]
