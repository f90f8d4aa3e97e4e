"""Hand-off: a new job leased to a waiting worker by the enqueue itself, with no claim.

An idle worker's next pickup normally costs two trips after the producer's commit: the
wake-up reaches the worker, then the worker's claim goes to the database and back. While a
worker waits for work, its claims also write an offer (conveyor_offers: its free slots, that
is its capacity less the jobs it holds, its queues, its lease length, and the backend pid of
its LISTEN connection). A plain job, or one whose only options are a correlation id and a
parent (a child job), enqueued on one of those queues with no job queued there before it,
is then inserted as already running under a lease to that worker, in the same
statement that takes one slot from the offer; its wake-up carries the job itself, so the
worker starts it as soon as it hears it.

Safety:
- An offer counts only while its worker's LISTEN backend is alive: a worker that dies (even
  by SIGKILL) closes that connection, and producers stop handing it jobs at once. A job it
  was handed before it died is rescued when its lease runs out, like any claimed job.
- A handed-off job is ordinary `running` state under a fenced lease: heartbeats extend it,
  its outcome is fenced by its token.
- A wake-up can be lost (a listener reconnecting). The heartbeat reports running jobs leased
  to the worker that it does not know; one still unknown at the next heartbeat is given back
  to its queue (Release), and the worker offers nothing until it hears a wake-up again (a
  deaf listener must not attract jobs). A worker that stops gives back any it never heard of.
- An offer lapses unless the worker's next claim renews it (an idle worker claims at every
  poll), so a worker that hangs (SIGSTOP, a blocked event loop) soon gets no more jobs.
- A worker that stops, or whose claims come back full (a backlog: jobs queued before the new
  one must run first), offers no slots; nor does a job go to a worker while another job is
  queued on its queue.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from ...job import ClaimedJob
from . import queries as q

MARK = "\n\n"          # leads a hand-off's wake-up: MARK + worker id + "\n" + the job (JSON);
                       # a queue name has no newline, a BEHIND wake-up has one
MAX_PAYLOAD = 1024     # bytes: a bigger payload is not handed off. NOTIFY carries 8,000
                       # bytes; and every listener reads every wake-up, so a listener that
                       # stops reading holds up the server's notification queue: keep them small
MAX_WORKER_ID = 200    # characters: a worker with a longer id offers nothing (the same limit)

# The offer a waiting worker's claim writes (a CTE added to the claim statements): its
# capacity less the jobs it holds, those handed over but not yet heard of included (the
# statement's snapshot sees them, not the ones this claim takes, counted apart); none when
# the claim came back full. A hand-off that commits while this statement runs is in neither
# count: the offer row it decremented is newer than the statement's snapshot of it, and
# the difference comes off too. Its expiry is on the database's clock, as the check's.
OFFER = """
    INSERT INTO {schema}.conveyor_offers AS offer (worker_id, worker_host, queues, slots,
                                                   lease_for, listener_pid, expires_at)
    SELECT %(worker_id)s, %(host)s, %(offer_queues)s::text[],
           CASE WHEN count(*) >= %(limit)s THEN 0
                ELSE greatest(%(offer)s - count(*) - (
                    SELECT count(*) FROM {schema}.conveyor_jobs
                    WHERE worker_id = %(worker_id)s AND state = 'running'), 0) END,
           %(lease_for)s, %(listener_pid)s, date_part('epoch', now()) + %(offer_for)s
    FROM changed
    ON CONFLICT (worker_id) DO UPDATE
    SET slots = greatest(excluded.slots - greatest(
            (SELECT slots FROM {schema}.conveyor_offers WHERE worker_id = %(worker_id)s)
            - offer.slots, 0), 0),
        queues = excluded.queues, lease_for = excluded.lease_for,
        listener_pid = excluded.listener_pid, expires_at = excluded.expires_at"""

WITHDRAW = "DELETE FROM {schema}.conveyor_offers WHERE worker_id = %(id)s"

# Offers whose LISTEN backend is gone (workers that died without withdrawing), or that lapsed
# a minute ago (a worker that hangs; its backend's pid may even be taken by another).
PRUNE_OFFERS = """
DELETE FROM {schema}.conveyor_offers AS offer
WHERE NOT EXISTS (SELECT FROM pg_stat_get_activity(offer.listener_pid))
   OR offer.expires_at < date_part('epoch', now()) - 60"""

# queries.INSERT_ONE_PLAIN, also handing the job to a waiting worker when one has a slot for
# its queue, its payload is small, and nothing is queued there before it (or the queue is
# paused: then it waits like any job). The checks of the queue run only for a live offer.
# Parameters: queue, queue, queue, queue, task, id, task, queue, priority, payload, unique_for,
# max_attempts, batch_id, correlation_id, parent_id, sensitive, token, wake channel, events
# channel, events channel. The wake-up's job has a tenth field, its correlation id, only when it has
# one, so a worker of the release before (stop 9) still reads every plain job's. One of those
# cannot read a child job's: during a rolling upgrade such a job handed to it waits until its
# second heartbeat gives it back (logged; nothing lost, the attempt restored).
INSERT_ONE_HANDOFF = """
WITH taker AS (
    SELECT offer.worker_id FROM {schema}.conveyor_offers AS offer
    WHERE offer.slots > 0 AND (offer.queues IS NULL OR %s = ANY(offer.queues))
      AND offer.expires_at > date_part('epoch', now())
      AND EXISTS (SELECT FROM pg_stat_get_activity(offer.listener_pid))
      AND NOT EXISTS (SELECT FROM {schema}.conveyor_jobs
                      WHERE state = 'queued' AND queue = %s AND offer.slots > 0)
      AND NOT EXISTS (SELECT FROM {schema}.conveyor_queues
                      WHERE name = %s AND paused AND offer.slots > 0)
      AND NOT EXISTS (SELECT FROM {schema}.conveyor_limits  -- limits.py: claims only
                      WHERE ((kind = 'queue' AND name = %s) OR (kind = 'task' AND name = %s))
                        AND offer.slots > 0)
    LIMIT 1
    FOR UPDATE OF offer SKIP LOCKED),
