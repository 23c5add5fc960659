"""Files with a row per day and a column per interval (``--wide FIELD``).

Load-profile exports (German ``Lastgang`` sheets, Australian distributors' customer
data, many portals) write a meter's day on one row: its date, then one column per
quarter or half hour named by the time of day (``00:15``, ``0:30``, ..., ``24:00``).
``--wide FIELD`` turns each such row into one row per interval before anything else
reads the batch: the date column (``--map ts=...``) becomes the date and time of the
interval, the value goes to ``FIELD``, and every other column (the meter id, a unit
column) is repeated. So the pipeline, the interval detection and the checks see the
ordinary long table, and each new row keeps the line of the row it came from.

Columns named ``HH:MM-HH:MM`` (a range) stand for the interval's start. Single times
are as the file writes them: starts, or ends with ``--ts-end``; a last column ``0:00``
after the day's other times is that day's end, 24:00.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Final

import numpy as np
import polars as pl

from metrify.sources.batches import RawBatch, ReaderError

__all__ = ["day_rows", "time_columns"]

#: a column named by a time of day (``0:30``, ``00:30``, ``00:30:00``, ``24:00``), or by
#: a range of them (``00:00-00:15``, ``00:00 - 00:15``: its start)
_TIME: Final = re.compile(
    r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*(?:-|\u2013|bis|to)\s*\d{1,2}:\d{2}(?::\d{2})?)?\s*$"
)


def time_columns(columns: list[str]) -> dict[str, str]:
    """The columns named by a time of day, each with its time as ``HH:MM:SS`` (a last
    ``0:00`` after later times is ``24:00:00``), in the file's order."""
    found: dict[str, str] = {}
    for name in columns:
        match = _TIME.match(name)
        if match is None:
            continue
        hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
        if hours > 24 or minutes > 59 or seconds > 59 or (hours == 24 and minutes + seconds):
            continue
        found[name] = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    times = list(found.values())
    if len(times) > 1 and times[-1] == "00:00:00" and times[-2] > "00:00:00":
        found[list(found)[-1]] = "24:00:00"
    return found


def day_rows(batches: Iterator[RawBatch], field: str, date_column: str) -> Iterator[RawBatch]:
    """Each batch with its rows of days turned into rows of intervals: ``date_column``
    joined with each time column's time, the value in ``field``."""
    for batch in batches:
        yield _unpivoted(batch, field, date_column)


def _unpivoted(batch: RawBatch, field: str, date_column: str) -> RawBatch:
    data = batch.data
    times = time_columns(data.columns)
    if len(times) < 2:
        raise ReaderError(
            f"{batch.source.removeprefix('file:')}: --wide needs columns named by the time "
            f"of day (00:15, 00:30, ...); columns are {', '.join(data.columns)}"
        )
    position = re.match(r"^#([1-9]\d*)$", date_column)
    if date_column not in data.columns and position and int(position[1]) <= data.width:
        date_column = data.columns[int(position[1]) - 1]  # --map ts=#N
    if date_column not in data.columns:
        raise ReaderError(
            f"{batch.source.removeprefix('file:')}: --wide reads the date of each row from "
            f"column {date_column!r} (--map ts=...), which the file does not have"
        )
    if field in data.columns:
        raise ReaderError(
            f"{batch.source.removeprefix('file:')}: --wide {field} would write the interval "
            f"values into column {field!r}, which the file already has"
        )
    lines = (
        batch.lines
        if batch.lines is not None
        else np.arange(batch.first_line, batch.first_line + data.height, dtype=np.int64)
    )
    keep = [c for c in data.columns if c not in times]
    date = pl.col(date_column)
    text_date = date if data.schema[date_column] == pl.String else date.cast(pl.String)
    long = (
        data.with_row_index("_row")
        .with_columns(pl.col(c).cast(pl.String) for c in times if data.schema[c] != pl.String)
        .unpivot(on=list(times), index=["_row", *keep], variable_name="_time", value_name=field)
        .with_columns(
            _order=pl.col("_time").replace_strict(list(times), list(range(len(times)))),
            _clock=pl.col("_time").replace_strict(list(times), list(times.values())),
        )
        .sort("_row", "_order")
        .with_columns(text_date.str.strip_chars().add(" ").add(pl.col("_clock")).alias(date_column))
    )
    rows = long.get_column("_row").to_numpy()
    return replace(
        batch,
        data=long.select([*keep, field]),
        lines=lines[rows].astype(np.int64),
        first_line=int(lines[rows[0]]) if len(rows) else batch.first_line,
    )
