"""The dbt plugin's lake views on DuckDB, without dbt: what staging reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
from deltalake import write_deltalake

from metrify.contracts.records import READING
from metrify.stores.dbt_plugin import Plugin
from metrify.stores.lake.table import lake_schema


def test_a_table_written_before_new_fields_still_reads_with_them_as_null(tmp_path: Path) -> None:
    """A lake table last written by an older release lacks the fields added since (they
    arrive with its next write); the view still has every lake column, the new ones
    NULL, so staging that selects them builds."""
    old_columns = ["meter_id", "ts", "interval_s", "import_kwh", "quality", "status", "source"]
    schema = lake_schema(READING)
    ts = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    frame = pl.DataFrame(
        {
            "meter_id": ["M1", "M1"],
            "ts": [ts, ts + dt.timedelta(minutes=30)],
            "interval_s": [1800, 1800],
            "import_kwh": [0.5, 0.25],
            "quality": [0, 0],
            "status": ["valid", "valid"],
            "source": ["old", "old"],
            "ingested_at": [ts, ts],
            "date": [ts.date(), ts.date()],
        }
    ).select(pl.col(c).cast(schema[c]) for c in [*old_columns, "ingested_at", "date"])
    write_deltalake(str(tmp_path / "readings"), frame.to_arrow(), partition_by=["date"])
    assert "generation_kwh" in schema  # a field the old table lacks

    conn = duckdb.connect()
    Plugin("metrify", {"lake_url": str(tmp_path)}).configure_connection(conn)
    columns = [d[0] for d in conn.execute("SELECT * FROM lake.readings LIMIT 0").description]
    assert set(schema) <= set(columns)
    rows = conn.execute(
        "SELECT import_kwh, generation_kwh, export_kwh FROM lake.readings ORDER BY ts"
    ).fetchall()
    assert rows == [(0.5, None, None), (0.25, None, None)]
