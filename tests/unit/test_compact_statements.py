"""The capped claim's statement is short enough for psycopg to cache its parse
(queries.compact): a longer one is parsed again at every execute, on the worker's CPU."""

from __future__ import annotations

import pytest
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, _query2pg

from conveyor.store.postgres.limits import CLAIM_ROOM_AT_WALL
from conveyor.store.postgres.queries import compact, render


@pytest.mark.parametrize("schema", ["public", "conveyor_tests"])
def test_a_capped_claims_statement_is_parsed_once(schema: str) -> None:
    statement = render(CLAIM_ROOM_AT_WALL, f'"{schema}"')
    assert len(statement) <= MAX_CACHED_STATEMENT_LENGTH  # 4,370 in public before compact()
    _query2pg(statement.encode(), "utf-8")
    hits = _query2pg.cache_info().hits
    _query2pg(statement.encode(), "utf-8")
    assert _query2pg.cache_info().hits == hits + 1


def test_compact_keeps_the_statement_and_refuses_what_it_would_change() -> None:
    assert compact("\n  SELECT a,\n      b\n\n  FROM t  \n") == "SELECT a,\nb\nFROM t"
    with pytest.raises(ValueError):
        compact("SELECT 1 -- a comment\n  , 2")
    with pytest.raises(ValueError):
        compact("SELECT 'a\n  b'")
