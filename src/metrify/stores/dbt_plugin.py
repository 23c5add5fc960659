"""dbt-duckdb plugin: the lake and the PostgreSQL store as sources of the DuckDB warehouse.

DuckDB here may not download extensions (no ``postgres_scanner``, no ``delta``, no
``httpfs``), so the warehouse reads its inputs through Python instead: the lake through
:meth:`metrify.stores.lake.Lake.arrow` (a lazily scanned pyarrow Dataset, local folder or
``s3://`` alike) and the store's reference tables through psycopg's COPY into Arrow.
dbt-duckdb calls :meth:`Plugin.load` once per source a model names; a source's ``meta``
says which input it is::

    meta: {plugin: metrify, lake_kind: readings}      # the lake, every version
    meta: {plugin: metrify, store_table: meters}      # a PostgreSQL table, as it is now

The profile (:mod:`metrify.batch.dbt` writes it) gives the plugin ``lake_url`` and
``database_url``; the latter as an ``env_var`` so no password lands in a file.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import psycopg
import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin

from metrify.contracts.records import GRID, METER, NODE, READING, STATION, WEATHER
from metrify.stores.lake import Lake
from metrify.stores.postgres import VERSION_TYPES, copy_out

_TS = pl.Datetime("us", "UTC")
_LAKE_KINDS = {c.kind: c for c in (READING, GRID, WEATHER)}


def read_lake(lake_url: str, kind: str) -> Any:
    """Every version the lake holds of ``kind``: a lazily scanned Arrow dataset, or an
    empty table in the contract's columns when the lake has none of that kind yet (a
    fleet without grid data still builds its other marts)."""
    contract = _LAKE_KINDS[kind]
    try:
        return Lake(lake_url).arrow(kind)
    except FileNotFoundError:
        schema = {**contract.schema, **VERSION_TYPES, "date": pl.Date()}
        return pl.DataFrame(schema=schema).to_arrow()


#: the store tables the warehouse reads, with the columns and types it takes of each
STORE_TABLES: dict[str, dict[str, pl.DataType]] = {
    "meters": dict(METER.schema),
    "grid_nodes": {**NODE.schema, "parent_id": pl.String()},
    "weather_stations": dict(STATION.schema),
    "quality_daily": {
        "meter_id": pl.String(),
        "day": pl.Date(),
        "expected": pl.Int32(),
        "present": pl.Int32(),
        "valid": pl.Int32(),
        "estimated": pl.Int32(),
        "suspect": pl.Int32(),
        "rejected": pl.Int32(),
        "missing": pl.Int32(),
        "completeness": pl.Float64(),
        "score": pl.Float64(),
    },
    "anomalies": {
        "id": pl.Int64(),
        "kind": pl.String(),
        "subject_type": pl.String(),
        "subject_id": pl.String(),
        "ts_start": _TS,
        "ts_end": _TS,
        "score": pl.Float64(),
        "severity": pl.String(),
        "detector": pl.String(),
        "status": pl.String(),
        "intervals": pl.Int32(),
    },
}


def _cast(name: str, dtype: pl.DataType) -> pl.Expr:
    """A COPY-as-CSV string column in its type (booleans come as ``t``/``f``)."""
    col = pl.col(name)
    if dtype == pl.Boolean():
        return col.replace_strict({"t": True, "f": False}, default=None, return_dtype=pl.Boolean)
    if isinstance(dtype, pl.Datetime):
        return col.str.to_datetime(time_zone="UTC", time_unit="us")
    if dtype == pl.Date():
        return col.str.to_date()
    return col.cast(dtype)


def read_store_table(database_url: str, table: str) -> pa.Table:
    """One store table as Arrow, typed; an empty table keeps its columns and types."""
    schema = STORE_TABLES[table]
    columns = list(schema)
    with psycopg.connect(database_url, options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        # timestamps as ISO text with offset: parseable whatever the server's DateStyle
        select = ", ".join(
            f"to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
            if isinstance(t, pl.Datetime)
            else c
            for c, t in schema.items()
        )
        raw = copy_out(cur, f"SELECT {select} FROM {table}", columns)
    if raw is None:
        return pl.DataFrame(schema=schema).to_arrow()
    return raw.select(_cast(c, t) for c, t in schema.items()).to_arrow()


class Plugin(BasePlugin):
    """Loads ``lake_kind`` sources from the lake and ``store_table`` ones from PostgreSQL."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.lake_url: str | None = plugin_config.get("lake_url")
        self.database_url: str | None = plugin_config.get("database_url")

    def load(self, source_config: Any) -> Any:
        meta = source_config.meta
        if "lake_kind" in meta:
            if not self.lake_url:
                raise ValueError("metrify plugin: no lake_url in the profile")
            return read_lake(self.lake_url, str(meta["lake_kind"]))
        if "store_table" in meta:
            if not self.database_url:
                raise ValueError("metrify plugin: no database_url in the profile")
            return read_store_table(self.database_url, str(meta["store_table"]))
        raise ValueError(
            f"source {source_config.table_name()}: meta needs lake_kind or store_table"
        )

    def default_materialization(self) -> str:
        # reference tables are small: copied into the warehouse file, so it stands alone
        return "table"
