"""Payload encode/decode: JSON, optional AES-GCM encryption with rotating keys, redaction.

Encrypted payloads are stored as a small JSON envelope `{"$enc": 1, "key": ID, "nonce": ...,
"ct": ...}` whose associated data is the job id and tenant, so a ciphertext copied onto
another job or tenant does not decrypt. Results and errors use the same envelope (sealing.py)
with their purpose added to the associated data, so one does not pass for another.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any, get_args, get_origin

import orjson
from pydantic import BaseModel

from .errors import ConfigError, ConveyorError, PayloadUndecodable

REDACTED = "[redacted]"
_ENC_PREFIX = b'{"$enc"'


class _SensitiveMarker:
    """Marks a schema field whose value never leaves the server in clear:
    `transcript: Annotated[str, Sensitive]`."""

    def __repr__(self) -> str:
        return "Sensitive"


Sensitive = _SensitiveMarker()


class PayloadTooLarge(ConveyorError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload is {size} bytes, over the limit of {limit} bytes "
                         "(store large data elsewhere and pass a reference)")
        self.size = size
        self.limit = limit


class Keyring:
    """Keys from CONVEYOR_ENCRYPTION_KEYS: `v2:BASE64KEY,v1:BASE64KEY`; the first encrypts."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("a Keyring needs at least one key")
        for key_id, key in keys:
            if len(key) not in (16, 24, 32):
                raise ConfigError(f"encryption key {key_id!r} must be 16, 24 or 32 bytes, "
                                  f"not {len(key)}")
        self.keys = dict(keys)
        self.current = keys[0][0]

    @classmethod
    def parse(cls, spec: str) -> Keyring | None:
        spec = spec.strip()
        if not spec:
            return None
        keys: list[tuple[str, bytes]] = []
        for part in spec.split(","):
            key_id, sep, b64 = part.strip().partition(":")
            if not sep or not key_id:
                raise ConfigError("CONVEYOR_ENCRYPTION_KEYS entries look like v1:BASE64KEY")
            try:
                keys.append((key_id, base64.b64decode(b64, validate=True)))
            except ValueError as exc:
                raise ConfigError(f"encryption key {key_id!r} is not valid base64") from exc
        return cls(keys)


def _aad(job_id: str, tenant: str | None, purpose: str) -> bytes:
    """The associated data: the job and tenant, and for anything but the payload (whose
    envelopes predate purposes) what the ciphertext is: "result", "error"."""
    if not purpose:
        return f"{job_id}\x1f{tenant or ''}".encode()
    return f"{job_id}\x1f{tenant or ''}\x1f{purpose}".encode()


