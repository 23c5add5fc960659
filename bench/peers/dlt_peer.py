"""Peer: dlt with its postgres destination.

A resource yields one PyArrow table per file (London CSV decoded by PyArrow, Parquet read
as is); the pipeline loads it with ``write_disposition="merge"`` on ``(meter_id, ts)``,
dlt's idempotent load (a staging table, then delete-insert, repeated keys collapsed),
which is what Metrify's upsert does too. Everything else is dlt's default (loader file
format ``insert_values``, its default worker counts). The pipeline's local state lives
in the spec's ``work`` folder, so every run starts fresh.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

FIELDS = [
    "meter_id", "ts", "interval_s", "import_kwh", "export_kwh", "register_kwh", "voltage_v",
    "current_a", "power_factor", "active_power_kw", "reactive_power_kvar", "frequency_hz",
]  # fmt: skip


def table(kind: str, path: str, interval_s: int) -> pa.Table:
    if kind == "london":
        raw = pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(
                column_types={
                    "LCLid": pa.string(),
                    "tstp": pa.string(),
                    "energy(kWh/hh)": pa.string(),
                }
            ),
        )
        ts = pc.assume_timezone(pc.strptime(raw["tstp"], "%Y-%m-%d %H:%M:%S", "us"), "UTC")
        value = pc.cast(pc.utf8_trim_whitespace(raw["energy(kWh/hh)"]), pa.float64())
        return pa.table(
            {
                "meter_id": raw["LCLid"],
                "ts": ts,
                "interval_s": pa.array([interval_s] * raw.num_rows, pa.int32()),
                "import_kwh": value,
            }
        )
    return pq.read_table(path, columns=FIELDS)


def credentials(url: str) -> str:
    """The libpq URL as dlt's parser needs it: a host and a password always present.

    The embedded server's URL names its socket folder in the query (``?host=/dir``),
    which libpq prefers over the placeholder host; its trust auth ignores the password.
    """
    parts = urlsplit(url)
    user = quote(parts.username or "postgres", safe="")
    password = quote(parts.password or "unused", safe="")
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}{port}"))


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    read = 0

    @dlt.resource(
        name=spec["table"],
        write_disposition="merge",
        primary_key=("meter_id", "ts"),
    )
    def readings() -> Iterator[pa.Table]:
        nonlocal read
        for path in spec["files"]:
            data = table(spec["kind"], path, spec.get("interval_s", 900))
            read += data.num_rows
            yield data.append_column("source", pa.array(["bench:dlt"] * data.num_rows))

    pipeline = dlt.pipeline(
        pipeline_name="metrify_bench",
        pipelines_dir=spec["work"],
        destination=dlt.destinations.postgres(credentials=credentials(spec["url"])),
        dataset_name=spec["schema"],
        progress=None,
    )
    info = pipeline.run(readings())
    info.raise_on_failed_jobs()
    loaded = pipeline.last_trace.last_normalize_info.row_counts.get(spec["table"], 0)
    print(json.dumps({"read": read, "loaded": loaded}))


if __name__ == "__main__":
    main()
