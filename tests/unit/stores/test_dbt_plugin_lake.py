"""The dbt plugin's lake views on DuckDB, without dbt: what staging reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
from deltalake import write_deltalake

from metrify.contracts.records import EVENT, READING
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


def test_an_events_table_written_before_details_still_reads(tmp_path: Path) -> None:
    """Meter events are a lake kind of the warehouse too: an events table written by a
    release whose events had no ``details`` (and no ``code``) reads with both NULL, and
    the event columns the staging model selects are all there. Events have no quality or
    status, and no versioned-days view (the lake holds their current rows only)."""
    schema = lake_schema(EVENT)
    assert {"code", "details"} <= set(schema) and "quality" not in schema
    ts = dt.datetime(2025, 3, 29, 23, 30, tzinfo=dt.UTC)
    old = ["meter_id", "ts", "event", "source", "ingested_at", "date"]
    frame = pl.DataFrame(
        {
            "meter_id": ["M1", "M1"],
            "ts": [ts, ts + dt.timedelta(minutes=45)],
            "event": ["power_failure", "power_restore"],
            "source": ["old", "old"],
            "ingested_at": [ts, ts],
            "date": [dt.date(2025, 3, 29), dt.date(2025, 3, 30)],
        }
    ).select(pl.col(c).cast(schema[c]) for c in old)
    write_deltalake(str(tmp_path / "events"), frame.to_arrow(), partition_by=["date"])

    conn = duckdb.connect()
    Plugin("metrify", {"lake_url": str(tmp_path)}).configure_connection(conn)
    columns = [d[0] for d in conn.execute("SELECT * FROM lake.events LIMIT 0").description]
    assert set(schema) <= set(columns)
    rows = conn.execute(
        "SELECT meter_id, ts, event, code, details, date FROM lake.events ORDER BY ts"
    ).fetchall()
    assert rows == [
        ("M1", ts, "power_failure", None, None, dt.date(2025, 3, 29)),
        ("M1", ts + dt.timedelta(minutes=45), "power_restore", None, None, dt.date(2025, 3, 30)),
    ]
    views = {
        r[0]
        for r in conn.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'lake'"
        ).fetchall()
    }
    assert "events" in views and "readings_versioned_days" in views
    assert "events_versioned_days" not in views


def test_a_lake_without_events_gives_an_empty_events_view(tmp_path: Path) -> None:
    """A lake no event reached yet (most fleets' first days) still has ``lake.events``,
    empty, in the lake's columns of events, so the events models build."""
    conn = duckdb.connect()
    Plugin("metrify", {"lake_url": str(tmp_path)}).configure_connection(conn)
    described = conn.execute("SELECT * FROM lake.events LIMIT 0").description
    assert [d[0] for d in described] == list(lake_schema(EVENT))
    assert conn.execute("SELECT count(*) FROM lake.events").fetchone() == (0,)
