"""Conveyor's own random generator, for ids, claim tokens and jitter.

The library never draws from the `random` module's shared generator: an application that
seeds it for reproducible runs (or a property-based test drawing from it in another thread)
must not see its sequence moved by a worker's poll jitter. Like the shared generator, this
one is seeded from os.urandom and reseeded in a forked child, so two processes forked from
one parent never draw the same ids or tokens.
"""

from __future__ import annotations

import os
import random

RNG = random.Random()
getrandbits = RNG.getrandbits
uniform = RNG.uniform

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=RNG.seed)
