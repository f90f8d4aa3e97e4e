"""A worker's side of hand-off (worker/handoffs.py): what it offers, and which jobs leased to
it that it never heard of it gives back."""

from __future__ import annotations

from conveyor.job import ClaimedJob, Lease, new_id
from conveyor.store.base import Offer
from conveyor.worker.handoffs import HandOffs


def lease() -> Lease:
    return Lease(new_id(), 42)


def test_it_offers_its_capacity_only_while_its_claims_come_back_short() -> None:
    handoffs = HandOffs(capacity=10, lapse=3.0)
    assert handoffs.offer(stopping=False) == Offer(10, 3.0)  # a new worker waits for work
    handoffs.claimed(got=5, wanted=5)  # a backlog: claims keep the slots busy
    assert handoffs.offer(stopping=False) is None
    handoffs.claimed(got=0, wanted=0)  # no claim made: no news
    assert handoffs.offer(stopping=False) is None
    handoffs.claimed(got=2, wanted=5)
    assert handoffs.offer(stopping=False) == Offer(10, 3.0)
    assert handoffs.offer(stopping=True) is None


def test_a_job_unknown_at_two_heartbeats_is_given_back_and_the_worker_stops_offering() -> None:
    handoffs = HandOffs(capacity=10, lapse=3.0)
    stranger, known = lease(), lease()
    assert handoffs.strangers((stranger, known), {known.job_id}) == []  # may be on its way
    assert handoffs.suspects
    assert handoffs.strangers((stranger, known), {known.job_id}) == [stranger]
    assert not handoffs.suspects
    late = ClaimedJob(stranger.job_id, "t", "mail", b"{}", 1, 3, stranger.token)
    assert not handoffs.accepts(late)  # its wake-up, late: given back, so not run
    assert handoffs.offer(stopping=False) == Offer(0, 3.0)  # deaf: no slots offered...
    handoffs.heard()
    assert handoffs.offer(stopping=False) == Offer(10, 3.0)  # ...until a wake-up comes


def test_a_job_seen_once_then_known_is_not_given_back() -> None:
    handoffs = HandOffs(capacity=10, lapse=3.0)
    job = lease()
    assert handoffs.strangers((job,), set()) == []
    assert handoffs.strangers((job,), {job.job_id}) == []  # its wake-up came in between
    assert handoffs.strangers((job,), set()) == []  # a first sighting again, not a second
    assert handoffs.offer(stopping=False) == Offer(10, 3.0)


def test_nothing_is_judged_while_a_claim_is_in_flight() -> None:
    """A loop blocked through two heartbeats during a claim: the claimed job is leased to
    the worker in the table, but the claim's reply has not reached the worker yet."""
    handoffs = HandOffs(capacity=10, lapse=3.0)
    claimed = lease()
    handoffs.claiming = True
    assert handoffs.strangers((claimed,), set()) == []
    assert handoffs.strangers((claimed,), set()) == []
    handoffs.claiming = False
    assert handoffs.strangers((claimed,), {claimed.job_id}) == []  # held now
