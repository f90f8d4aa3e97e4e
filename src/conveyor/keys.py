"""`conveyor keys rotate`: re-encrypt every stored payload under the newest key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError, PayloadUndecodable

if TYPE_CHECKING:
    from .app import Conveyor


def rotate_keys(app: Conveyor, page: int = 500) -> int:
    """Re-encrypt payloads not yet under the first key of CONVEYOR_ENCRYPTION_KEYS (plain
    payloads get encrypted too). Safe to run while workers run: each swap is compare-and-set.
    Returns how many payloads changed."""
    if app.codec.keyring is None:
        raise ConfigError("set CONVEYOR_ENCRYPTION_KEYS (newest key first) to rotate keys")
    changed, after = 0, None
    while rows := _scan(app, after, page):
        updates = []
        for job_id, tenant, payload in rows:
            try:
                new = app.codec.reencrypt(payload, job_id, tenant)
            except PayloadUndecodable:
                continue  # no key for it: the job goes dead when it runs, naming the key
            if new is not None:
                updates.append((job_id, payload, new))
        if updates:
            changed += _replace(app, updates)
        after = rows[-1][0]
    return changed


def _scan(app: Conveyor, after: str | None, page: int) -> list[tuple[str, str | None, bytes]]:
    return app.call(lambda store: store.scan_payloads(after, page))


def _replace(app: Conveyor, updates: list[tuple[str, bytes, bytes]]) -> int:
    return app.call(lambda store: store.replace_payloads(updates))