took AS (
    UPDATE {schema}.conveyor_offers AS offer SET slots = offer.slots - 1
    FROM taker WHERE offer.worker_id = taker.worker_id
    RETURNING offer.worker_id, offer.worker_host, offer.lease_for),
inserted AS (
    INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, priority, payload, unique_for,
                                        max_attempts, batch_id, correlation_id, parent_id,
                                        sensitive, attempt, lease_token, lease_expires_at,
                                        started_at, worker_id, worker_host)
    SELECT %s, %s, %s, CASE WHEN took.worker_id IS NULL THEN 'queued' ELSE 'running' END,
           %s, %b, %s, %s, %s, %s, %s, %s,
           CASE WHEN took.worker_id IS NULL THEN 0 ELSE 1 END,
           CASE WHEN took.worker_id IS NOT NULL THEN %s::bigint END,
           date_part('epoch', now()) + took.lease_for,
           CASE WHEN took.worker_id IS NOT NULL THEN date_part('epoch', now()) END,
           took.worker_id, took.worker_host
    FROM (SELECT) AS one LEFT JOIN took ON true
    RETURNING id, task, queue, state, priority, payload, max_attempts, lease_token, created_at,
              run_at, worker_id, correlation_id),
notified AS (
    SELECT pg_notify(%s, CASE
        WHEN worker_id IS NOT NULL THEN E'\\n\\n' || worker_id || E'\\n' || (CASE
            WHEN correlation_id IS NULL THEN json_build_array(
                id, task, queue, encode(payload, 'base64'), max_attempts, lease_token, priority,
                created_at, run_at)
            ELSE json_build_array(
                id, task, queue, encode(payload, 'base64'), max_attempts, lease_token, priority,
                created_at, run_at, correlation_id) END)::text
        WHEN priority <> 0 THEN E'\\n' || queue
        ELSE queue END)
    FROM inserted),
feed AS (  -- a handed-off job was queued, then started: both events, in that order
    SELECT pg_notify(%s, CASE WHEN state = 'running' THEN json_build_array(
               json_build_array(id, 'queued', queue, task, NULL, NULL),
               json_build_array(id, 'running', queue, task, NULL, NULL))
           ELSE json_build_array(json_build_array(id, 'queued', queue, task, NULL, NULL))
           END::text)
    FROM inserted WHERE %s::text IS NOT NULL)
