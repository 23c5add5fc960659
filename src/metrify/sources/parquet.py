"""Parquet files: typed columns, read one record batch at a time.

Parquet needs no line handling (its rows are already split and typed); what this module
owns is turning any library failure into a one-line
:class:`~metrify.sources.batches.ReaderError`, and progress in bytes from row counts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from metrify.sources.batches import RawBatch, ReaderError, arrow_frame, one_line
from metrify.sources.opening import count_bytes, open_file

__all__ = ["read_parquet"]

_T = TypeVar("_T")


def read_parquet(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """Stream a Parquet file in record batches of ``batch_rows`` rows."""
    source = f"file:{path.name}"
    size = count_bytes(path)
    with open_file(path) as fh:
        batches, total = _guard(path, lambda: _open_parquet(fh, batch_rows))
        done = 0
        while True:
            record_batch = _guard(path, lambda: next(batches, None))
            if record_batch is None:
                return
            frame = _guard(path, functools.partial(arrow_frame, record_batch))
            first = done + 1
            done += frame.height
            progress = size if not total else min(size, size * done // total)
            yield RawBatch(frame, [], source, first, progress)


def _open_parquet(fh: BinaryIO, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int]:
    parquet = pq.ParquetFile(fh)
    return iter(parquet.iter_batches(batch_size=batch_rows)), int(parquet.metadata.num_rows)


def _guard(path: Path, step: Callable[[], _T]) -> _T:
    """Run one Parquet step, turning library failures into a one-line ReaderError."""
    try:
        return step()
    except (pa.ArrowException, pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise ReaderError(f"{path.name}: not a readable Parquet file ({one_line(exc)})") from exc
