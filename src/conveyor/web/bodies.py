"""How much memory one request may cost: request bodies in, pages of jobs out.

In: each endpoint has its own body limit (one job: CONVEYOR_MAX_BODY_BYTES; a batch:
CONVEYOR_MAX_BATCH_BODY_BYTES). A declared Content-Length over it is refused (413) before a
byte is read; a body without one is read with a running count and refused as soon as it
passes. A body larger than LARGE needs one of CONVEYOR_MAX_LARGE_BODIES slots while it is
read, parsed and handled; with none free the answer is 503 with Retry-After, at once, with
nothing read. Before parsing, the number of JSON values the body can hold is counted (commas,
brackets and braces: a bound from above) and a body over CONVEYOR_MAX_BODY_VALUES is refused
(413): parsed, a value costs dozens of bytes, so `[{},{},...]` would grow 20-fold.

Out: a page of jobs leaves payloads, results, errors and progress steps out unless `fields=`
names them (the store then does not even read them), and stops adding jobs once the JSON
passes CONVEYOR_MAX_LIST_BYTES (next_cursor goes on from there; truncated says so). Pages
are read off the event loop (with bodies, up to BUDGET bytes of them per store read), so
/healthz answers meanwhile.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..job import Job, JobFilter
from .problems import ApiError
from .serialize import job_json

LARGE = 1024 * 1024  # a body over this needs a slot
OFF_LOOP = 64 * 1024  # a body over this is handled in a thread (an inline store's too)
RETRY_AFTER = "1"
BODY_FIELDS = frozenset({"payload", "result", "errors", "progress_step"})
LIST_FIELDS = frozenset({
    "id", "task", "queue", "state", "priority", "attempt", "max_attempts", "tenant",
    "correlation_id", "idempotency_key", "created_at", "run_at", "started_at", "finished_at",
    "expires_at", "progress", "worker", "dead_reason", "batch_id", "parent_id", "duplicate",
    "retrying",
    "status_url", *BODY_FIELDS})
DEFAULT_FIELDS = LIST_FIELDS - BODY_FIELDS
# bytes of stored bodies per store read when a page carries them (list_jobs' budget): a page
# of ordinary jobs is one read; one of large jobs, a read per BUDGET bytes
BUDGET = 2 * 1024 * 1024


class BodySlots:
    """A count of large bodies in flight; never waits: no slot, no read (503)."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.taken = 0

    def take(self) -> None:
        if self.taken >= self.most:
            raise ApiError(503, "busy", "the server is reading as many large request bodies "
                           "as it allows (CONVEYOR_MAX_LARGE_BODIES); try again shortly",
                           {"limit": self.most}, headers={"Retry-After": RETRY_AFTER})
        self.taken += 1

    def give(self) -> None:
        self.taken -= 1


