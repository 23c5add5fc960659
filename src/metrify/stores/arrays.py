"""Columns sent to PostgreSQL as array parameters (``unnest(%s::text[], ...)``).

A list parameter makes psycopg dump every element in Python: for a write's few thousand
meter-days in nine columns that was 16 ms of each write on the writer thread, which the
database waits for. The same array written as one literal (``{"a","b"}``) by Polars is
one string to send and PostgreSQL's own parser reads it: 4 ms.
"""

from __future__ import annotations

import polars as pl

__all__ = ["array_literal"]

_QUOTED = (pl.String, pl.Categorical, pl.Enum)


def array_literal(values: pl.Series) -> str:
    """``values`` as a PostgreSQL array literal, for a parameter cast to an array type
    (``%s::text[]``, ``%s::int[]``, ``%s::date[]``).

    Text is double-quoted with backslashes and quotes escaped (an id may be ``NULL``,
    the word); nulls are ``NULL``; numbers and dates are written as Polars casts them to
    text (integers in full, dates in ISO form), which PostgreSQL reads back exactly."""
    text = values.cast(pl.String)
    if isinstance(values.dtype, _QUOTED):
        escaped = text.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
            '"', '\\"', literal=True
        )
        text = '"' + escaped + '"'
    if not text.len():
        return "{}"
    joined = text.fill_null("NULL").str.join(",").item()
    return f"{{{joined}}}"
