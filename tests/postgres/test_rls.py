"""Row-level security: a role that does not own the tables (and lacks BYPASSRLS) sees only
the rows of the tenant set for its transaction, and nothing when none is set."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from conveyor.job import JobFilter, NewJob, new_id
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL, admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def job(tenant: str | None) -> NewJob:
    return NewJob(id=new_id(), task="rls.task", queue="default", payload=b"{}", tenant=tenant)


@pytest.fixture
def tenant_role(store: PostgresStore, schema: str) -> Iterator[str]:
    """A login role for a tenant-facing service: table rights, no ownership, no BYPASSRLS."""
    role = f"conveyor_tenant_{secrets.token_hex(4)}"
    with admin_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
                     f'TO "{role}"')
    try:
        yield role
    finally:
        with admin_connect() as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def role_url(role: str, schema: str) -> str:
    return BASE_URL.replace("postgres@", f"{role}@", 1) + f"?schema={schema}"


def visible(conn: psycopg.Connection[tuple[object, ...]], schema: str,
            tenant: str | None) -> list[str]:
    with conn.transaction():
        if tenant is not None:
            conn.execute("SELECT set_config('conveyor.tenant', %s, true)", (tenant,))
        rows = conn.execute(f'SELECT tenant FROM "{schema}".conveyor_jobs ORDER BY tenant')
        return [str(r[0]) for r in rows]


async def test_a_tenant_role_reads_only_its_own_rows(store: PostgresStore, schema: str,
                                                     tenant_role: str) -> None:
    await store.enqueue_many([job("org-a"), job("org-a"), job("org-b"), job(None)])
    with psycopg.connect(role_url(tenant_role, schema).split("?")[0], autocommit=True) as conn:
        assert visible(conn, schema, "org-a") == ["org-a", "org-a"]
        assert visible(conn, schema, "org-b") == ["org-b"]
        assert visible(conn, schema, None) == [], "unset tenant must fail closed"
        assert visible(conn, schema, "") == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SELECT set_config('conveyor.tenant', 'org-a', true)")
            conn.execute(f'UPDATE "{schema}".conveyor_jobs SET tenant = \'org-b\'')


async def test_the_store_owner_is_not_bound(store: PostgresStore, schema: str) -> None:
    await store.enqueue_many([job("org-a"), job("org-b")])
    assert len(await store.list_jobs(JobFilter())) == 2  # owner: the admin view


async def test_a_store_on_the_tenant_role_is_scoped_per_call(store: PostgresStore, schema: str,
                                                             tenant_role: str) -> None:
    [mine, theirs] = await store.enqueue_many([job("org-a"), job("org-b")])
    scoped = PostgresStore(role_url(tenant_role, schema))
    await scoped.open()
    try:
        assert await scoped.get(mine.id, tenant="org-a") is not None
        assert await scoped.get(theirs.id, tenant="org-a") is None
        assert await scoped.get(mine.id) is None, "no tenant on a restricted role: nothing"
        listed = await scoped.list_jobs(JobFilter(tenant="org-a"))
        assert [j.id for j in listed] == [mine.id]
        stats = await scoped.stats(tenant="org-b")
        assert sum(stats.by_state.values()) == 1
        assert await scoped.cancel([theirs.id], tenant="org-a") == {theirs.id: "not_found"}
        [added] = await scoped.enqueue_many([job("org-a")])
        assert await scoped.get(added.id, tenant="org-a") is not None
    finally:
        await scoped.close()


async def test_a_tenant_role_reads_its_oldest_queued_job_after_a_fold(
        store: PostgresStore, schema: str, tenant_role: str) -> None:
    """The queues read's oldest-queued age on a tenant's role, once a fold has taken the
    deltas: the queues' kept heads are the owner's alone, so a tenant's lookup does not
    start from them (a start read from them found none: no age at all)."""
    await store.enqueue_many([job("org-a"), job("org-b")])
    await store.fold_counts()
    scoped = PostgresStore(role_url(tenant_role, schema))
    await scoped.open()
    try:
        [queue] = await scoped.queues(tenant="org-a")
        assert queue.name == "default" and queue.oldest_queued_age is not None
    finally:
        await scoped.close()
