"""A store URL for tests that run on both stores: a SQLite file in the test's folder, or a
schema of its own on the test PostgreSQL (dropped afterwards; skipped when the server is
unreachable, except in CI, where that fails)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def store_url_for(kind: str, folder: Path, prefix: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'jobs.db'}"
        return
    schema = f"{prefix}_{secrets.token_hex(5)}"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