SELECT created_at, state, EXISTS (
    SELECT FROM {schema}.conveyor_offers
    WHERE slots > 0 AND expires_at > date_part('epoch', now())) AS waiting
FROM inserted
WHERE (SELECT count(*) FROM notified) >= 0 AND (SELECT count(*) FROM feed) >= 0"""

# Hand-offs still leased to a worker that has stopped (their wake-up came after it stopped
# listening): back to their queue, untouched, with a wake-up. A hand-off is the one running
# job whose start is its creation (one statement did both); jobs it claimed are left to their
# leases (an outcome it could not write, say). Under a frozen test clock a claimed job can
# look like one: it is then queued again early, as its lease's end would have done.
RELEASE_ORPHANS = """
WITH changed AS (
    UPDATE {schema}.conveyor_jobs AS job
    SET state = 'queued', attempt = job.attempt - 1, lease_expires_at = NULL, started_at = NULL
    WHERE job.worker_id = %(id)s AND job.state = 'running' AND job.attempt = 1
      AND job.started_at = job.created_at
    RETURNING job.id, job.state, job.queue, job.task, job.tenant, job.progress),
feed AS (""" + q.feed("changed") + """),
notified AS (
    SELECT pg_notify(%(channel)s, E'\\n' || queue)
    FROM (SELECT DISTINCT queue FROM changed) AS woken)
SELECT count(*) FROM changed
WHERE (SELECT count(*) FROM notified) >= 0 AND (SELECT count(*) FROM feed) >= 0"""


def offering(claim: str) -> str:
    """A claim statement (queries.with_feed's shape) that also writes the worker's offer."""
    head, sep, tail = claim.rpartition(")\nSELECT ")
    if not sep:
        raise ValueError("not a with_feed statement")
    return head + "),\noffered AS (" + OFFER + ")\nSELECT " + tail


# The claim statements a waiting worker uses instead (store.claim with `offer`).
OFFERING = {claim: offering(claim) for claim in (
    q.CLAIM_QUEUE, q.CLAIM_QUEUE_AFTER, q.CLAIM_QUEUES, q.CLAIM_QUEUES_AFTER, q.CLAIM_ANY)}


class Gate:
    """Whether a producer's next single enqueue (of a job a hand-off carries) tries one.
    Trying costs the statement about 0.1 ms more (on a 0.2 ms round trip, on the test
    machine), so a producer keeps trying while its last try saw a worker waiting (one that
    was claiming at that moment held its offer, and the job went the usual way), and
    otherwise tries once every PROBE seconds (a worker that starts waiting is found within
    that). Shared by a store's threads: a race only makes one enqueue try, or not, once
    more."""

    PROBE = 0.25  # seconds

    def __init__(self) -> None:
        self.handing = False
        self.next_probe = 0.0

    def open(self) -> bool:
        return self.handing or time.monotonic() >= self.next_probe

    def never(self) -> None:
        """The schema has no hand-off table (not migrated yet): try again in a minute."""
        self.handing, self.next_probe = False, time.monotonic() + 60.0

    def tried(self, waiting: bool) -> None:
        """After a try: whether any worker was waiting with free slots."""
        self.handing = waiting
        if not waiting:
            self.next_probe = time.monotonic() + self.PROBE


def offerable(worker_id: str) -> bool:
    """Can this worker take hand-offs? Its id must fit a wake-up and end at its line."""
    return len(worker_id) <= MAX_WORKER_ID and "\n" not in worker_id


def small(payload: bytes) -> bool:
    return len(payload) <= MAX_PAYLOAD


def parse(body: str) -> ClaimedJob:
    """The job a hand-off's wake-up carries (after MARK, the worker id and its newline)."""
    fields: list[Any] = orjson.loads(body)
    job_id, task, queue, payload, max_attempts, token, priority, created_at, run_at = fields[:9]
    correlation_id = fields[9] if len(fields) > 9 else None  # later fields: a newer release's
    # a handed-off job starts in its enqueue's statement: started_at is its created_at
    return ClaimedJob(job_id, task, queue, base64.b64decode(payload), 1, max_attempts, token,
                      None, correlation_id, priority, created_at, None, run_at, created_at)
