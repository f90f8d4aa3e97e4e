"""codec.py: JSON encode/decode, AES-GCM envelopes with rotating keys, and redaction of
Sensitive schema fields."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from conveyor import ConfigError, Conveyor, ConveyorError, PayloadUndecodable, Sensitive, Settings
from conveyor.codec import REDACTED, Codec, Keyring, PayloadTooLarge, redact, sensitive_paths


def _key(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


class Card(BaseModel):
    number: Annotated[str, Sensitive]
    brand: str


class Evaluate(BaseModel):
    assessment_id: str
    transcript: Annotated[str, Sensitive]
    card: Card | None = None
    cards: list[Card] = []


def test_sensitive_paths_find_marked_and_nested_fields() -> None:
    assert sensitive_paths(Evaluate) == {"transcript": True, "card": {"number": True},
                                         "cards": {"number": True}}
    assert sensitive_paths(None) == {}
    assert sensitive_paths(Card) == {"number": True}


def test_redact_masks_sensitive_values_at_every_depth() -> None:
    payload = {"assessment_id": "a1", "transcript": "the secret words",
               "card": {"number": "4111", "brand": "visa"},
               "cards": [{"number": "5500", "brand": "mc"}, {"number": "3400", "brand": "ax"}]}
    out = redact(payload, sensitive_paths(Evaluate))
    assert out == {"assessment_id": "a1", "transcript": REDACTED,
                   "card": {"number": REDACTED, "brand": "visa"},
                   "cards": [{"number": REDACTED, "brand": "mc"},
                             {"number": REDACTED, "brand": "ax"}]}
    assert payload["transcript"] == "the secret words"  # the input is not modified


def test_redact_leaves_missing_fields_and_other_shapes_alone() -> None:
    paths = sensitive_paths(Evaluate)
    assert redact({"assessment_id": "a1", "card": None}, paths) == {
        "assessment_id": "a1", "card": None}
    assert redact("plain", paths) == "plain"
    assert redact({"transcript": "x"}, {}) == {"transcript": "x"}


def test_app_get_redacted_masks_the_payload(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'r.db'}", settings=Settings())

    @app.task(schema=Evaluate)
    def evaluate(ctx: Any, payload: Evaluate) -> None: ...

    try:
        job = evaluate.enqueue({"assessment_id": "a1", "transcript": "I said things"})
        assert app.get(job.id).payload["transcript"] == "I said things"
        shown = app.get(job.id, redacted=True).payload
        assert shown["transcript"] == REDACTED and shown["assessment_id"] == "a1"
        listed = app.list_jobs(redacted=True)
        assert listed[0].payload["transcript"] == REDACTED
    finally:
        app.close()


class Aliased(BaseModel):
    user: str
    api_secret: Annotated[str, Sensitive] = Field(alias="apiSecret")


def test_a_sensitive_field_with_an_alias_is_redacted(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'r.db'}", settings=Settings())

    @app.task(schema=Aliased)
    def call_api(ctx: Any, payload: Aliased) -> None: ...

    try:
        job = call_api.enqueue({"user": "u1", "apiSecret": "sk-live-123"})
        shown = app.get(job.id, redacted=True).payload
        assert "sk-live-123" not in repr(shown), f"the secret leaked through redaction: {shown}"
    finally:
        app.close()


class Wallet(BaseModel):
    cards: dict[str, Card]


def test_sensitive_fields_inside_a_dict_of_models_are_redacted() -> None:
    payload = Wallet(cards={"main": Card(number="4111", brand="visa")}).model_dump(mode="json")
    shown = redact(payload, sensitive_paths(Wallet))
    assert "4111" not in repr(shown), f"the card number leaked through redaction: {shown}"


# --- encoding and encryption ------------------------------------------------------------------


def test_plain_codec_is_json() -> None:
    codec = Codec()
    raw = codec.encode({"a": 1, "b": [True, None]}, "job-1", None)
    assert raw == b'{"a":1,"b":[true,null]}'
    assert codec.decode(raw, "job-1", None) == {"a": 1, "b": [True, None]}
    assert codec.decode(raw.decode(), "job-1", None) == {"a": 1, "b": [True, None]}
    assert not codec.is_encrypted(raw)


def test_undecodable_plain_payload() -> None:
    with pytest.raises(PayloadUndecodable, match="job-1"):
        Codec().decode(b"{not json", "job-1", None)


def test_payloads_over_the_limit_are_refused() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        Codec(max_payload_bytes=10).encode({"text": "x" * 20}, "job-1", None)
    assert (caught.value.limit, caught.value.size) == (10, len(b'{"text":"' + b"x" * 20 + b'"}'))


def test_unserialisable_payload_is_a_conveyor_error() -> None:
    with pytest.raises(ConveyorError, match="not JSON-serialisable"):
        Codec().encode({"when": object()}, "job-1", None)


def test_encryption_round_trip_and_binding_to_job_and_tenant() -> None:
    codec = Codec(Keyring.parse(f"v1:{_key()}"))
    raw = codec.encode({"secret": "correct horse battery"}, "job-1", "org-1")
    assert codec.is_encrypted(raw) and b"horse" not in raw
    assert codec.decode(raw, "job-1", "org-1") == {"secret": "correct horse battery"}
    with pytest.raises(PayloadUndecodable, match="'v1'"):
        codec.decode(raw, "job-2", "org-1")   # copied onto another job
    with pytest.raises(PayloadUndecodable, match="'v1'"):
        codec.decode(raw, "job-1", "org-2")   # or another tenant


def test_each_encryption_uses_a_fresh_nonce() -> None:
    codec = Codec(Keyring.parse(f"v1:{_key()}"))
    assert codec.encode({"a": 1}, "j", None) != codec.encode({"a": 1}, "j", None)


def test_first_key_encrypts_and_every_key_decrypts() -> None:
    k1, k2 = _key(), _key()
    old = Codec(Keyring.parse(f"v1:{k1}"))
    both = Codec(Keyring.parse(f"v2:{k2},v1:{k1}"))
    raw = old.encode({"a": 1}, "j", None)
    assert both.decode(raw, "j", None) == {"a": 1}
    assert b'"key":"v2"' in both.encode({"a": 1}, "j", None)
    reencrypted = both.reencrypt(raw, "j", None)
    assert reencrypted is not None and b'"key":"v2"' in reencrypted
    assert both.decode(reencrypted, "j", None) == {"a": 1}
    assert both.reencrypt(reencrypted, "j", None) is None


def test_a_missing_key_names_its_id_and_nothing_secret() -> None:
    secret_key = _key()
    raw = Codec(Keyring.parse(f"v1:{secret_key}")).encode({"pin": "9999"}, "j", None)
    for codec in (Codec(), Codec(Keyring.parse(f"v2:{_key()}"))):
        with pytest.raises(PayloadUndecodable) as caught:
            codec.decode(raw, "j", None)
        assert "'v1'" in str(caught.value)
        assert secret_key not in str(caught.value) and "9999" not in str(caught.value)


@pytest.mark.parametrize(("spec", "words"), [
    ("v1", "look like v1:BASE64KEY"),
    (":abc", "look like v1:BASE64KEY"),
    ("v1:not base64!!", "not valid base64"),
    (f"v1:{base64.b64encode(b'short').decode()}", "16, 24 or 32 bytes"),
])
def test_bad_key_specs_are_config_errors(spec: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Keyring.parse(spec)


def test_empty_key_spec_means_no_encryption() -> None:
    assert Keyring.parse("  ") is None
