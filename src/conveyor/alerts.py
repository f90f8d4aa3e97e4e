"""Alerts: a signed JSON POST to CONVEYOR_ALERT_URL when a job dies, or when a queue's oldest
job has waited longer than CONVEYOR_ALERT_QUEUE_WAIT seconds.

Delivery is a Conveyor job itself (task `conveyor.alert` on the queue `conveyor.alerts`, which
a worker serves by default), so a receiver that is down gets the alert later, with retries.
Each POST carries two headers:

    Conveyor-Timestamp: 1764806400
    Conveyor-Signature: v1=<hex HMAC-SHA256 of "<timestamp>." + body, keyed CONVEYOR_ALERT_SECRET>

A receiver checks them with `verify` (or the same three lines in any language), and refuses
a request whose signature does not match or whose timestamp is older than five minutes:

    from conveyor.alerts import verify
    if not verify(body, headers["Conveyor-Timestamp"], headers["Conveyor-Signature"], secret):
        return 401
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .hooks import HookEvent
from .retry import Retry

if TYPE_CHECKING:
    from .app import Conveyor
    from .context import JobContext
    from .job import QueueInfo

log = logging.getLogger("conveyor.alerts")

ALERT_TASK = "conveyor.alert"
ALERT_QUEUE = "conveyor.alerts"
TOLERANCE = 300.0  # seconds a signature stays acceptable
DELIVERY_RETRY = Retry(attempts=10, backoff="exponential", base=2.0, max_delay=600.0)


class AlertNotDelivered(Exception):
    """The receiver refused the alert (retried, as any failed job)."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(body: bytes, timestamp: str, signature: str, secret: str, *,
           tolerance: float = TOLERANCE, now: float | None = None) -> bool:
    """True when `signature` is this body's, under `secret`, and `timestamp` is recent."""
    try:
        at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - at) > tolerance:
        return False
    return hmac.compare_digest(sign(body, secret, at), signature or "")


def install(app: Conveyor) -> None:
    """Register the delivery task and the "dead" hook, when CONVEYOR_ALERT_URL is set."""
    url, secret = app.settings.alert_url, app.settings.alert_secret
    if not url:
        return

    def deliver(ctx: JobContext, alert: dict[str, Any]) -> int:
        body = orjson.dumps(alert)
        stamp = int(time.time())
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "conveyor-alerts",
            "Conveyor-Timestamp": str(stamp), "Conveyor-Signature": sign(body, secret, stamp)})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:  # 4xx/5xx: retried under DELIVERY_RETRY
            exc.close()
            raise AlertNotDelivered(f"the alert receiver answered {exc.code} {exc.reason}"
                                    ) from None

    app.task(name=ALERT_TASK, queue=ALERT_QUEUE, retry=DELIVERY_RETRY, timeout=30)(deliver)

    async def on_dead(event: HookEvent) -> None:
        if event.task == ALERT_TASK:  # never alert about an alert: that could loop
            log.error("alert %s could not be delivered to %s; giving up", event.job_id, url)
            return
        await app.enqueue_async(ALERT_TASK, dead_alert(app, event), tenant=event.tenant)

    app.on("dead")(on_dead)


def dead_alert(app: Conveyor, event: HookEvent) -> dict[str, Any]:
    """What an alert about a dead job says. The error message is left out for a task with
    Sensitive fields: it may quote them."""
    task = app.registry.find(event.task)
    error = event.error
    quiet = task is None or bool(task.sensitive)
    return {"kind": "job.dead", "at": time.time(), "job": {
        "id": event.job_id, "task": event.task, "queue": event.queue, "tenant": event.tenant,
        "attempt": event.attempt, "correlation_id": event.correlation_id,
        "reason": event.reason, "worker_id": event.worker_id,
        "error_type": error.type if error else None,
        "error_message": error.message if error and not quiet else None}}


async def enqueue_wait_alerts(app: Conveyor, queues: Sequence[QueueInfo]) -> int:
    """One alert per queue whose oldest job waits past the threshold, at most one per queue
    per threshold period (the idempotency key stays reserved that long); returns how many."""
    threshold = app.settings.alert_queue_wait
    if not app.settings.alert_url or threshold <= 0:
        return 0
    sent = 0
    for queue in queues:
        age = queue.oldest_queued_age
        if queue.name == ALERT_QUEUE or age is None or age <= threshold or queue.paused:
            continue
        alert = {"kind": "queue.waiting", "at": time.time(), "queue": queue.name,
                 "oldest_wait": round(age, 3), "threshold": threshold,
                 "queued": queue.counts.get("queued", 0)}
        job = await app.enqueue_async(ALERT_TASK, alert, idempotency_key=f"alert:wait:"
                                      f"{queue.name}", unique_for=threshold)
        sent += 0 if job.duplicate else 1
    return sent
