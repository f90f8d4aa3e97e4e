"""Property tests below the API (issue 13): the payload codec, the encryption envelope's
decoding, and the settings parser, with hypothesis. Example counts are bounded so the file
runs in a few seconds; no deadline, as a shared CI machine's pauses are not failures."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import Settings
from conveyor.codec import Codec, Keyring
from conveyor.errors import ConfigError, ConveyorError, PayloadUndecodable
from conveyor.job import ErrorInfo
from conveyor.sealing import open_error, open_result, seal_error, seal_result

BOUNDED = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

# JSON as orjson writes it back: 64-bit integers, finite floats, text without lone surrogates
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                    | st.dictionaries(TEXT, inner, max_size=5), max_leaves=25)
JOB_IDS = st.text("0123456789abcdef-", min_size=1, max_size=36)
TENANTS = st.none() | st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
KEYS = st.binary(min_size=32, max_size=32)


def keyring(*keys: tuple[str, bytes]) -> Keyring:
    return Keyring(list(keys))


@BOUNDED
@given(payload=JSON, job_id=JOB_IDS, tenant=TENANTS)
def test_plain_payloads_round_trip(payload: Any, job_id: str, tenant: str | None) -> None:
    codec = Codec(max_payload_bytes=1 << 30)
    assert codec.decode(codec.encode(payload, job_id, tenant), job_id, tenant) == payload


@BOUNDED
@given(payload=JSON, job_id=JOB_IDS, tenant=TENANTS, old=KEYS, new=KEYS)
def test_encrypted_payloads_round_trip_across_a_key_rotation(
        payload: Any, job_id: str, tenant: str | None, old: bytes, new: bytes) -> None:
    before = Codec(keyring(("v1", old)), max_payload_bytes=1 << 30)
    stored = before.encode(payload, job_id, tenant)
    assert before.is_encrypted(stored) and before.decode(stored, job_id, tenant) == payload
    during = Codec(keyring(("v2", new), ("v1", old)))  # the new key first, the old one kept
    assert during.decode(stored, job_id, tenant) == payload
    rotated = during.reencrypt(stored, job_id, tenant)
    assert rotated is not None and orjson.loads(rotated)["key"] == "v2"
    assert during.reencrypt(rotated, job_id, tenant) is None  # already under the newest
    after = Codec(keyring(("v2", new)))  # the old key dropped
    assert after.decode(rotated, job_id, tenant) == payload
    with pytest.raises(PayloadUndecodable, match="'v1'"):
        after.decode(stored, job_id, tenant)


@BOUNDED
@given(payload=JSON, job_id=JOB_IDS, other=JOB_IDS, tenant=TENANTS, key=KEYS)
def test_an_envelope_moved_to_another_job_does_not_open(
        payload: Any, job_id: str, other: str, tenant: str | None, key: bytes) -> None:
    codec = Codec(keyring(("v1", key)), max_payload_bytes=1 << 30)
    stored = codec.encode(payload, job_id, tenant)
    if other != job_id:
        with pytest.raises(PayloadUndecodable, match="does not decrypt"):
            codec.decode(stored, other, tenant)


@BOUNDED
@given(result=JSON, message=TEXT, traceback=st.none() | TEXT, job_id=JOB_IDS,
       tenant=TENANTS, old=KEYS, new=KEYS)
def test_sealed_results_and_errors_open_across_a_key_rotation(
        result: Any, message: str, traceback: str | None, job_id: str, tenant: str | None,
        old: bytes, new: bytes) -> None:
    before = Codec(keyring(("v1", old)))
    during = Codec(keyring(("v2", new), ("v1", old)))
    sealed = seal_result(before, orjson.dumps(result), job_id, tenant)
    assert sealed is not None
    assert open_result(during, orjson.loads(sealed), job_id, tenant) == result
    error = ErrorInfo(1, "ValueError", message, traceback, "w1", "h1", 0.0)
    opened = open_error(during, seal_error(before, error, job_id, tenant), job_id, tenant)
    assert (opened.message, opened.traceback) == (message, traceback)
    unknown = open_result(Codec(keyring(("v3", new))), orjson.loads(sealed), job_id, tenant)
    assert set(unknown) == {"$undecodable"}


# --- envelope decoding: anything stored decodes or fails with PayloadUndecodable ----------

B64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
INTS = st.integers(-(2**63), 2**63 - 1)
FIELD = (st.none() | st.booleans() | INTS | TEXT | B64
         | st.lists(INTS, max_size=3) | st.dictionaries(TEXT, INTS, max_size=2))
ENVELOPES = st.fixed_dictionaries(
    {"$enc": st.just(1) | FIELD, "key": st.sampled_from(["v1", "v2"]) | FIELD,
     "nonce": B64 | FIELD, "ct": B64 | FIELD}).map(orjson.dumps)
STORED = (st.binary(max_size=200) | ENVELOPES
          | st.binary(max_size=120).map(lambda b: b'{"$enc"' + b))


@settings(max_examples=250, deadline=None)
@given(raw=STORED, job_id=JOB_IDS, tenant=TENANTS, key=KEYS, with_keys=st.booleans())
def test_any_stored_bytes_decode_or_fail_cleanly(
        raw: bytes, job_id: str, tenant: str | None, key: bytes, with_keys: bool) -> None:
    codec = Codec(keyring(("v1", key)) if with_keys else None)
    try:
        codec.decode(raw, job_id, tenant)
    except PayloadUndecodable as exc:
        assert job_id in str(exc)


@settings(max_examples=150, deadline=None)
@given(raw=ENVELOPES, job_id=JOB_IDS, key=KEYS)
def test_any_sealed_value_opens_or_reads_as_undecodable(raw: bytes, job_id: str,
                                                        key: bytes) -> None:
    codec = Codec(keyring(("v1", key)))
    opened = open_result(codec, orjson.loads(raw), job_id, None)
    assert opened == orjson.loads(raw) or set(opened) == {"$undecodable"}
    error = ErrorInfo(1, "E", "[encrypted]", None, "w", "h", 0.0, sealed=raw.decode())
    assert open_error(codec, error, job_id, None).sealed is None


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30), depth=st.integers(0, 3))
def test_encoding_anything_gives_bytes_or_a_conveyor_error(text: str, depth: int) -> None:
    payload: Any = text
    for _ in range(depth):
        payload = {text: [payload, 2**70 if depth == 3 else 1]}
    try:
        assert isinstance(Codec().encode(payload, "j", None), bytes)
    except ConveyorError as exc:
        assert "payload" in str(exc)


# --- the settings parser: any environment gives Settings or a ConfigError -----------------

SETTING_NAMES = [f"CONVEYOR_{name.upper()}" for name in Settings.__dataclass_fields__]
VALUES = (st.text(max_size=12) | st.integers().map(str)
          | st.floats(allow_nan=True, allow_infinity=True).map(repr)
          | st.sampled_from(["", "0", "-1", "1e400", "nan", "inf", "true", "off", "json",
                             "FULL", "auto", "2.5", " 7 ", "0x10", "1_000"]))


@settings(max_examples=250, deadline=None)
@given(env=st.dictionaries(st.sampled_from(SETTING_NAMES), VALUES, max_size=6))
def test_any_environment_gives_settings_or_a_config_error(env: dict[str, str]) -> None:
    missing = str(Path(os.devnull).parent / "no-such-conveyor.toml")
    try:
        loaded = Settings.load(env={**env, "CONVEYOR_CONFIG": missing})
    except ConfigError as exc:
        assert "CONVEYOR_" in str(exc) or "setting" in str(exc)
        return
    assert loaded.lease > 0 and 0 < loaded.heartbeat < loaded.lease
    assert loaded.max_batch >= 1 and loaded.concurrency >= 1
    assert loaded.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
