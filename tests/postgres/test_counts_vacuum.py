"""The count totals every counter read scans whole (conveyor_counts, conveyor_finished) are
vacuumed by the store with the deltas, after a fold that moved any: each fold rewrites the
rows of the keys it touches, and left to autovacuum (a minute at best; off on this
project's test server) the tables grew with a drain, and every read of the counts walked
the dead space (issue 16: 1,400 rows in 1,817 pages after 2 workers drained a million
jobs, bench/results/2026-12-08-q16.md)."""

from __future__ import annotations

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = 1_700_000_000.0
TABLES = ("conveyor_count_deltas", "conveyor_finished_deltas", "conveyor_counts",
          "conveyor_finished")


def manual_vacuums(schema: str) -> dict[str, int]:
    """How many times each table was vacuumed by a VACUUM statement (vacuum_count, not
    autovacuum's); a vacuum reports to the shared statistics at once."""
    with admin_connect() as conn:
        return {name: int(n) for name, n in conn.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND relname = ANY(%s)", (schema, list(TABLES)))}


async def test_a_fold_vacuums_the_totals_it_rewrote(store: PostgresStore,
                                                    schema: str) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=b"{}")
                              for _ in range(5)], now=T0)
    claimed = await store.claim(None, "w1", 5, 30.0, now=T0)
    await store.settle([Complete(c.lease) for c in claimed], now=T0 + 1)
    assert manual_vacuums(schema) == dict.fromkeys(TABLES, 0)
    assert await store.fold_counts() > 0
    assert manual_vacuums(schema) == dict.fromkeys(TABLES, 1)


async def test_the_totals_are_vacuumed_less_often_than_the_deltas(
        store: PostgresStore, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deltas at most every VACUUM_EVERY seconds, the totals every VACUUM_TOTALS_EVERY
    (they grow a few pages a minute): a second fold at once vacuums neither; with the
    deltas' interval past (here: made 0, for the store's own clock and the server's record
    of the last vacuum alike), only them."""
    from conveyor.store.postgres import counters

    async def churn() -> None:
        await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail",
                                         payload=b"{}")], now=T0)
        assert await store.fold_counts() > 0

    await churn()
    await churn()
    assert manual_vacuums(schema) == dict.fromkeys(TABLES, 1)
    monkeypatch.setattr(counters, "VACUUM_EVERY", 0.0)
    await churn()
    assert manual_vacuums(schema) == {"conveyor_count_deltas": 2, "conveyor_finished_deltas": 2,
                                      "conveyor_counts": 1, "conveyor_finished": 1}
