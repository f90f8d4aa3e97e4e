"""What a tenant token may enqueue: the queues and the priority range its configuration grants.

In CONVEYOR_API_TOKENS a tenant token's entry may carry grants after `;`:

    acme-key=acme:tenant;queues=acme.*|emails;priority=0..10

- `queues=` names the queues the token may enqueue to, separated by `|`; a name ending in `*`
  grants every queue that starts with what comes before it (`acme.*`: `acme.reports`, ...).
- `priority=LOW..HIGH` is the range of priorities it may ask for (whole numbers, LOW <= HIGH).

A grant left out means no limit on that side, as before. Admin tokens take no grants. A job
that would land outside the grant (counting the task's own default queue and priority when the
request names none) is refused with 403, naming what is allowed; nothing of its batch is
stored. Reads and actions stay scoped to the token's tenant, as for every tenant token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..names import is_queue_name
from ..task import TaskRegistry
from .problems import ApiError

PRIORITY_LIMIT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Grant:
    queues: tuple[str, ...] | None = None         # names, or prefixes ending in "*"
    priorities: tuple[int, int] | None = None     # lowest and highest, inclusive

    def allows_queue(self, queue: str) -> bool:
        if self.queues is None:
            return True
        return any(queue.startswith(allowed[:-1]) if allowed.endswith("*") else queue == allowed
                   for allowed in self.queues)

    def allows_priority(self, priority: int) -> bool:
        return self.priorities is None or self.priorities[0] <= priority <= self.priorities[1]


def parse_grant(items: list[str], tenant: str) -> Grant:
    """`["queues=a|b.*", "priority=0..10"]` -> Grant; ConfigError naming the tenant's entry."""
    found: dict[str, str] = {}
    for item in items:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in ("queues", "priority") or key in found:
            raise ConfigError(f"CONVEYOR_API_TOKENS: the entry of tenant {tenant!r} has "
                              f"{item.strip()!r}; grants are ;queues=a|b.*;priority=LOW..HIGH")
        found[key] = value
    queues = _queues(found["queues"], tenant) if "queues" in found else None
    priorities = _priorities(found["priority"], tenant) if "priority" in found else None
    return Grant(queues, priorities)


def _queues(text: str, tenant: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split("|"))
    for name in names:
        stem = name[:-1] if name.endswith("*") else name
        if not (is_queue_name(stem) or (stem == "" and name == "*")):
            raise ConfigError(f"CONVEYOR_API_TOKENS: tenant {tenant!r} is granted queue "
                              f"{name!r}, which is not a queue name (or a prefix ending in *)")
    return names


def _priorities(text: str, tenant: str) -> tuple[int, int]:
    low, dots, high = text.partition("..")
    if not (dots and _is_whole(low) and _is_whole(high)) or int(low) > int(high) \
            or max(abs(int(low)), abs(int(high))) > PRIORITY_LIMIT:
        raise ConfigError(f"CONVEYOR_API_TOKENS: tenant {tenant!r} has priority={text!r}; "
                          "write priority=LOW..HIGH with whole numbers, LOW <= HIGH")
    return int(low), int(high)


def _is_whole(text: str) -> bool:
    digits = text.strip().removeprefix("-")
    return digits.isascii() and digits.isdigit()


def check_grant(grant: Grant | None, tenant: str | None, registry: TaskRegistry, task: str,
                options: Mapping[str, Any], where: str = "") -> None:
    """403 when the job would go to a queue, or ask for a priority, outside `grant`."""
    if grant is None:
        return
    prefix = f"{where}." if where else ""
    spec = registry.find(task)
    queue = options.get("queue") or (spec.queue if spec else "default")
    priority = options.get("priority")
    if priority is None:
        priority = spec.priority if spec else 0
    if not grant.allows_queue(queue):
        allowed = ", ".join(grant.queues or ())
        raise ApiError(403, "forbidden", f"{prefix}queue: a token of tenant {tenant!r} may "
                       f"enqueue to {allowed} only, not {queue!r}",
                       {"field": prefix + "queue", "allowed_queues": list(grant.queues or ())})
    if not grant.allows_priority(priority):
        low, high = grant.priorities or (0, 0)
        raise ApiError(403, "forbidden", f"{prefix}priority: a token of tenant {tenant!r} may "
                       f"use priorities {low} to {high} only, not {priority}",
                       {"field": prefix + "priority", "allowed_priorities": [low, high]})
