"""Bulk export of readings: rows in chunks from a server-side cursor, and how an export's
values are written as text.

A named cursor keeps the result in PostgreSQL and hands it over a chunk at a time, so
memory stays flat whatever the range; the caller encodes each chunk as it comes.

Text exports (CSV, JSON lines) of the API and the CLI share :func:`for_text` and
:data:`TIME_FORMAT`, so the same reading reads the same from either door:

- numbers are written to :data:`DIGITS` significant digits. The columns are double
  precision, which holds any decimal of up to 15 significant digits exactly (C's
  ``DBL_DIG``); a value computed on the way in (a Wh file scaled by 0.001 stores
  1520.4 x 0.001 = ``1.5204000000000002``) carries binary noise in its 16th and 17th
  digits that no meter measured. Rounding to 15 digits gives back the decimal that was
  meant (``1.5204``); the binary formats (Parquet) keep the stored double untouched.
- text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return: OWASP's CSV-injection rule) get a leading
  ``'`` in CSV; numbers are numbers, never prefixed.
- times are ISO 8601 in UTC with the offset spelt ``+00:00`` (fractions only when there
  are some).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Final

import polars as pl

from metrify.stores.pools import Connection
from metrify.stores.reads.readings import READING_COLUMNS

CHUNK = 20_000
#: the export's columns: the stored key, then what a reading query returns.
COLUMNS = ("meter_id", *READING_COLUMNS)


def _sql(meter_ids: list[str] | None, regions: tuple[str, ...] | None) -> tuple[str, list[Any]]:
    where = ["r.ts >= %s", "r.ts < %s"]
    params: list[Any] = []
    if meter_ids:
        where.append("r.meter_id = ANY(%s)")
        params.append(meter_ids)
    if regions is not None:
        where.append("r.meter_id IN (SELECT meter_id FROM meters WHERE region = ANY(%s))")
        params.append(list(regions))
    cols = ", ".join(f"r.{c}" for c in COLUMNS)
    return (
        f"SELECT {cols} FROM readings r WHERE {' AND '.join(where)} ORDER BY r.meter_id, r.ts",
        params,
    )


def chunks(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    *,
    meter_ids: list[str] | None = None,
    regions: tuple[str, ...] | None = None,
    size: int = CHUNK,
) -> Iterator[list[tuple[Any, ...]]]:
    """Readings (:data:`COLUMNS`) in [start, end) by meter and time, ``size`` rows at a
    time: of ``meter_ids`` (None or empty: every meter), of meters in ``regions`` (None:
    any region). Holds a transaction on ``conn`` until exhausted or closed."""
    sql, extra = _sql(meter_ids, regions)
    with conn.transaction(), conn.cursor(name="metrify_export") as cur:
        cur.itersize = size
        cur.execute(sql, [start, end, *extra])
        while True:
            chunk = cur.fetchmany(size)
            if not chunk:
                return
            yield chunk


#: significant digits of a number in a text export (see the module's docstring).
DIGITS: Final = 15
#: how a text export writes a time (chrono's format: ``2013-01-01T00:30:00+00:00``).
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.f%:z"
#: first characters that make a spreadsheet read a CSV cell as a formula (OWASP).
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def text_number(value: float) -> float:
    """``value`` to :data:`DIGITS` significant digits, correctly rounded (Python's own
    decimal formatting; Polars' ``round_sig_figs`` scales by powers of ten and adds noise
    of its own at large exponents). Infinity and NaN come back as they are."""
    return float(f"{value:.{DIGITS}g}")


def text_cell(value: str) -> str:
    """A CSV text cell a spreadsheet shows as text: ``'`` before a formula's start."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def for_text(frame: pl.DataFrame, *, csv: bool) -> pl.DataFrame:
    """``frame`` ready for a text export: floats to :data:`DIGITS` significant digits;
    with ``csv``, text cells that would start a formula prefixed with ``'``."""
    columns: list[pl.Series] = []
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        if dtype == pl.Float64:
            values = [None if v is None else text_number(v) for v in column.to_list()]
            columns.append(pl.Series(name, values, dtype=pl.Float64))
        elif csv and dtype == pl.String:
            starts = pl.any_horizontal([pl.col(name).str.starts_with(c) for c in FORMULA_STARTS])
            prefixed = pl.when(starts).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name))
            columns.append(frame.select(prefixed.alias(name)).to_series())
    return frame.with_columns(columns) if columns else frame
