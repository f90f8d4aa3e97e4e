"""Key rotation's seam: scan_sealable pages through what encryption covers (payload, result,
errors), replace_sealable writes it back, each field compare-and-set."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from conveyor.job import ErrorInfo
from conveyor.store.base import Complete, Fail, Sealable, Store

from .support import PAYLOAD, T0, claim_one, enqueue, error

pytestmark = pytest.mark.anyio


async def _finished(store: Store) -> tuple[str, str, str]:
    """A completed job with a result, a job waiting to retry after one error, a queued job."""
    done = await enqueue(store, tenant="org-1")
    claimed = await claim_one(store)
    await store.settle([Complete(claimed.lease, b'{"total":42}')], now=T0 + 1)
    failing = await enqueue(store)
    claimed = await claim_one(store, now=T0 + 2)
    await store.settle([Fail(claimed.lease, error(1, "bad card"), retry_in=60)], now=T0 + 3)
    waiting = await enqueue(store, payload=b'{"n":3}')
    return done, failing, waiting


async def test_scan_pages_through_every_job_in_id_order(store: Store) -> None:
    done, failing, waiting = await _finished(store)
    first = await store.scan_sealable(None, 2)
    rest = await store.scan_sealable(first[-1].id, 2)
    assert [row.id for row in first + rest] == sorted([done, failing, waiting])
    assert await store.scan_sealable(rest[-1].id, 2) == []
    rows = {row.id: row for row in first + rest}
    assert rows[done] == Sealable(done, "org-1", PAYLOAD, b'{"total":42}', rows[done].errors)
    assert orjson.loads(rows[done].errors) == []
    [stored] = orjson.loads(rows[failing].errors)
    assert (stored["message"], rows[failing].result, rows[failing].tenant) == (
        "bad card", None, None)
    assert (rows[waiting].payload, rows[waiting].result) == (b'{"n":3}', None)


async def test_replace_swaps_every_field_compare_and_set(store: Store) -> None:
    done, failing, waiting = await _finished(store)
    rows = {row.id: row for row in await store.scan_sealable(None, 10)}
    errors = orjson.dumps([{**orjson.loads(rows[failing].errors)[0], "message": "sealed"}])
    swaps = [(rows[done], replace(rows[done], payload=b'{"p":1}', result=b'{"r":1}')),
             (rows[failing], replace(rows[failing], payload=b'{"p":2}', errors=errors.decode())),
             # read before someone else changed the payload: only the result takes
             (replace(rows[waiting], payload=b'{"stale":1}'),
              replace(rows[waiting], payload=b'{"p":3}', result=b'"new"'))]
    assert await store.replace_sealable(swaps) == 2
    got = {job_id: await store.get(job_id) for job_id in (done, failing, waiting)}
    assert (got[done].payload, got[done].result) == (b'{"p":1}', {"r": 1})  # type: ignore[union-attr]
    assert bytes(got[failing].payload) == b'{"p":2}'  # type: ignore[union-attr]
    assert [e.message for e in got[failing].errors] == ["sealed"]  # type: ignore[union-attr]
    assert bytes(got[waiting].payload) == b'{"n":3}'  # type: ignore[union-attr]
    assert got[waiting].result == "new"  # type: ignore[union-attr]
    assert await store.replace_sealable([]) == 0


async def test_an_error_appended_meanwhile_is_kept(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1, "first"), retry_in=0)], now=T0 + 1)
    [row] = await store.scan_sealable(None, 10)
    claimed = await claim_one(store, now=T0 + 2)  # meanwhile, a second attempt fails
    await store.settle([Fail(claimed.lease, error(2, "second"), retry_in=0)], now=T0 + 3)
    resealed = replace(row, payload=b'{"p":1}', errors='[{"attempt":1,"message":"x"}]')
    assert await store.replace_sealable([(row, resealed)]) == 0  # not all of it took
    got = await store.get(job_id)
    assert got is not None and bytes(got.payload) == b'{"p":1}'
    assert [e.message for e in got.errors] == ["first", "second"]


async def test_a_job_deleted_meanwhile_is_not_counted(store: Store) -> None:
    job_id = await enqueue(store)
    [row] = await store.scan_sealable(None, 10)
    claimed = await claim_one(store)
    await store.settle([Complete(claimed.lease)], now=T0 + 1)
    assert await store.discard([job_id]) == 1
    assert await store.replace_sealable([(row, replace(row, payload=b"{}"))]) == 0


async def test_a_sealed_error_is_stored_as_written(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    sealed = ErrorInfo(attempt=1, type="ValueError", message="[encrypted]", worker="w",
                       sealed='{"$enc":1,"key":"v1","nonce":"bm9uY2U=","ct":"Y3Q="}')
    await store.settle([Fail(claimed.lease, sealed)], now=T0 + 1)
    got = await store.get(job_id)
    assert got is not None and got.errors == (replace(sealed, at=None),)
