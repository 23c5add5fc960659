"""Peer: a plain psycopg 3 ``executemany`` loader, one transaction per file.

The loader most teams write by hand: rows as Python tuples (``csv`` module for CSV,
PyArrow for Parquet), repeated keys collapsed in a dict (last wins), then
``cursor.executemany(INSERT ... ON CONFLICT DO UPDATE)`` (psycopg 3 pipelines it), so
a key repeated in a later file updates the row.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq

FIELDS = [
    "meter_id", "ts", "interval_s", "import_kwh", "export_kwh", "register_kwh", "voltage_v",
    "current_a", "power_factor", "active_power_kw", "reactive_power_kvar", "frequency_hz",
]  # fmt: skip


def rows(kind: str, path: str, interval_s: int) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    if kind == "london":

        def london() -> Iterator[tuple[Any, ...]]:
            with gzip.open(path, "rt", newline="") as f:
                reader = csv.reader(f)
                next(reader)
                for meter, ts, value in reader:
                    when = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
                    yield (meter, when, interval_s, float(value))

        return FIELDS[:4], london()
    table = pq.read_table(path, columns=FIELDS)
    return FIELDS, zip(*(c.to_pylist() for c in table.columns), strict=True)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    read = loaded = 0
    with psycopg.connect(spec["url"]) as conn, conn.cursor() as cur:
        for path in spec["files"]:
            columns, source = rows(spec["kind"], path, spec.get("interval_s", 900))
            unique: dict[tuple[Any, Any], tuple[Any, ...]] = {}
            for row in source:
                read += 1
                unique[(row[0], row[1])] = (*row, "bench:psycopg")
            names = [*columns, "source"]
            # a key may also repeat across files (a clock fault moves a reading into the
            # next day's part): the upsert lets the later one win, as everywhere here
            sql = (
                f'INSERT INTO "{spec["schema"]}"."{spec["table"]}" ({", ".join(names)})'
                f" VALUES ({', '.join(['%s'] * len(names))})"
                " ON CONFLICT (meter_id, ts) DO UPDATE SET "
                + ", ".join(f"{n} = EXCLUDED.{n}" for n in names[2:])
            )
            cur.executemany(sql, list(unique.values()))
            conn.commit()
            loaded += len(unique)
    print(json.dumps({"read": read, "loaded": loaded}))


if __name__ == "__main__":
    main()
