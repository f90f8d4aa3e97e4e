"""How hard each kind of SQLite write commits: the `synchronous` level per connection use.

In WAL mode `synchronous=NORMAL` syncs the log only at checkpoints: a commit survives the
process crashing, not the machine losing power. `FULL` syncs the log at every commit, so a
commit survives a power cut too, for the price of one fsync per commit. What a power cut
may cost differs by write:

- an enqueue (and an operator's cancel, retry, pause, resume, delete) is a promise to a
  caller who has moved on: losing it loses a job, or runs a job someone cancelled;
- a claim, heartbeat or settle that is lost only means a repeat: the job is claimed again
  and runs once more, which at-least-once delivery allows anyway.

So `auto` (the default) commits the first kind at FULL and the second at NORMAL. A FULL
commit syncs the whole log up to it, so it also makes the NORMAL commits before it durable.

    Durability.parse("auto")            # promises FULL, work NORMAL
    Durability.parse("auto", "EXTRA")   # CONVEYOR_SQLITE_SYNCHRONOUS forces one level
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError

MODES = ("auto", "full", "normal")
LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True, slots=True)
class Durability:
    promise: str  # the level of writes made for a caller: enqueue and operator actions
    work: str  # the level of a worker's writes: claim, heartbeat, settle, maintenance

    @classmethod
    def parse(cls, mode: str = "auto", synchronous: str | None = None) -> Durability:
        """`mode` is auto, full or normal; `synchronous`, when given, is one level for all."""
        if synchronous is not None:
            level = synchronous.upper()
            if level not in LEVELS:
                raise ConfigError("CONVEYOR_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL "
                                  "or EXTRA")
            return cls(level, level)
        mode = mode.lower()
        if mode not in MODES:
            raise ConfigError(f"CONVEYOR_SQLITE_DURABILITY must be auto, full or normal, "
                              f"not {mode!r}")
        if mode == "full":
            return cls("FULL", "FULL")
        if mode == "normal":
            return cls("NORMAL", "NORMAL")
        return cls("FULL", "NORMAL")

    def level(self, promise: bool) -> str:
        return self.promise if promise else self.work


@dataclass(slots=True)
class Tuning:
    """What one connection was last set to, so a pragma runs only when it changes."""

    synchronous: str = ""
    busy_ms: int = -1