class Codec:
    def __init__(self, keyring: Keyring | None = None,
                 max_payload_bytes: int = 1_048_576) -> None:
        self.keyring = keyring
        self.max_payload_bytes = max_payload_bytes

    def encode(self, payload: Any, job_id: str, tenant: str | None) -> bytes:
        try:
            # orjson's result keeps its whole working buffer (4 kB however small the JSON):
            # a copy the exact size is cheaper than keeping that alive for every queued job.
            raw = bytes(memoryview(orjson.dumps(payload)))
        except TypeError as exc:
            raise ConveyorError(f"payload is not JSON-serialisable: {exc}") from exc
        if len(raw) > self.max_payload_bytes:
            raise PayloadTooLarge(len(raw), self.max_payload_bytes)
        if self.keyring is None:
            return raw
        return self._encrypt(raw, job_id, tenant)

    def decode(self, raw: bytes | str, job_id: str, tenant: str | None) -> Any:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        if data.startswith(_ENC_PREFIX):
            data = self._decrypt(data, job_id, tenant)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise PayloadUndecodable(f"payload of job {job_id} is not valid JSON") from exc

    def is_encrypted(self, raw: bytes | str) -> bool:
        data = raw.encode() if isinstance(raw, str) else raw
        return data.startswith(_ENC_PREFIX)

    def reencrypt(self, raw: bytes, job_id: str, tenant: str | None,
                  purpose: str = "") -> bytes | None:
        """The value (a payload, or what `purpose` names) under the newest key, or None when
        it is already there. Raises PayloadUndecodable when no key opens it."""
        if self.keyring is None:
            return None
        if raw.startswith(_ENC_PREFIX) and orjson.loads(raw)["key"] == self.keyring.current:
            return None
        plain = (self._decrypt(raw, job_id, tenant, purpose) if raw.startswith(_ENC_PREFIX)
                 else raw)
        return self._encrypt(plain, job_id, tenant, purpose)

    def seal(self, plain: bytes, job_id: str, tenant: str | None, purpose: str) -> bytes:
        """`plain` encrypted under the newest key (the caller checks there is a keyring)."""
        return self._encrypt(plain, job_id, tenant, purpose)

    def unseal(self, envelope: bytes, job_id: str, tenant: str | None, purpose: str) -> bytes:
        """What seal encrypted; PayloadUndecodable (naming the key) when no key opens it."""
        return self._decrypt(envelope, job_id, tenant, purpose)

    def _encrypt(self, plain: bytes, job_id: str, tenant: str | None,
                 purpose: str = "") -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        assert self.keyring is not None
        key_id = self.keyring.current
        nonce = os.urandom(12)
        ct = AESGCM(self.keyring.keys[key_id]).encrypt(nonce, plain,
                                                       _aad(job_id, tenant, purpose))
        return orjson.dumps({"$enc": 1, "key": key_id, "nonce": base64.b64encode(nonce).decode(),
                             "ct": base64.b64encode(ct).decode()})

    def _decrypt(self, data: bytes, job_id: str, tenant: str | None,
                 purpose: str = "") -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        what = f"{purpose or 'payload'} of job {job_id}"
        try:
            env = orjson.loads(data)
            key_id = str(env["key"])
            nonce, ct = base64.b64decode(env["nonce"]), base64.b64decode(env["ct"])
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise PayloadUndecodable(f"{what}: malformed encryption envelope") from exc
        if self.keyring is None or key_id not in self.keyring.keys:
            raise PayloadUndecodable(f"{what} is encrypted with key {key_id!r}, which is not "
                                     "in CONVEYOR_ENCRYPTION_KEYS")
        try:
            return AESGCM(self.keyring.keys[key_id]).decrypt(nonce, ct,
                                                             _aad(job_id, tenant, purpose))
        except ValueError as exc:  # e.g. a nonce of the wrong length: not one we wrote
            raise PayloadUndecodable(f"{what}: malformed encryption envelope ({exc})") from exc
        except InvalidTag as exc:
            raise PayloadUndecodable(f"{what} does not decrypt with key {key_id!r} (wrong "
                                     "key, or moved to another job or tenant)") from exc


# --- redaction --------------------------------------------------------------------------------


def sensitive_paths(schema: type[BaseModel] | None) -> dict[str, Any]:
    """A tree of field names to redact: {"transcript": True, "card": {"number": True}}."""
    if schema is None:
        return {}
    tree: dict[str, Any] = {}
    for name, info in schema.model_fields.items():
        key = info.alias or name
        if any(m is Sensitive for m in info.metadata):
            tree[key] = True
            continue
        nested = _nested_model(info.annotation)
        if nested is not None:
            sub = sensitive_paths(nested)
            if sub:
                tree[key] = {"*": sub} if _is_mapping(info.annotation) else sub
    return tree


def _is_mapping(annotation: Any) -> bool:
    """dict[str, Model] (possibly inside Optional): its values are models, keyed freely."""
    origin = get_origin(annotation)
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return True
    return any(_is_mapping(arg) for arg in get_args(annotation) if get_origin(arg) is not None)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def redact(payload: Any, paths: Mapping[str, Any]) -> Any:
    """A copy of `payload` with every sensitive field replaced by "[redacted]"."""
    if not paths:
        return payload
    if isinstance(payload, list):
        return [redact(item, paths) for item in payload]
    if not isinstance(payload, dict):
        return payload
    if "*" in paths:  # a dict of models: every value has the same sensitive fields
        return {key: redact(value, paths["*"]) for key, value in payload.items()}
    out = dict(payload)
    for key, sub in paths.items():
        if key not in out:
            continue
        out[key] = REDACTED if sub is True else redact(out[key], sub)
    return out
