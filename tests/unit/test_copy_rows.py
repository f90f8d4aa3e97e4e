"""The COPY rows of a plain bulk batch (store/postgres/copy.py), without a server.

The row writer inlines rows.plain for speed: these pin that both agree on every option a job
can carry, and that an id or batch id COPY's text format cannot carry sends the batch to
INSERT instead."""

from __future__ import annotations

import pytest

from conveyor.job import NewJob
from conveyor.store.postgres.copy import NotPlain, _lines
from conveyor.store.postgres.rows import plain

PLAIN = NewJob("0190c1d2-0000-7000-8000-000000000001", "task", "queue", b'{"n":1}',
               batch_id="0190c1d2-0000-7000-8000-0000000000ff")
OPTIONS = {"idempotency_key": "k", "correlation_id": "c", "run_at": 5.0, "delay": 2.0,
           "parent_id": "p", "tenant": "t", "ttl": 60.0}


def rows(jobs: list[NewJob], now: float | None = None) -> tuple[str, list[NewJob]]:
    taken: list[NewJob] = []
    return "".join(_lines(iter(jobs), taken, now)), taken


def test_a_plain_job_becomes_one_row_of_its_columns() -> None:
    text, taken = rows([PLAIN, PLAIN._replace(id=PLAIN.id[:-1] + "2", unique_for=9.5)])
    assert taken[0] is PLAIN and len(taken) == 2
    first, second = text.splitlines()
    fields = first.split("\t")
    assert fields[:6] == [PLAIN.id, "task", "queue", "queued", "0", "\\\\x" + b'{"n":1}'.hex()]
    assert fields[6] == "\\N" and fields[7].strip() == "3" and fields[8] == PLAIN.batch_id
    assert second.split("\t")[6] == "9.5"
    assert rows([PLAIN], now=12.5)[0].endswith("\t12.5\t12.5\n")


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_option_a_plain_batch_cannot_carry_stops_the_rows(option: str) -> None:
    job = PLAIN._replace(**{option: OPTIONS[option]})
    assert not plain(job)
    with pytest.raises(NotPlain):
        rows([PLAIN, job])


# Set, but falsy: the row writer must read each option as rows.plain does (None or not, or
# truthiness), in both directions.
FALSY = {"idempotency_key": "", "correlation_id": "", "run_at": 0.0, "delay": 0.0,
         "parent_id": "", "tenant": "", "ttl": 0.0}


@pytest.mark.parametrize("option", sorted(FALSY))
def test_an_option_set_to_a_falsy_value_is_read_as_rows_plain_reads_it(option: str) -> None:
    job = PLAIN._replace(**{option: FALSY[option]})
    if plain(job):
        assert rows([job])[1] == [job]
    else:
        with pytest.raises(NotPlain):
            rows([job])


def test_each_row_carries_its_own_batch_id() -> None:
    other = PLAIN._replace(id=PLAIN.id[:-1] + "2", batch_id=PLAIN.batch_id[:-1] + "e")
    text = rows([PLAIN, other, PLAIN._replace(batch_id=None)])[0]
    assert [line.split("\t")[8] for line in text.splitlines()] == [
        PLAIN.batch_id, other.batch_id, "\\N"]


@pytest.mark.parametrize("field", ["id", "batch_id"])
@pytest.mark.parametrize("special", ["\t", "\n", "\r", "\\"])
def test_an_id_with_a_character_copy_gives_a_meaning_stops_the_rows(field: str,
                                                                     special: str) -> None:
    odd = PLAIN._replace(**{field: f"made{special}elsewhere"})
    with pytest.raises(NotPlain):
        rows([PLAIN, PLAIN, odd])  # after a batch id was found good once
