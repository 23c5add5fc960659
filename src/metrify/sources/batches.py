"""What a file reader hands out: raw batches, the lines it could not split, and the error
for a file it cannot read at all.

These are the reader's whole contract with the pipeline (see :mod:`metrify.sources.files`
for the promise that no row is lost); every format module builds the same three things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import polars as pl

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = [
    "FLAGS",
    "BadRow",
    "RawBatch",
    "ReaderError",
    "arrow_frame",
    "one_line",
    "raw_text",
    "sliced",
]

#: the column of decoded records that carries quality bits a source set on them (a
#: value the source estimated, an interval derived from register reads) to the
#: pipeline, which adds them to VEE's verdicts (:mod:`metrify.pipeline.registers`). Its
#: leading underscore keeps it apart from every contract field and file column name the
#: decoder maps.
FLAGS: Final = "_flags"


class ReaderError(Exception):
    """A whole file cannot be read (missing, unreadable, corrupt compression, not the
    format it claims). The message is one line naming the file and the problem."""


@dataclass
class BadRow:
    """A line that could not be split into fields; kept so it can be quarantined."""

    raw: str  # the original text (undecodable bytes replaced by U+FFFD), never empty
    reason: str  # short and stable, so quarantine rows can be grouped by it
    line: int | None  # 1-based line number in the (decompressed) file, where known


@dataclass
class RawBatch:
    """One bounded stretch of a file, split into fields but not yet interpreted."""

    data: pl.DataFrame  # CSV/JSONL: every column pl.String, values as found; Parquet: typed
    bad: list[BadRow]  # lines of this stretch that could not be split into fields
    source: str  # 'file:<file name>'
    first_line: int  # line (Parquet: row) number of the first data row of this stretch
    bytes_read: int = 0  # bytes consumed from disk so far (compressed), for progress bars
    #: the line number of each row of ``data`` (CSV, JSON Lines): blank lines and lines
    #: that became bad rows sit between rows, so ``first_line + i`` would drift past them.
    #: None: the rows are consecutive from ``first_line`` (Parquet).
    lines: npt.NDArray[np.int64] | None = None


def sliced(
    frame: pl.DataFrame,
    lines: npt.NDArray[np.int64],
    bad: list[BadRow],
    source: str,
    first_line: int,
    read: int,
    batch_rows: int,
) -> Iterator[RawBatch]:
    """A file read whole (``frame``, each row's ``lines``) handed out as batches of
    ``batch_rows``, its ``bad`` rows with the first (a file of no rows: one empty batch
    carrying them). ``read``: the bytes read, for progress."""
    if not frame.height:
        yield RawBatch(frame, list(bad), source, first_line, read)
        return
    for start in range(0, frame.height, batch_rows):
        piece = lines[start : start + batch_rows]
        first = list(bad) if start == 0 else []
        yield RawBatch(frame.slice(start, batch_rows), first, source, int(piece[0]), read, piece)


def one_line(exc: BaseException) -> str:
    """Library messages can span lines; ours must not (they end up in logs and tables)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def raw_text(raw: bytes) -> str:
    """Bytes as text for a BadRow: undecodable bytes become U+FFFD, never an exception."""
    return raw.decode("utf-8", errors="replace") or repr(raw)


def arrow_frame(table: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    """An Arrow table or record batch as the frame of a :class:`RawBatch`."""
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - tables always give frames
        raise TypeError("expected a DataFrame from an Arrow table")
    return frame
