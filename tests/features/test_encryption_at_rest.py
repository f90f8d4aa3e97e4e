"""With CONVEYOR_ENCRYPTION_KEYS set, results, error messages and tracebacks are stored
encrypted like payloads (AES-GCM, the job id and tenant as associated data): the raw rows,
read with sqlite3 / psycopg directly, hold none of them in clear; readers with the key see
them, readers without it see a placeholder that names the key; `conveyor keys rotate` moves
all of them to the new key. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.stores import BOTH, store_url_for

from conveyor import Conveyor, JobContext, Retry, Settings
from conveyor.testing import run_until_idle

PG_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
RESULT_MARK = "result-" + secrets.token_hex(4)
MESSAGE_MARK = "message-" + secrets.token_hex(4)
PAYLOAD_MARK = "payload-" + secrets.token_hex(4)


def key(name: str) -> str:
    return f"{name}:" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(params=BOTH)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url_for(request.param, tmp_path, "at_rest") as url:
        yield url


def make_app(url: str, keys: str) -> Conveyor:
    app = Conveyor(settings=Settings.load(url=url, encryption_keys=keys), auto_migrate=True)

    @app.task(name="flaky", retry=Retry(attempts=2, backoff="fixed", base=0))
    def flaky(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        if ctx.attempt == 1:
            raise ConnectionError(f"{MESSAGE_MARK} on attempt 1")
        return {"answer": RESULT_MARK}

    @app.task(name="broken", retry=Retry(attempts=1))
    def broken(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise ValueError(f"{MESSAGE_MARK} for good")

    return app


def run_jobs(url: str, keys: str, tenant: str | None = "acme") -> dict[str, str]:
    app = make_app(url, keys)
    try:
        ids = {"flaky": app.enqueue("flaky", {"p": PAYLOAD_MARK}, tenant=tenant).id,
               "broken": app.enqueue("broken", {"p": PAYLOAD_MARK}).id}
        run_until_idle(app)
    finally:
        app.close()
    return ids


def raw_rows(url: str) -> list[tuple[bytes, bytes, str]]:
    """(payload, result, errors) of every job, straight from the database."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT payload, result, errors FROM conveyor_jobs").fetchall()
    else:
        schema = url.split("schema=")[1]
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(f'SELECT payload, result, errors::text FROM "{schema}".'
                                "conveyor_jobs").fetchall()
    return [(bytes(p), bytes(r or b""), str(e)) for p, r, e in rows]


def raw_text(url: str) -> str:
    return " ".join(f"{p!r} {r!r} {e}" for p, r, e in raw_rows(url))


def key_uses(text: str, key_id: str) -> int:
    """Envelopes under `key_id`: as stored, or inside a sealed error's JSON string."""
    return len(re.findall(r'\\?"key\\?":\\?"' + key_id + r'\\?"', text))


def test_results_errors_and_tracebacks_are_stored_encrypted(store_url: str) -> None:
    keys = key("v1")
    ids = run_jobs(store_url, keys)
    stored = raw_text(store_url)
    for plain in (RESULT_MARK, MESSAGE_MARK, PAYLOAD_MARK, "Traceback", "ConnectionError:"):
        assert plain not in stored
    assert key_uses(stored, "v1") == 5  # two payloads, a result, two errors

    reader = make_app(store_url, keys)
    try:
        flaky, broken = reader.get(ids["flaky"]), reader.get(ids["broken"])
    finally:
        reader.close()
    assert flaky.result == {"answer": RESULT_MARK} and flaky.state == "completed"
    [error] = flaky.errors
    assert (error.type, error.message) == ("ConnectionError", f"{MESSAGE_MARK} on attempt 1")
    assert error.traceback is not None and "Traceback (most recent call last)" in error.traceback
    assert f"ConnectionError: {MESSAGE_MARK} on attempt 1" in error.traceback
    assert error.worker == "conveyor-testing" and error.sealed is None
    assert broken.errors[0].message == f"{MESSAGE_MARK} for good"
    assert "sealed" not in broken.to_dict()["errors"][0]


def test_a_reader_without_the_key_sees_a_placeholder(store_url: str, tmp_path: Path) -> None:
    ids = run_jobs(store_url, key("v1"))
    reader = make_app(store_url, key("other"))
    try:
        flaky = reader.get(ids["flaky"])
    finally:
        reader.close()
    assert "key 'v1', which is not in CONVEYOR_ENCRYPTION_KEYS" in flaky.result["$undecodable"]
    [error] = flaky.errors
    assert error.message.startswith("[encrypted] error of job")
    assert "key 'v1'" in error.message and error.traceback is None
    assert error.type == "ConnectionError"  # what is kept in clear

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    outputs = []
    for args in (["job", ids["flaky"]], ["job", ids["broken"], "--json"], ["jobs"]):
        shown = subprocess.run([CONVEYOR, *args], env={**env, "CONVEYOR_URL": store_url},
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert MESSAGE_MARK not in shown.stdout and "Traceback" not in shown.stderr
        outputs.append(shown.stdout)
    assert "[encrypted] error of job" in outputs[0] and '"$undecodable"' in outputs[0]
    assert '"message": "[encrypted] error of job' in outputs[1]


def test_rotation_moves_results_and_errors_to_the_new_key(store_url: str,
                                                          tmp_path: Path) -> None:
    old, new = key("v1"), key("v2")
    before_keys = run_jobs(store_url, "", tenant=None)  # stored in clear, before keys
    with_old = run_jobs(store_url, old)
    assert MESSAGE_MARK in raw_text(store_url)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    done = subprocess.run([CONVEYOR, "keys", "rotate"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**env, "CONVEYOR_URL": store_url,
                                                      "CONVEYOR_ENCRYPTION_KEYS": f"{new},{old}"})
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 4 jobs" in done.stdout

    stored = raw_text(store_url)
    for plain in (RESULT_MARK, MESSAGE_MARK, PAYLOAD_MARK, "Traceback"):
        assert plain not in stored
    assert (key_uses(stored, "v1"), key_uses(stored, "v2")) == (0, 10)
    reader = make_app(store_url, new)  # the old key can go
    try:
        for ids in (before_keys, with_old):
            flaky = reader.get(ids["flaky"])
            assert flaky.result == {"answer": RESULT_MARK}
            assert flaky.payload == {"p": PAYLOAD_MARK}
            assert flaky.errors[0].message == f"{MESSAGE_MARK} on attempt 1"
            assert reader.get(ids["broken"]).errors[0].message == f"{MESSAGE_MARK} for good"
    finally:
        reader.close()
    again = subprocess.run([CONVEYOR, "keys", "rotate"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, env={**env, "CONVEYOR_URL": store_url,
                                                       "CONVEYOR_ENCRYPTION_KEYS": new})
    assert "re-encrypted 0 jobs" in again.stdout
