"""Peer: raw ``COPY FROM STDIN`` of the same rows (the physical limit of the store).

Polars decodes the files, collapses repeated keys (last wins, within and across files)
and pgpq encodes them in PostgreSQL's binary COPY format (no text to format here nor to
parse on the server: the fastest way in), one transaction per ``CHUNK`` rows. No
validation: only what any bulk loader must do to get the rows in. It runs in the
project's environment and shares the store's binary COPY (``copy_binary``), so the
limit is measured with the very encoder the pipeline writes with.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import psycopg

from metrify.stores.postgres import copy_binary

FIELDS = [
    "meter_id", "ts", "interval_s", "import_kwh", "export_kwh", "register_kwh", "voltage_v",
    "current_a", "power_factor", "active_power_kw", "reactive_power_kvar", "frequency_hz",
]  # fmt: skip
CHUNK = 500_000


def frame(kind: str, path: str, interval_s: int) -> pl.DataFrame:
    if kind == "london":
        raw = pl.read_csv(path, infer_schema=False)
        return raw.select(
            meter_id=pl.col("LCLid"),
            ts=pl.col("tstp").str.to_datetime(time_zone="UTC"),
            interval_s=pl.lit(interval_s, pl.Int32),
            import_kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64),
        )
    return pl.read_parquet(path).select(FIELDS)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    target = f'"{spec["schema"]}"."{spec["table"]}"'
    frames = [frame(spec["kind"], path, spec.get("interval_s", 900)) for path in spec["files"]]
    data = pl.concat(frames)
    read = data.height
    # a key may repeat within a file and across files (a meter's clock fault moves a
    # reading into the next day's part): the table's key refuses both, the last one wins
    data = data.unique(subset=["meter_id", "ts"], keep="last", maintain_order=True)
    # binary COPY carries no type names: the columns must have the table's exact types
    data = data.with_columns(
        pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col("interval_s").cast(pl.Int32),
        *[
            pl.col(c).cast(pl.Float64)
            for c in data.columns
            if c not in ("meter_id", "ts", "interval_s")
        ],
        source=pl.lit("bench:copy"),
    )
    with psycopg.connect(spec["url"]) as conn, conn.cursor() as cur:
        for chunk in data.iter_slices(CHUNK):
            copy_binary(cur, target, chunk)
            conn.commit()
    print(json.dumps({"read": read, "loaded": data.height}))


if __name__ == "__main__":
    main()
