"""Migration 0038 on a store with pending attempt rows and day rollups (both stores): SQLite
drops the pending rows' index (0031's conveyor_attempts_pending_tasks: every settle's insert
paid for it), PostgreSQL changes nothing; the tasks read of the rows already pending then
sums every one of them, as version 37's read did (there by the index, here by a sort)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.stores import BOTH, raw_execute, store_url_for
from tests.unit.test_pending_tasks_upgrade import EXPECTED, upgraded


@pytest.mark.parametrize("kind", BOTH)
def test_0038_keeps_the_tasks_read_of_the_rows_already_pending(kind: str,
                                                               tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_pendunidx") as url:
        assert upgraded(url, 38) == EXPECTED
        if kind == "sqlite":
            assert raw_execute(url)(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'conveyor_attempts_pending'", None) == []
