"""Splitting a migration into statements: `;` at a line's end, except inside a function's
dollar-quoted body or a SQLite trigger's BEGIN ... END."""

from __future__ import annotations

import pytest

from conveyor.store.migrate import split_statements


def test_plain_statements_split_at_line_ends_and_comments_go() -> None:
    sql = "-- a comment\nCREATE TABLE a (x int);\nCREATE INDEX b ON a (x);\n\nSELECT 'a;b';\n"
    assert split_statements(sql) == ("CREATE TABLE a (x int)", "CREATE INDEX b ON a (x)",
                                     "SELECT 'a;b'")


def test_a_dollar_quoted_body_is_one_statement() -> None:
    sql = ("CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
           "    -- kept: part of the body\n    INSERT INTO t VALUES (1);\n    RETURN NULL;\n"
           "END $$;\nCREATE FUNCTION g() RETURNS int AS $body$\nSELECT 1;\n$body$;\n"
           "SELECT 2;\n")
    assert split_statements(sql) == (
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        "    -- kept: part of the body\n    INSERT INTO t VALUES (1);\n    RETURN NULL;\nEND $$",
        "CREATE FUNCTION g() RETURNS int AS $body$\nSELECT 1;\n$body$", "SELECT 2")


def test_a_sqlite_trigger_body_is_one_statement() -> None:
    sql = ("\nCREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n    UPDATE c SET n = n + 1;\n"
           "    DELETE FROM d;\nEND;\nSELECT 1;\n")
    assert split_statements(sql) == (
        "CREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n    UPDATE c SET n = n + 1;\n"
        "    DELETE FROM d;\nEND", "SELECT 1")


def test_a_transaction_begin_outside_a_trigger_is_no_body() -> None:
    assert split_statements("SELECT 1;\nBEGIN\n;\nSELECT 2;\n") == ("SELECT 1", "BEGIN", "SELECT 2")


@pytest.mark.parametrize("sql", ["CREATE FUNCTION f() AS $$\nSELECT 1;\n",
                                 "CREATE TRIGGER t AFTER INSERT ON a\nBEGIN\nSELECT 1;\n"])
def test_a_body_left_open_is_an_error(sql: str) -> None:
    with pytest.raises(RuntimeError, match="body open"):
        split_statements(sql)
