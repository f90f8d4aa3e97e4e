"""Finding jobs (issue 16): by a fragment of their task or queue name, by a payload field
(`order_id:ord-1`) and by the text of their last error.

A name fragment is resolved to the names it matches (case-insensitive) among those the store
knows of (store.job_names: bounded reads, tenant-scoped), and the list then selects those
names exactly, on the list's own index paths. Payloads and errors are not searched in SQL:
they may be sealed (encryption at rest) and what a reader may see of them is decided by
disclosure.py. So a payload or error search reads candidates newest first (every other filter
still applies in SQL; an error search reads only jobs that failed, from their own index),
opens each as a reader would, and stops after `scan` candidates: the answer says how many
it read and where to go on from, never "nothing found" for a part it did not read.

A payload field marked Sensitive is never searched: the search is refused (SearchRefused)
when the task's schema (this process's registry) or a candidate's stored paths mark it, as
an answer of "found" or "not found" would tell its value. Errors are matched as the reader
sees them: with the values of sensitive fields scrubbed out.

    search = Search.parse(field="order_id:ord-1", error=None, scan=1000)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import SearchRefused
from .job import Job

SCAN = 1000          # candidates a payload or error search reads by default ...
SCAN_MOST = 10_000   # ... and at most
NAMES_MOST = 500     # a name fragment may match this many names at most
FRAGMENT_MOST = 200  # characters of a name fragment, an error text or a field value


@dataclass(frozen=True, slots=True)
class Search:
    """What to search for besides the list's own filters (every part optional)."""

    task_contains: str | None = None
    queue_contains: str | None = None
    field: tuple[str, ...] | None = None   # a payload path: ("customer", "id")
    value: str | None = None               # ... and the value it must hold, as text
    error: str | None = None               # a fragment of the last error, any case
    scan: int = SCAN

    @classmethod
    def parse(cls, task_contains: str | None = None, queue_contains: str | None = None,
              field: str | None = None, error: str | None = None,
              scan: int | None = None) -> Search:
        """From the words people type: `field` as `path:value` (`order_id:ord-1`,
        `customer.id:42`). SearchRefused (naming the part) when one cannot be read."""
        path, value = _field(field) if field else (None, None)
        scan = SCAN if scan is None else scan
        if not 1 <= scan <= SCAN_MOST:
            raise SearchRefused(f"scan must be from 1 to {SCAN_MOST:,}", "scan")
        return cls(_fragment(task_contains, "task_contains"),
                   _fragment(queue_contains, "queue_contains"), path, value,
                   _fragment(error, "error"), scan)

    @property
    def scanning(self) -> bool:
        """Does it read candidates one by one (payload or error), or only select names?"""
        return self.field is not None or self.error is not None

    @property
    def empty(self) -> bool:
        return not (self.task_contains or self.queue_contains or self.scanning)

    @property
    def field_name(self) -> str:
        return ".".join(self.field or ())


@dataclass(frozen=True, slots=True)
class Found:
    """A page of a search. `scanned`: candidates read (None: no scan, an ordinary list);
    `next_cursor`: where the next page (or the rest of the scan) starts, None at the end;
    `exhausted`: the scan reached the oldest candidate."""

    jobs: list[Job]
    next_cursor: str | None
    scanned: int | None = None
    exhausted: bool = True

    def note(self, scan: int) -> str | None:
        """What a reader must know of a bounded scan's answer, in one sentence."""
        if self.scanned is None:
            return None
        if self.exhausted:
            return f"searched all {self.scanned:,} candidate jobs"
        return (f"searched the newest {self.scanned:,} candidate jobs (at most {scan:,} a "
                "request); older ones are not searched yet: go on from next_cursor")


def _fragment(text: str | None, name: str) -> str | None:
    if text is None or text.strip() == "":
        return None
    if len(text) > FRAGMENT_MOST or any(ord(c) < 32 for c in text):
        raise SearchRefused(f"{name} must be 1 to {FRAGMENT_MOST} characters without control "
                            "characters", name)
    return text.strip()


def _field(text: str) -> tuple[tuple[str, ...], str]:
    name, colon, value = text.partition(":")
    path = tuple(name.strip().split("."))
    if not colon or not all(path) or len(text) > FRAGMENT_MOST or "*" in name:
        raise SearchRefused("payload search must be field:value, e.g. order_id:ord-1 or "
                            "customer.id:42 (a field name, a colon, the value)", "payload")
    return path, value.strip()


def matching_names(names: Iterable[str], fragment: str) -> tuple[str, ...]:
    """The names that contain `fragment`, in any case; SearchRefused past NAMES_MOST."""
    wanted = fragment.casefold()
    found = tuple(sorted({name for name in names if wanted in name.casefold()}))
    if len(found) > NAMES_MOST:
        raise SearchRefused(f"{fragment!r} matches {len(found):,} names (at most "
                            f"{NAMES_MOST} are searched at once): type more of the name",
                            "names")
    return found


def is_sensitive(paths: Mapping[str, Any] | None, field: tuple[str, ...]) -> bool:
    """Is the payload path `field` (or a field it lies in) marked Sensitive in `paths`
    (the trees of codec.sensitive_paths; "*" stands for every key of a mapping)?"""
    node: Any = paths or {}
    for key in field:
        if not isinstance(node, Mapping):
            return False
        node = node.get(key, node.get("*"))
        if node is True:
            return True
        if node is None:
            return False
    return node is True


def refuse_sensitive(task: str, field: str) -> SearchRefused:
    return SearchRefused(f"payload field {field!r} is marked Sensitive in the schema of task "
                         f"{task!r}: it cannot be searched (narrow the search to a task "
                         "where it is not sensitive, or search by another field)", "payload")


def payload_matches(payload: Any, field: tuple[str, ...], value: str) -> bool:
    """Does the payload hold `value` (as text: 42 matches "42", true matches "true") at
    `field`? Only a scalar matches, never a list or a mapping."""
    node = payload
    for key in field:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict | list):
        return False
    return (node if isinstance(node, str) else orjson.dumps(node).decode()) == value


def error_matches(job: Job, fragment: str) -> bool:
    """Does the last error's type and message (as the reader sees them) hold `fragment`?"""
    if not job.errors:
        return False
    last = job.errors[-1]
    return fragment.casefold() in f"{last.type}: {last.message}".casefold()
