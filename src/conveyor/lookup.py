"""Find a job by any unique start or end of its id, as operators copy it from a screen.

Ids are UUIDv7 strings: the first 13 characters are the creation time, shared by every job of
a minute, and the last 12 are random, so the dashboard shows ids by their tail (`…9c2f41ab`).
`resolve_id` takes a whole id, a prefix or a suffix (4 characters at least, hex and dashes,
any case, a leading `…` or `...` ignored) and answers the one job it names. Both lookups are
index range scans (the primary key for a prefix, index conveyor_jobs_id_tail for a suffix),
so they stay instant at any table size.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import ConveyorError, JobNotFound

if TYPE_CHECKING:
    from .app import Conveyor
    from .store.base import Store

SHORTEST = 4
SHOWN = 5  # candidates listed when a fragment names several jobs
_FRAGMENT = re.compile(rf"^[0-9a-f-]{{{SHORTEST},36}}$")


class AmbiguousId(ConveyorError):
    """A fragment of an id that several jobs share."""

    def __init__(self, fragment: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:SHOWN - 1]) + (", ..." if len(candidates) >= SHOWN else "")
        super().__init__(f"{fragment!r} starts or ends {len(candidates)}"
                         f"{'+' if len(candidates) >= SHOWN else ''} job ids ({shown}): "
                         "give more of the id")
        self.fragment = fragment
        self.candidates = candidates


def normalize(fragment: str) -> str | None:
    """The fragment as ids spell it, or None when it cannot be part of one."""
    text = fragment.strip().lower().removeprefix("…").removeprefix("...")
    text = text.removesuffix("…").removesuffix("...")
    return text if _FRAGMENT.match(text) else None


def after_prefix(text: str) -> str:
    """The first string past every string that starts with `text` (binary order)."""
    return text[:-1] + chr(ord(text[-1]) + 1)


def pick(fragment: str, found: list[str]) -> str:
    """The one id of `found`, or why there is not one."""
    unique = list(dict.fromkeys(found))
    if not unique:
        raise JobNotFound(fragment)
    if len(unique) > 1:
        raise AmbiguousId(fragment, unique)
    return unique[0]


async def resolve(store: Store, fragment: str, tenant: str | None = None) -> str:
    """The id of the one job (of `tenant`, when given) whose id is, starts with or ends with
    `fragment`. Raises JobNotFound, or AmbiguousId listing some of the candidates."""
    text = normalize(fragment)
    if text is None:
        raise JobNotFound(fragment)
    return pick(fragment, await store.find_ids(text, tenant, SHOWN))


def resolve_sync(conveyor: Conveyor, fragment: str, tenant: str | None = None) -> str:
    """resolve() for synchronous callers (the CLI)."""
    return conveyor.call(lambda store: resolve(store, fragment, tenant))
