"""Array parameters written as one literal read back by PostgreSQL as the values sent."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.stores.arrays import array_literal


def test_text_with_quotes_backslashes_commas_and_the_word_null(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    values = ["MAC000002", 'a "quoted" id', "back\\slash", "comma,brace{}", "NULL", "", None]
    row = conn.execute(
        "SELECT %s::text[]", (array_literal(pl.Series(values, dtype=pl.String)),)
    ).fetchone()
    assert row is not None
    assert row[0] == values  # the word NULL stays a word, the null a null


def test_integers_dates_and_nothing(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    days = [dt.date(2013, 1, 1), dt.date(1999, 12, 31), None]
    counts = [0, -7, 2_147_483_647]
    row = conn.execute(
        "SELECT %s::date[], %s::int[], %s::int[]",
        (
            array_literal(pl.Series(days, dtype=pl.Date)),
            array_literal(pl.Series(counts, dtype=pl.Int32)),
            array_literal(pl.Series([], dtype=pl.Int32)),
        ),
    ).fetchone()
    assert row == (days, counts, [])


def test_categorical_ids_are_quoted_as_text(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    ids = pl.Series(["b", "NULL", "a"], dtype=pl.Categorical)
    row = conn.execute("SELECT %s::text[]", (array_literal(ids),)).fetchone()
    assert row == (["b", "NULL", "a"],)
