"""Flow control: cluster-wide concurrency and rate limits per queue and per task, enforced by
the store inside the claim (see model.py for what a limit counts)."""

from .model import Limit, LimitUsage, parse_rate

__all__ = ["Limit", "LimitUsage", "parse_rate"]
