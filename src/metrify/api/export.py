"""Streamed bulk export: CSV or Parquet straight from a server-side cursor.

Rows leave PostgreSQL in chunks through a named cursor and leave the API as they come
(CSV lines, or one Parquet row group per chunk), so memory stays flat whatever the
range. Parquet needs absolute offsets in its footer, so the sink counts the bytes it
has handed out instead of seeking.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from psycopg_pool import ConnectionPool

from metrify.api.queries import READING_COLUMNS

CHUNK = 20_000

SCHEMA = pa.schema(
    [
        ("meter_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("interval_s", pa.int32()),
        ("import_kwh", pa.float64()),
        ("export_kwh", pa.float64()),
        ("register_kwh", pa.float64()),
        ("voltage_v", pa.float64()),
        ("quality", pa.int32()),
        ("status", pa.string()),
        ("source", pa.string()),
    ]
)
#: the export's columns: the stored key, then what a reading query returns.
COLUMNS = ("meter_id", *READING_COLUMNS)
assert tuple(SCHEMA.names) == COLUMNS, "the Parquet schema must follow the columns"


def export_sql(
    meter_ids: list[str] | None, regions: tuple[str, ...] | None
) -> tuple[str, list[Any]]:
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


def _rows(
    pool: ConnectionPool[Any], sql: str, params: list[Any]
) -> Iterator[list[tuple[Any, ...]]]:
    with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(name="metrify_export") as cur,
    ):
        cur.itersize = CHUNK
        cur.execute(sql, params)
        while True:
            chunk = cur.fetchmany(CHUNK)
            if not chunk:
                return
            yield chunk


def csv_stream(pool: ConnectionPool[Any], sql: str, params: list[Any]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for chunk in _rows(pool, sql, params):
        for row in chunk:
            writer.writerow([v.isoformat() if isinstance(v, dt.datetime) else v for v in row])
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


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


def parquet_stream(pool: ConnectionPool[Any], sql: str, params: list[Any]) -> Iterator[bytes]:
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), SCHEMA, compression="zstd")
    try:
        for chunk in _rows(pool, sql, params):
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