@contextlib.asynccontextmanager
async def json_body(request: Request, limit: int, slots: BodySlots,
                    max_values: int) -> AsyncIterator[Any]:
    """The body as JSON, within the limits above; the slot (if one was needed) is held until
    the handler is done with the parsed body."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(declared, limit)
    holding = False
    try:
        if declared is not None and declared > LARGE:
            slots.take()
            holding = True
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(len(body), limit)
            if not holding and len(body) > LARGE:
                slots.take()
                holding = True
        values = body.count(b",") + body.count(b"[") + body.count(b"{") + 1
        if values > max_values:
            raise ApiError(413, "too_many_values", f"the request body holds up to {values} "
                           f"JSON values, over the limit of {max_values} "
                           "(CONVEYOR_MAX_BODY_VALUES)", {"values": values, "limit": max_values})
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed_json", f"the request body is not valid JSON: {exc}")\
                from None
        request.state.body_size = len(body)
        del body
        yield data
    finally:
        if holding:
            slots.give()


def caller(request: Request, inline: Callable[..., Any]) -> Callable[..., Any]:
    """How to run the app's work for this body: a large one (encoding, sealing, writing
    megabytes) off the event loop, whatever the store, so /healthz does not wait on it."""
    if getattr(request.state, "body_size", 0) > OFF_LOOP:
        return run_in_threadpool
    return inline


def _declared_length(request: Request) -> int | None:
    declared = (request.headers.get("content-length") or "").strip()
    if not declared:
        return None
    if not (declared.isascii() and declared.isdigit()) or len(declared) > 18:
        raise ApiError(400, "bad_length", "Content-Length is not a whole number of bytes")
    return int(declared)


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"the request body is over the limit of {limit} bytes",
                    {"size": size, "limit": limit})


def fields_of(params: Any) -> frozenset[str]:
    """The fields a page of jobs shows: `fields=id,state,payload`; 400 for an unknown one."""
    raw = params.get("fields")
    if raw is None or raw.strip() == "":
        return DEFAULT_FIELDS
    asked = {f.strip() for f in raw.split(",") if f.strip()}
    unknown = sorted(asked - LIST_FIELDS)
    if unknown or len(raw) > 1000:
        raise ApiError(400, "bad_query", f"fields: unknown field {unknown[0] if unknown else ''}"
                       f" (known: {', '.join(sorted(LIST_FIELDS))})", {"field": "fields"})
    return frozenset(asked | {"id"})


def row_json(job: Job, fields: frozenset[str]) -> bytes:
    data = job_json(job)
    return orjson.dumps({k: v for k, v in data.items() if k in fields},
                        option=orjson.OPT_NON_STR_KEYS)


async def page_of_jobs(list_jobs: Callable[..., Sequence[Job]],
                       where: JobFilter, cursor: str | None, limit: int,
                       fields: frozenset[str], max_bytes: int) -> memoryview:
    """{"jobs": [...], "next_cursor", "truncated"} as JSON, written row by row into one
    buffer (no list of rows, no joined copy). One store read for the page and the job after
    it (is there a next page?), cut at BUDGET bytes of bodies; only a page of jobs larger
    than that takes another read."""
    bodies = bool(fields & BODY_FIELDS)
    out = bytearray(b'{"jobs":[')
    count, last, truncated, more = 0, cursor, False, False
    while count < limit and not truncated and not more:
        want = limit - count
        # off the loop on every store: even without bodies, SQLite walks a row's payload
        # pages to reach the columns stored after it
        jobs = await run_in_threadpool(list_jobs, where, after=last, limit=want + 1,
                                       redacted=True, bodies=bodies,
                                       budget=BUDGET if bodies else None)
        more = len(jobs) > want
        for job in jobs[:want]:
            row = row_json(job, fields)
            if count and len(out) + len(row) > max_bytes:
                truncated = True
                break
            if count:
                out += b","
            out += row
            count += 1
            last = job.id
        got = len(jobs)
        del jobs  # a read's decoded jobs go before the next read
        if got == 0 or not bodies:
            break  # (with bodies, fewer than asked may be the budget's cut: read on)
    more = more or truncated
    out += b'],"next_cursor":' + orjson.dumps(last if more and count else None)
    out += b',"truncated":' + (b"true" if truncated else b"false") + b"}"
    return memoryview(out)


async def jobs_in_pieces(list_jobs: Callable[..., Sequence[Job]], where: JobFilter,
                         cursor: str | None, limit: int) -> list[Job]:
    """Up to `limit` jobs for a page that shows their errors but not their payloads or
    results (the dashboard's lists): read off the loop, BUDGET bytes of bodies per store
    read (one read for a page of ordinary jobs), each job's payload and result dropped
    before the next read, so a page of one-MiB jobs never holds more than a budget's worth
    of them at once."""
    found: list[Job] = []
    last = cursor
    while len(found) < limit:
        jobs = await run_in_threadpool(list_jobs, where, after=last, limit=limit - len(found),
                                       redacted=True, budget=BUDGET)
        found += [replace(job, payload=None, result=None) for job in jobs]
        if not jobs:
            break
        last = jobs[-1].id
    return found


def tune_allocator() -> bool:
    """For `conveyor serve`: glibc's malloc gives large buffers back to the system when they
    are freed (a fixed mmap threshold, not one that grows with each large free) and keeps
    two arenas, not eight per core, so the megabytes of one large page or body do not stay
    in the server's RSS after the request. False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_arena_max, m_mmap_threshold = -8, -3
    return bool(mallopt(m_mmap_threshold, 256 * 1024)) and bool(mallopt(m_arena_max, 2))
