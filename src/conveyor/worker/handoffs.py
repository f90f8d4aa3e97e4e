"""A worker's side of hand-off (store/postgres/handoff.py): what it offers, and the jobs a
store hands it without a claim.

While its claims come back short (it waits for work), the worker offers its capacity with
each claim; the store turns that into free slots from the jobs it holds there. A job handed
over arrives through the wake-up listener. The heartbeat names running jobs leased to the
worker that it does not know; one that is still unknown at the next heartbeat is a hand-off
whose wake-up was lost, and is given back to its queue. Since a deaf listener would keep
attracting such jobs, the worker then offers nothing until it hears a wake-up again.
"""

from __future__ import annotations

from ..job import ClaimedJob, Lease
from ..store.base import Offer

_REMEMBER = 1000  # given-back job ids kept, so that a late wake-up does not start one


class HandOffs:
    def __init__(self, capacity: int, lapse: float) -> None:
        self.capacity = capacity
        self.lapse = lapse        # seconds an offer stands unless a claim renews it
        self.waiting = True       # the last claim came back short: offer
        self.deaf = False         # a hand-off's wake-up went missing: offer nothing for now
        self.claiming = False     # a claim is in flight: its jobs are not ours to judge yet
        self._unknown: set[str] = set()
        self._given_back: dict[str, None] = {}

    def offer(self, stopping: bool) -> Offer | None:
        """What the next claim offers: nothing while a backlog keeps the slots busy or when
        stopping; no slots while deaf (that takes back the offer standing)."""
        if not self.waiting or stopping:
            return None
        return Offer(0 if self.deaf else self.capacity, self.lapse)

    def claimed(self, got: int, wanted: int) -> None:
        """A claim asked for `wanted` jobs and got `got`."""
        if wanted > 0:
            self.waiting = got < wanted

    def heard(self) -> None:
        """A wake-up came through: the listener hears again."""
        self.deaf = False

    def accepts(self, job: ClaimedJob) -> bool:
        """Run a handed-over job? Not one given back already (its wake-up came late)."""
        return job.id not in self._given_back

    def strangers(self, unknown: tuple[Lease, ...], known: set[str]) -> list[Lease]:
        """The jobs to give back, from a heartbeat's `unknown` leases: those not `known`
        (running, held, or with an outcome to write) at this heartbeat and the one before.
        Judges nothing while a claim is in flight: the heartbeat may have read its jobs
        before the claim's reply reached the worker (a blocked event loop)."""
        if self.claiming:
            return []
        strangers = [lease for lease in unknown if lease.job_id not in known]
        twice = [lease for lease in strangers if lease.job_id in self._unknown]
        self._unknown = {lease.job_id for lease in strangers} - self._unknown
        for lease in twice:
            self._given_back[lease.job_id] = None
            if len(self._given_back) > _REMEMBER:
                del self._given_back[next(iter(self._given_back))]
        if twice:
            self.deaf = True
        return twice

    @property
    def suspects(self) -> bool:
        """Jobs seen once: the next heartbeat must be judged even if it names none."""
        return bool(self._unknown)
