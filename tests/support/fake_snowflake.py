"""The snowflake target on fakesnow, in-process: dbt-snowflake talks to fakesnow's DuckDB.

Its landing tables (schema LAKE) are filled with what the real lake holds (every version)
and the store's tables (schema PUBLIC) with what PostgreSQL holds. The loading is not what
the warehouse tests test (Snowflake stages and COPY INTO cannot run here); the models'
Snowflake SQL is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from metrify.settings import Settings, get_settings
from metrify.stores.lake import Lake

#: Snowflake DDL of the landing tables (the lake, every version); the project's own is
#: transform/macros/snowflake_stage.sql
LANDING_TABLES = {
    "readings": "meter_id varchar, ts timestamp_tz, interval_s int, import_kwh double,"
    " export_kwh double, register_kwh double, generation_kwh double, volume_m3 double,"
    " export_register_kwh double, quality int, status varchar, source varchar,"
    " ingested_at timestamp_tz",
    "grid": "node_id varchar, ts timestamp_tz, interval_s int, load_mw double,"
    " generation_mw double, frequency_hz double, voltage_kv double, price_per_mwh double,"
    " quality int, status varchar, source varchar, ingested_at timestamp_tz",
    "weather": "station_id varchar, ts timestamp_tz, temperature_c double,"
    " humidity_pct double, wind_speed_ms double, wind_dir_deg double, pressure_hpa double,"
    " precipitation_mm double, solar_wm2 double, cloud_cover_pct double, quality int,"
    " status varchar, source varchar, ingested_at timestamp_tz",
    "events": "meter_id varchar, ts timestamp_tz, event varchar, code varchar,"
    " details varchar, source varchar, ingested_at timestamp_tz",
}
#: the store's tables the models read on Snowflake (replicated there in production)
STORE_TABLES = ("meters", "grid_nodes", "weather_stations", "anomalies", "quality_daily")


def snowflake_type(arrow_type: Any) -> str:
    text = str(arrow_type)
    if text.startswith("timestamp"):
        return "timestamp_tz"
    return {
        "string": "varchar",
        "large_string": "varchar",
        "double": "double",
        "int16": "int",
        "int32": "int",
        "int64": "bigint",
        "bool": "boolean",
        "date32[day]": "date",
    }[text]


@contextmanager
def snowflake_target(db_path: Path, lake: Lake, kinds: tuple[str, ...]) -> Iterator[Settings]:
    """Settings of the snowflake target on a fakesnow database in ``db_path``, with every
    landing table made and those of ``kinds`` filled from ``lake``, and the store's tables
    copied. fakesnow stays patched in until the block ends (read the marts inside it)."""
    import fakesnow as fakesnow_module
    import snowflake.connector

    from metrify.stores.database import database_url as app_database_url
    from metrify.stores.dbt_plugin import read_store_table

    db_path.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp, fakesnow_module.patch(db_path=str(db_path)):
        for key, value in {
            "ACCOUNT": "metrify-test",
            "USER": "metrify",
            "PASSWORD": "not-a-secret",
            "THREADS": "1",
        }.items():
            mp.setenv(f"METRIFY_WAREHOUSE__SNOWFLAKE__{key}", value)
        get_settings.cache_clear()
        settings = get_settings()
        conn = snowflake.connector.connect(database="METRIFY", schema="PUBLIC")
        cur = conn.cursor()
        cur.execute("create schema if not exists METRIFY.LAKE")
        for kind, columns in LANDING_TABLES.items():
            cur.execute(f"create or replace table METRIFY.LAKE.{kind.upper()} ({columns})")
        duck = conn._duck_conn
        for kind in kinds:
            versions = lake.arrow(kind).to_table()
            duck.register("versions", versions)
            cols = ", ".join(c.split()[0] for c in LANDING_TABLES[kind].split(","))
            duck.execute(
                f"insert into METRIFY.LAKE.{kind.upper()} ({cols}) select {cols} from versions"
            )
            duck.unregister("versions")
        for table in STORE_TABLES:
            rows = read_store_table(app_database_url(settings), table)
            cols = ", ".join(rows.column_names)
            types = ", ".join(
                f"{c} {snowflake_type(t)}"
                for c, t in zip(rows.column_names, rows.schema.types, strict=True)
            )
            cur.execute(f"create or replace table METRIFY.PUBLIC.{table.upper()} ({types})")
            duck.register("rows", rows)
            duck.execute(
                f"insert into METRIFY.PUBLIC.{table.upper()} ({cols}) select {cols} from rows"
            )
            duck.unregister("rows")
        conn.close()
        yield settings
    get_settings.cache_clear()
