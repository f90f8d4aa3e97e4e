"""disclosure.py and sealing.py: what readers are shown (stored paths merged with the
registry's, sensitive values scrubbed wherever they turn up) and the sealing of results and
errors (purposes kept apart, a job's ciphertext not valid on another)."""

from __future__ import annotations

import os
from typing import Annotated

import orjson
import pytest
from pydantic import BaseModel

from conveyor import Conveyor, PayloadUndecodable, Sensitive
from conveyor.codec import REDACTED, Codec, Keyring
from conveyor.disclosure import Scrubber, merge_paths, reveal, sensitive_values
from conveyor.job import ErrorInfo, Job, JobState
from conveyor.sealing import (
    open_error,
    open_result,
    reseal_errors,
    seal_error,
    seal_result,
)
from conveyor.task import TaskRegistry


def codec(*names: str) -> Codec:
    return Codec(Keyring([(name, os.urandom(32)) for name in names]))


class Login(BaseModel):
    user: str
    password: Annotated[str, Sensitive]


def stored_job(**fields: object) -> Job:
    values: dict[str, object] = {"id": "job-1", "task": "log_in", "queue": "q",
                                 "payload": b'{"user":"ann","password":"s3cret-pw"}',
                                 "state": JobState.DEAD}
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def test_merge_paths_keeps_what_either_tree_marks() -> None:
    assert merge_paths({"a": True, "b": {"c": True}}, {"b": {"d": True}, "e": True}) == {
        "a": True, "b": {"c": True, "d": True}, "e": True}
    assert merge_paths({"b": {"c": True}}, {"b": True}) == {"b": True}
    assert merge_paths({"b": True}, {"b": {"c": True}}) == {"b": True}
    assert merge_paths({}, {}) == {}


def test_sensitive_values_walk_lists_maps_and_nested_values() -> None:
    payload = {"cards": [{"number": "4111", "brand": "v"}, {"number": 4222}],
               "notes": {"x": {"secret": ["a1b", True, None, ""]}}, "flag": True}
    paths = {"cards": {"number": True}, "notes": {"*": {"secret": True}}, "flag": True}
    assert sensitive_values(payload, paths) == {"4111", 4222, "a1b"}


def test_scrubber_replaces_values_as_written_as_json_and_as_repr() -> None:
    scrub = Scrubber({'pa"ss\nword', 123456, "ab"})
    assert scrub.text("got 'pa\"ss\\nword' here") == f"got '{REDACTED}' here"  # repr
    assert scrub.text('{"p": "pa\\"ss\\nword"}') == f'{{"p": "{REDACTED}"}}'    # JSON
    assert scrub.text("line 123456 of ab") == f"line {REDACTED} of ab"  # too short in text
    assert scrub.value({"ab": ["ab", 123456, 7, 'x pa"ss\nword y', True]}) == {
        REDACTED: [REDACTED, REDACTED, 7, f"x {REDACTED} y", True]}
    assert Scrubber(set()).text("anything") == "anything"


def test_reveal_redacts_by_stored_paths_without_the_task() -> None:
    job = stored_job(sensitive={"password": True}, result={"echo": "s3cret-pw"},
                     progress_step="using s3cret-pw",
                     errors=(ErrorInfo(1, "E", "bad s3cret-pw", "E: bad 's3cret-pw'"),))
    shown = reveal(job, Codec(), TaskRegistry(), redacted=True)
    assert shown.payload == {"user": "ann", "password": REDACTED}
    assert shown.result == {"echo": REDACTED} and shown.progress_step == f"using {REDACTED}"
    assert (shown.errors[0].message, shown.errors[0].traceback) == (
        f"bad {REDACTED}", f"E: bad '{REDACTED}'")
    owner = reveal(job, Codec(), TaskRegistry(), redacted=False)
    assert owner.payload["password"] == "s3cret-pw" and owner.result == {"echo": "s3cret-pw"}


def test_reveal_falls_back_to_the_registry_for_jobs_without_paths() -> None:
    app = Conveyor("sqlite:///:memory:")
    app.task(name="log_in", schema=Login)(lambda ctx, payload: None)
    shown = reveal(stored_job(result="s3cret-pw"), app.codec, app.registry, redacted=True)
    assert shown.payload["password"] == REDACTED and shown.result == REDACTED
    unknown = reveal(stored_job(task="other"), Codec(), TaskRegistry(), redacted=True)
    assert unknown.payload["password"] == "s3cret-pw"  # nothing says it is sensitive


def test_sealed_results_and_errors_open_only_for_their_job_and_purpose() -> None:
    keys = codec("v1")
    sealed = seal_result(keys, b'{"n":1}', "job-1", "acme")
    assert sealed is not None and b'"n"' not in sealed
    stored = orjson.loads(sealed)
    assert open_result(keys, stored, "job-1", "acme") == {"n": 1}
    assert "$undecodable" in open_result(keys, stored, "job-2", "acme")
    assert "$undecodable" in open_result(keys, stored, "job-1", None)
    with pytest.raises(PayloadUndecodable):  # a result's envelope is not a payload's
        keys.decode(sealed, "job-1", "acme")
    error = seal_error(keys, ErrorInfo(1, "E", "msg", "tb", "w"), "job-1", "acme")
    assert (error.message, error.traceback, error.type, error.worker) == (
        "[encrypted]", None, "E", "w")
    assert open_error(keys, error, "job-1", "acme") == ErrorInfo(1, "E", "msg", "tb", "w")
    moved = open_error(keys, error, "job-2", "acme")
    assert moved.message.startswith("[encrypted] error of job job-2 does not decrypt")
    # nor an error's
    assert open_error(keys, ErrorInfo(1, "E", "", sealed=sealed.decode()), "job-1",
                      "acme").message.startswith("[encrypted]")


def test_without_keys_nothing_is_sealed_and_clear_values_pass() -> None:
    plain = Codec()
    assert seal_result(plain, b"1", "j", None) == b"1"
    error = ErrorInfo(1, "E", "m", "t")
    assert seal_error(plain, error, "j", None) is error
    assert open_result(plain, {"a": 1}, "j", None) == {"a": 1}
    assert open_error(plain, error, "j", None) is error


def test_reseal_errors_moves_each_to_the_newest_key_and_keeps_what_it_cannot_open() -> None:
    old, lost = codec("v1"), codec("gone")
    both = Codec(Keyring([("v2", os.urandom(32)), ("v1", old.keyring.keys["v1"])]))  # type: ignore[union-attr]
    errors = [seal_error(old, ErrorInfo(1, "E", "one", "tb1"), "j", None),
              ErrorInfo(2, "E", "two in clear", "tb2"),
              seal_error(lost, ErrorInfo(3, "E", "three"), "j", None)]
    stored = orjson.dumps([e.to_dict() for e in errors]).decode()
    resealed = reseal_errors(both, stored, "j", None)
    assert resealed is not None
    after = [ErrorInfo.from_dict(e) for e in orjson.loads(resealed)]
    assert [orjson.loads(e.sealed or "{}").get("key") for e in after] == ["v2", "v2", "gone"]
    assert [open_error(both, e, "j", None).message for e in after[:2]] == ["one", "two in clear"]
    assert after[2] == errors[2]
    assert reseal_errors(both, resealed, "j", None) is None  # nothing left to move
