"""`conveyor keys rotate`: re-encrypt every stored payload, result, error message and traceback
under the newest key."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .codec import Codec
from .errors import ConfigError, PayloadUndecodable
from .sealing import reseal_errors, reseal_result
from .store.base import Sealable

if TYPE_CHECKING:
    from .app import Conveyor


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: jobs whose data moved to the newest key, and jobs that changed
    while it ran (a fail, a retry) or went away, and may still hold an older key."""

    changed: int
    raced: int


def rotate_keys(app: Conveyor, page: int = 500) -> Rotation:
    """Re-encrypt payloads, results and errors not yet under the first key of
    CONVEYOR_ENCRYPTION_KEYS (those in clear get encrypted too). Safe to run while workers
    run: each field is swapped compare-and-set. What no key opens is left as it is."""
    if app.codec.keyring is None:
        raise ConfigError("set CONVEYOR_ENCRYPTION_KEYS (newest key first) to rotate keys")
    changed = raced = 0
    after: str | None = None
    while rows := _scan(app, after, page):
        swaps = [(old, new) for old in rows if (new := resealed(app.codec, old)) != old]
        if swaps:
            taken = _replace(app, swaps)
            changed, raced = changed + taken, raced + len(swaps) - taken
        after = rows[-1].id
    return Rotation(changed, raced)


def _scan(app: Conveyor, after: str | None, page: int) -> list[Sealable]:
    return app.call(lambda store: store.scan_sealable(after, page))


def _replace(app: Conveyor, swaps: list[tuple[Sealable, Sealable]]) -> int:
    return app.call(lambda store: store.replace_sealable(swaps))


def resealed(codec: Codec, stored: Sealable) -> Sealable:
    """The job's data with every part under the newest key (a part no key opens, as it is)."""
    job_id, tenant = stored.id, stored.tenant
    try:
        payload = codec.reencrypt(stored.payload, job_id, tenant)
    except PayloadUndecodable:
        payload = None  # no key for it: the job goes dead when it runs, naming the key
    try:
        result = reseal_result(codec, stored.result, job_id, tenant)
    except PayloadUndecodable:
        result = None
    errors = reseal_errors(codec, stored.errors, job_id, tenant)
    return replace(stored, payload=payload or stored.payload,
                   result=result or stored.result, errors=errors or stored.errors)
