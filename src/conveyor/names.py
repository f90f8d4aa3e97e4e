"""What a queue may be called, checked wherever a job is enqueued (the Python API, the CLI,
the HTTP API, a task's default queue) so that a name is always safe to show, to log and to
use as a metrics label.

A queue name is 1 to 100 characters of ASCII letters, digits and `.`, `-`, `_`, `:`, `/`:

    emails   billing.invoices   acme:reports   eu-west/slow   v2_exports

No spaces, no other punctuation, no markup, no control or non-ASCII characters; `*` stays free
to mean "every queue" (`conveyor worker --queues '*'`).
"""

from __future__ import annotations

import re

from .errors import InvalidQueueName

QUEUE_NAME_RULE = "1 to 100 characters: ASCII letters, digits and . - _ : /"
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9._:/-]{1,100}$"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9._:/-]{1,100}")


def is_queue_name(name: object) -> bool:
    """True when `name` follows the rule above."""
    return isinstance(name, str) and _QUEUE_NAME.fullmatch(name) is not None


def check_queue_name(name: object) -> str:
    """`name` itself when it follows the rule; else InvalidQueueName, which states the rule.

    >>> check_queue_name("billing.invoices")
    'billing.invoices'
    """
    if not is_queue_name(name):
        raise InvalidQueueName(name, QUEUE_NAME_RULE)
    assert isinstance(name, str)
    return name
