"""The store seam: a semantic, batch-first interface with one module per SQL dialect."""

from .base import (
    Cancelled,
    Complete,
    Fail,
    HeartbeatReply,
    Progress,
    Release,
    Settle,
    Snooze,
    Store,
    open_store,
)

__all__ = ["Cancelled", "Complete", "Fail", "HeartbeatReply", "Progress", "Release", "Settle",
           "Snooze", "Store", "open_store"]
