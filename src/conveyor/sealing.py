"""Encryption at rest of what a job leaves behind: its result, and the message and traceback
of each failed attempt. With CONVEYOR_ENCRYPTION_KEYS set, the worker seals them before they
are written, in the payload's envelope (codec.py) with the job id, the tenant and the purpose
as associated data; readers that hold the key open them, readers that do not see a
placeholder that names the key.

    sealed = seal_result(codec, b'{"total": 42}', job.id, job.tenant)  # the stored bytes
    result = open_result(codec, stored_result, job.id, job.tenant)       # what readers see

A sealed result is stored as the envelope itself (JSON, so the column keeps its type). A
sealed error keeps its attempt, type, worker, host and time in clear and holds its message
and traceback in `sealed`; its clear `message` says "[encrypted]", which is what a Conveyor
release from before sealing shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from .codec import Codec
from .errors import PayloadUndecodable
from .job import ErrorInfo

RESULT = "result"
ERROR = "error"
ENCRYPTED = "[encrypted]"
_ENVELOPE_KEYS = frozenset({"$enc", "key", "nonce", "ct"})


def seal_result(codec: Codec, result: bytes | None, job_id: str,
                tenant: str | None) -> bytes | None:
    """The result as it is stored: sealed when the codec has keys, else unchanged."""
    if codec.keyring is None or result is None:
        return result
    return codec.seal(result, job_id, tenant, RESULT)


def seal_error(codec: Codec, error: ErrorInfo, job_id: str, tenant: str | None) -> ErrorInfo:
    """The error as it is stored: message and traceback sealed when the codec has keys."""
    if codec.keyring is None:
        return error
    inner = orjson.dumps({"message": error.message, "traceback": error.traceback})
    sealed = codec.seal(inner, job_id, tenant, ERROR).decode()
    return replace(error, message=ENCRYPTED, traceback=None, sealed=sealed)


def is_sealed_result(stored: Any) -> bool:
    """Is this stored result (as its JSON loads) an envelope?"""
    return (isinstance(stored, dict) and stored.keys() == _ENVELOPE_KEYS
            and stored["$enc"] == 1)


def open_result(codec: Codec, stored: Any, job_id: str, tenant: str | None) -> Any:
    """The result as readers see it; {"$undecodable": why} when no key opens it (as for
    payloads)."""
    if not is_sealed_result(stored):
        return stored
    try:
        return orjson.loads(codec.unseal(orjson.dumps(stored), job_id, tenant, RESULT))
    except PayloadUndecodable as exc:
        return {"$undecodable": str(exc)}
    except orjson.JSONDecodeError:
        return {"$undecodable": f"result of job {job_id} is not valid JSON"}


def open_error(codec: Codec, error: ErrorInfo, job_id: str, tenant: str | None) -> ErrorInfo:
    """The error as readers see it; its message says why when no key opens it."""
    if error.sealed is None:
        return error
    try:
        message, traceback = _unsealed(codec, error.sealed, job_id, tenant)
    except PayloadUndecodable as exc:
        return replace(error, message=f"{ENCRYPTED} {exc}", traceback=None, sealed=None)
    return replace(error, message=message, traceback=traceback, sealed=None)


def _unsealed(codec: Codec, sealed: str, job_id: str,
              tenant: str | None) -> tuple[str, str | None]:
    """A sealed error's message and traceback; PayloadUndecodable when they cannot be had."""
    try:
        inner = orjson.loads(codec.unseal(sealed.encode(), job_id, tenant, ERROR))
        traceback = inner["traceback"]
        return str(inner["message"]), None if traceback is None else str(traceback)
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise PayloadUndecodable(f"error of job {job_id} is malformed") from exc


def open_errors(codec: Codec, errors: tuple[ErrorInfo, ...], job_id: str,
                tenant: str | None) -> tuple[ErrorInfo, ...]:
    if all(error.sealed is None for error in errors):
        return errors
    return tuple(open_error(codec, error, job_id, tenant) for error in errors)


# --- key rotation -----------------------------------------------------------------------------


def reseal_result(codec: Codec, stored: bytes | None, job_id: str,
                  tenant: str | None) -> bytes | None:
    """The stored result under the newest key, or None when it is there already (or there is
    no result). A result in clear is sealed too. PayloadUndecodable when no key opens it."""
    if stored is None:
        return None
    return codec.reencrypt(stored, job_id, tenant, RESULT)


def reseal_errors(codec: Codec, stored: str, job_id: str, tenant: str | None) -> str | None:
    """The stored errors (the column's JSON) with every error under the newest key, or None
    when each is there already. An error no key opens is left as it is."""
    errors = [ErrorInfo.from_dict(e) for e in orjson.loads(stored or "[]")]
    resealed = [_reseal_error(codec, error, job_id, tenant) for error in errors]
    if all(new is None for new in resealed):
        return None
    return _errors_json([new or old for old, new in zip(errors, resealed, strict=True)])


def _reseal_error(codec: Codec, error: ErrorInfo, job_id: str,
                  tenant: str | None) -> ErrorInfo | None:
    assert codec.keyring is not None
    if error.sealed is not None:
        try:
            if orjson.loads(error.sealed)["key"] == codec.keyring.current:
                return None
            message, traceback = _unsealed(codec, error.sealed, job_id, tenant)
        except (PayloadUndecodable, orjson.JSONDecodeError, KeyError, TypeError):
            return None  # no key here opens it: leave it for a keyring that does
        error = replace(error, message=message, traceback=traceback, sealed=None)
    return seal_error(codec, error, job_id, tenant)


def _errors_json(errors: Sequence[ErrorInfo]) -> str:
    return orjson.dumps([error.to_dict() for error in errors]).decode()
