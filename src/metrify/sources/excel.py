"""Spreadsheets (``.xlsx``, ``.xlsm``, ``.xls``, ``.ods``): one sheet as a table.

Customer portals and back offices hand out meter data as spreadsheets as often as CSV.
The sheet is read by ``fastexcel`` (calamine, in Rust) with every cell as its text, so
it reaches the pipeline as the same string columns a CSV file does and is mapped and
judged the same way. A spreadsheet stores times as day numbers, which the text gives
back as ``2024-03-01 00:15:00``; two shapes are put back as people wrote them:

* a column of times of day alone (Excel keeps them as 1899-12-31 plus the time) is
  its times, ``00:15:00``, so ``--map ts=Datum+Zeit`` joins a date and a time column;
* a column whose times all fall at midnight is its dates, ``2024-03-01``.

Rows keep their row numbers in the sheet (the header is row 1, or the row after
``--skip-lines``), and an empty row is no row. A workbook of several sheets is read
from its first, or from the one ``--sheet`` names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from metrify.sources.batches import RawBatch, ReaderError, one_line

__all__ = ["read_excel"]

#: a time cell's text, as fastexcel gives a day number back
_STAMP: Final = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
#: a time of day alone, as a spreadsheet's day number gives it back
_TIME_OF_DAY: Final = r"^1899-12-3[01] (\d{2}:\d{2}:\d{2})$"
#: a midnight, which in a column of midnights is a date
_MIDNIGHT: Final = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"
#: fastexcel's name for a column whose header cell is empty
_UNNAMED: Final = re.compile(r"^__UNNAMED__(\d+)$")


def read_excel(
    path: Path,
    batch_rows: int,
    *,
    header: bool = True,
    skip_lines: int = 0,
    sheet: str | None = None,
) -> Iterator[RawBatch]:
    """Stream one sheet of ``path`` (``sheet``: its name or 1-based number; the first
    when None) as raw batches of ``batch_rows`` rows."""
    import fastexcel

    try:
        reader = fastexcel.read_excel(path)
        if not reader.sheet_names:
            return
        loaded = reader.load_sheet(
            _sheet_index(path.name, reader.sheet_names, sheet),
            header_row=skip_lines if header else None,
            skip_rows=skip_lines if not header and skip_lines else None,
            dtypes="string",
            schema_sample_rows=None,
        )
        frame = loaded.to_polars()
    except (fastexcel.FastExcelError, OSError, ValueError) as exc:
        raise ReaderError(f"{path.name}: cannot read the spreadsheet ({one_line(exc)})") from exc
    frame = _named(frame, header)
    first = skip_lines + (2 if header else 1)  # the sheet's row of the first data row
    lines = np.arange(first, first + frame.height, dtype=np.int64)
    filled = frame.select(pl.any_horizontal(pl.all().is_not_null())).to_series()
    if not filled.all():
        frame, lines = frame.filter(filled), lines[filled.to_numpy()]
    frame = frame.with_columns(_as_written(frame.get_column(c)) for c in frame.columns)
    source = f"file:{path.name}"
    size = path.stat().st_size
    for start in range(0, frame.height, batch_rows):
        part = lines[start : start + batch_rows]
        end = min(start + batch_rows, frame.height)
        yield RawBatch(
            frame.slice(start, batch_rows),
            [],
            source,
            int(part[0]),
            size if end == frame.height else size * end // frame.height,
            part,
        )


def _sheet_index(name: str, sheets: list[str], wanted: str | None) -> int:
    """The 0-based index of the sheet ``--sheet`` names (a name first, then a 1-based
    number); a sheet the workbook does not have is an error naming those it has."""
    if wanted is None:
        return 0
    if wanted in sheets:
        return sheets.index(wanted)
    if wanted.isdigit() and 1 <= int(wanted) <= len(sheets):
        return int(wanted) - 1
    raise ReaderError(
        f"{name}: no sheet {wanted!r}; the workbook has {', '.join(map(repr, sheets))}"
    )


def _named(frame: pl.DataFrame, header: bool) -> pl.DataFrame:
    """Columns without a header cell, or of a sheet without a header row, named by
    their position (``#1``, ``#2``, ...), as a CSV file's are."""
    names = [
        f"#{i}" if not header or _UNNAMED.match(name) or not name.strip() else name
        for i, name in enumerate(frame.columns, 1)
    ]
    return frame.rename(dict(zip(frame.columns, names, strict=True)))


def _as_written(column: pl.Series) -> pl.Series:
    """A column whose time cells are all times of day as those times, one whose time
    cells all fall at midnight as its dates; any other column as it is. Text cells
    beside them (a ``Summe`` row under the table) do not count, and stay as they are."""
    values = column.drop_nulls()
    stamps = values.filter(values.str.contains(_STAMP))
    if not stamps.len():
        return column
    for pattern in (_TIME_OF_DAY, _MIDNIGHT):
        if stamps.str.contains(pattern).all():
            return column.str.replace(pattern, "$1")
    return column
