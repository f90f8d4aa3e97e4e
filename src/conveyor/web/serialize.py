"""The JSON shapes of the API, built from the app's value types."""

from __future__ import annotations

import time
from typing import Any

from ..job import Job, QueueInfo, WorkerInfo
from ..store.base import Stats

API = "/api/v1"


def status_path(job_id: str) -> str:
    return f"{API}/jobs/{job_id}"


def job_json(job: Job) -> dict[str, Any]:
    """The envelope (the caller passes a redacted job) plus its status URL."""
    return {**job.to_dict(), "status_url": status_path(job.id)}


def accepted_json(job: Job) -> dict[str, Any]:
    body = {"id": job.id, "state": str(job.state), "status_url": status_path(job.id),
            "duplicate": job.duplicate}
    if job.dropped:  # not stored: its key was at its limit under "drop" (limits/keys.py)
        body["dropped"] = True
    return body


def queue_json(queue: QueueInfo) -> dict[str, Any]:
    counts = queue.counts
    return {"name": queue.name, "paused": queue.paused, "counts": counts,
            "backlog": counts.get("queued", 0) + counts.get("scheduled", 0),
            "queued": counts.get("queued", 0), "scheduled": counts.get("scheduled", 0),
            "running": counts.get("running", 0), "claimed": queue.claimed,
            "oldest_queued_age": queue.oldest_queued_age,
            "throughput_per_minute": queue.completed_last_minute}


def stats_json(stats: Stats) -> dict[str, Any]:
    return {"by_state": stats.by_state, "by_queue": stats.by_queue, "by_task": stats.by_task,
            "durations": stats.durations, "failure_rate": stats.failure_rate,
            "retry_success_rate": stats.retry_success_rate,
            "completed_last_minute": stats.completed_last_minute, "claimed": stats.claimed}


def worker_json(worker: WorkerInfo, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    age = None if worker.heartbeat_at is None else max(0.0, now - worker.heartbeat_at)
    return {"id": worker.id, "host": worker.host, "pid": worker.pid,
            "queues": list(worker.queues), "concurrency": worker.concurrency,
            "started_at": worker.started_at, "heartbeat_at": worker.heartbeat_at,
            "heartbeat_age": age, "running": worker.running, "claimed": worker.claimed}
