"""A batch's jobs on PostgreSQL (conveyor_job_batches, migration 0037): written by every
insert path (the COPY of a streamed batch too), gone with their jobs (a TRUNCATE too), and
read as one range of that table's key, each job then by its own key: no walk of the jobs
table, however their rows moved."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.job import JobFilter, NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres import queries as q
from conveyor.store.postgres.reads import _where
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_explain import explain, filled_schema, plan_nodes

pytestmark = pytest.mark.postgres

# 200,000 jobs, one in ten of a batch of 500 spread over 5,000 ids (bench/reads.py's shape),
# and one in two of the oldest 50,000 of one large batch
FILL = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, payload, created_at, run_at,
                                    finished_at, batch_id)
SELECT lpad(n::text, 12, '0'), 'fill.task', 'queue-' || (n % 7),
       CASE WHEN n % 100 = 0 THEN 'queued' ELSE 'completed' END,
       '\\x7b7d', 1700000000 + n, 1700000000 + n,
       CASE WHEN n % 100 <> 0 THEN 1700000000 + n END,
       CASE WHEN n % 10 = 0 THEN 'batch-' || (n / 5000)
            WHEN n <= 50000 AND n % 2 = 1 THEN 'old-large' END
FROM generate_series(1, 200000) AS n;
ANALYZE {schema}.conveyor_job_batches"""


async def three_in_a_batch_and_one_alone(store: PostgresStore) -> tuple[str, list[str]]:
    """Enqueues 3 jobs of a new batch and 1 of none: (the batch id, the 4 ids in order)."""
    batch = new_id()
    ids = [r.id for r in await store.enqueue_many(
        [NewJob(id=new_id(), task="t", queue="q", payload=b"{}", batch_id=batch)
         for _ in range(3)] + [NewJob(id=new_id(), task="t", queue="q", payload=b"{}")])]
    return batch, ids


def back_to_version_36(conn: Any, schema: str) -> None:
    """The schema as version 36 left it: no batches' table, the BRIN, 0037 on unapplied."""
    conn.execute(f'DROP TABLE "{schema}".conveyor_job_batches')
    conn.execute(f'CREATE INDEX conveyor_jobs_batch ON "{schema}".conveyor_jobs'
                 ' USING brin (batch_id) WHERE batch_id IS NOT NULL')
    conn.execute(f'DELETE FROM "{schema}".conveyor_schema WHERE version >= 37')


@pytest.fixture(scope="module")
def batched() -> Iterator[PostgresStore]:
    yield from filled_schema(FILL)


def batch_rows(schema: str) -> int:
    with admin_connect() as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".conveyor_job_batches').fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.anyio
async def test_a_copied_batch_is_listed_and_a_truncate_forgets_it(store: PostgresStore,
                                                                  schema: str) -> None:
    batch = new_id()
    jobs = [NewJob(id=new_id(), task="bulk.task", queue="bulk", payload=b"{}", batch_id=batch)
            for _ in range(1200)]
    assert len(await asyncio.to_thread(store.enqueue_stream, iter(jobs))) == 1200
    listed = await store.list_jobs(JobFilter(batch_id=batch), limit=1000)
    assert [j.id for j in listed] == [j.id for j in reversed(jobs)][:1000]
    assert await store.count_jobs(JobFilter(batch_id=batch)) == 1200
    assert batch_rows(schema) == 1200
    with admin_connect() as conn:
        conn.execute(f'TRUNCATE "{schema}".conveyor_jobs')
    assert batch_rows(schema) == 0


@pytest.mark.anyio
async def test_only_jobs_with_a_batch_take_a_row_and_deletes_take_theirs(
        store: PostgresStore, schema: str) -> None:
    batch, ids = await three_in_a_batch_and_one_alone(store)
    assert batch_rows(schema) == 3
    claimed = await store.claim(["q"], "w", 4, 30.0)
    assert await store.settle([Complete(c.lease) for c in claimed]) == [True] * 4
    assert batch_rows(schema) == 3  # a claim and a settle (updates) write nothing there
    assert await store.discard([ids[1], ids[3]]) == 2
    assert batch_rows(schema) == 2
    assert [j.id for j in await store.list_jobs(JobFilter(batch_id=batch))] == [ids[2], ids[0]]


def batch_plan(store: PostgresStore, where: JobFilter, after: str | None,
               generic: bool) -> list[dict[str, Any]]:
    where_sql, params = _where(where, after, 51)
    return explain(store, f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}", params, generic)


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("after", [None, "000000100000"], ids=["first page", "next page"])
def test_a_batch_page_reads_its_key_range_and_each_job_by_id(
        batched: PostgresStore, after: str | None, generic: bool) -> None:
    nodes = batch_plan(batched, JobFilter(batch_id="batch-20"), after, generic)
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes
             if n.get("Relation Name")]
    assert ("Index Only Scan", "conveyor_job_batches",
            "conveyor_job_batches_pkey") in scans, scans
    assert ("Index Scan", "conveyor_jobs", "conveyor_jobs_pkey") in scans, scans
    assert all(kind != "Seq Scan" for kind, _, _ in scans), scans
    # newest first in the key's own order, stopping at the page's end: nothing sorted
    assert nodes[0]["Node Type"] == "Limit", nodes[0]
    assert not any(n["Node Type"] == "Sort" for n in nodes), nodes


