"""Streamed bulk export: CSV or Parquet straight from a server-side cursor.

Rows leave PostgreSQL in chunks (:func:`metrify.stores.reads.export.chunks`) and leave
the API as they come (CSV lines, or one Parquet row group per chunk), so memory stays
flat whatever the range. A stream borrows its pooled connection only once the client
starts reading. Parquet needs absolute offsets in its footer, so the sink counts the
bytes it has handed out instead of seeking.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from metrify.stores.pools import Pool
from metrify.stores.reads.export import COLUMNS, TIME_FORMAT, chunks, for_text

SCHEMA = pa.schema(
    [
        ("meter_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("interval_s", pa.int32()),
        ("import_kwh", pa.float64()),
        ("export_kwh", pa.float64()),
        ("generation_kwh", pa.float64()),
        ("volume_m3", pa.float64()),
        ("register_kwh", pa.float64()),
        ("voltage_v", pa.float64()),
        ("quality", pa.int32()),
        ("status", pa.string()),
        ("source", pa.string()),
    ]
)
assert tuple(SCHEMA.names) == COLUMNS, "the Parquet schema must follow the columns"
#: the same columns as a Polars frame (the CSV is written by Polars, like the CLI's)
FRAME_SCHEMA = pl.DataFrame(SCHEMA.empty_table()).schema


@dataclass(frozen=True)
class Selection:
    """Which readings an export holds: [start, end), of ``meter_ids`` (None: all), of
    meters in ``regions`` (None: any region)."""

    start: dt.datetime
    end: dt.datetime
    meter_ids: list[str] | None
    regions: tuple[str, ...] | None


def _rows(pool: Pool, selection: Selection) -> Iterator[list[tuple[Any, ...]]]:
    with pool.connection() as conn:
        yield from chunks(
            conn,
            selection.start,
            selection.end,
            meter_ids=selection.meter_ids,
            regions=selection.regions,
        )


def csv_stream(pool: Pool, selection: Selection) -> Iterator[bytes]:
    """CSV a chunk at a time, written by :func:`metrify.stores.reads.export.for_text` and
    Polars like ``metrify readings export``: numbers to 15 significant digits, formula
    starts neutralised, the same time format."""
    header = True
    for chunk in _rows(pool, selection):
        frame = for_text(pl.DataFrame(chunk, schema=FRAME_SCHEMA, orient="row"), csv=True)
        yield frame.write_csv(
            include_header=header, datetime_format=TIME_FORMAT, line_terminator="\n"
        ).encode()
        header = False
    if header:  # no rows: the header alone
        yield (",".join(COLUMNS) + "\n").encode()


class _Sink(io.RawIOBase):
    """A write-only stream that remembers its position and hands its bytes out."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        block = bytes(data)
        self.parts.append(block)
        self.position += len(block)
        return len(block)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


def parquet_stream(pool: Pool, selection: Selection) -> Iterator[bytes]:
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), SCHEMA, compression="zstd")
    try:
        for chunk in _rows(pool, selection):
            columns = list(zip(*chunk, strict=True))
            table = pa.Table.from_arrays(
                [
                    pa.array(col, type=field.type)
                    for col, field in zip(columns, SCHEMA, strict=True)
                ],
                schema=SCHEMA,
            )
            writer.write_table(table)
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()