@pytest.mark.anyio
async def test_version_37_copies_the_batches_of_the_jobs_already_stored(
        store: PostgresStore, schema: str) -> None:
    batch, ids = await three_in_a_batch_and_one_alone(store)
    with admin_connect() as conn:  # the schema as version 36 left it
        back_to_version_36(conn, schema)
    assert await store.migrate() == store.latest_version - 36  # 0037 and what follows it
    assert batch_rows(schema) == 3
    assert [j.id for j in await store.list_jobs(JobFilter(batch_id=batch))] == [
        ids[2], ids[1], ids[0]]
    later = await store.enqueue_many(
        [NewJob(id=new_id(), task="t", queue="q", payload=b"{}", batch_id=batch)])
    assert batch_rows(schema) == 4
    assert (await store.list_jobs(JobFilter(batch_id=batch)))[0].id == later[0].id


def rows_read(store: PostgresStore, where: JobFilter) -> int:
    """How many rows of conveyor_jobs the page's plan read (EXPLAIN ANALYZE)."""
    where_sql, params = _where(where, None, 51)
    with admin_connect() as conn:
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + store.statement(
            f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}"), params).fetchone()
    assert row is not None
    nodes = list(plan_nodes(row[0][0]["Plan"]))
    return sum(int(n["Actual Rows"]) * int(n["Actual Loops"]) for n in nodes
               if n.get("Relation Name") == "conveyor_jobs")


@pytest.mark.parametrize("batch", ["batch-20", "old-large"])
def test_a_page_of_an_old_large_batch_does_not_walk_the_newer_jobs(
        batched: PostgresStore, batch: str) -> None:
    # a merge of the batch's range with a walk of the jobs' key from the newest job read
    # the 150,000 jobs newer than the large batch before its first; bounded, it reads from
    # the batch's newest job to the page's end (51 jobs of batch-20: one id in ten is its)
    assert rows_read(batched, JobFilter(batch_id=batch)) <= 1000


@pytest.mark.anyio
async def test_version_37_lets_the_roles_that_read_the_jobs_read_the_batches(
        store: PostgresStore, schema: str) -> None:
    """A tenant role granted the schema's tables before 0037 keeps the batch filter: the
    filter reads conveyor_job_batches as the caller (review MEDIUM)."""
    role = f"conveyor_batch_reader_{new_id()[-8:]}"
    with admin_connect() as conn:  # granted at version 36, then the upgrade
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        back_to_version_36(conn, schema)
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    try:
        await store.migrate()
        with admin_connect() as conn:
            [(allowed,)] = conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')",
                (role, f'"{schema}".conveyor_job_batches')).fetchall()
        assert allowed
    finally:
        with admin_connect() as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


@pytest.mark.anyio
async def test_a_later_page_of_a_batch_keeps_its_bound_under_a_generic_plan(
        store: PostgresStore) -> None:
    """A page after a cursor reads the batch's key range from the cursor down, also once the
    statement is prepared with a generic plan (psycopg prepares it after 5 runs): its text
    has the bound as a real parameter, not `(after IS NULL OR job_id < after)`."""
    batch = "batch-generic"
    ids = sorted(r.id for r in await store.enqueue_many(
        [NewJob(id=new_id(), task="t", queue="q", payload=b"{}", batch_id=batch)
         for _ in range(2_000)]))
    after = ids[100]  # a page deep in the batch: 100 older jobs left
    where_sql, params = _where(JobFilter(batch_id=batch), after, 51)
    text = store.statement(f"{q.LIST_SELECT_LIGHT}{where_sql} {q.LIST_ORDER}")
    names = list(dict.fromkeys(name for name in params if f"%({name})s" in text))
    for at, name in enumerate(names, 1):
        text = text.replace(f"%({name})s", f"${at}")
    with admin_connect() as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE page AS {text}")
        arguments = ", ".join(f"'{params[name]}'" for name in names)
        [(plan,)] = conn.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page({arguments})").fetchall()
    nodes = list(plan_nodes(plan[0]["Plan"]))
    read = sum(int(n["Actual Rows"]) * int(n["Actual Loops"]) for n in nodes
               if n.get("Index Name") == "conveyor_job_batches_pkey"
               and "job_id <" in str(n.get("Index Cond", "")))
    assert 0 < read <= 101, f"the page read {read} of the batch's entries"
