"""dbt-duckdb plugin: the lake and the PostgreSQL store as sources of the DuckDB warehouse.

DuckDB here may not download extensions (no ``postgres_scanner``, no ``delta``, no
``httpfs``), so the warehouse reads its inputs through Python instead:

* the lake: the views ``lake.readings``, ``lake.grid``, ``lake.weather`` and
  ``lake.events`` (meter events), made when dbt opens the warehouse
  (:meth:`Plugin.configure_connection`). A local lake is read by
  DuckDB's own Parquet reader over the files of the table's current Delta version
  (:meth:`metrify.stores.lake.Lake.plain_files`), about twice as fast as Arrow; an
  ``s3://`` lake (or a table with reader features) through
  :meth:`metrify.stores.lake.Lake.arrow`, a lazily scanned pyarrow Dataset registered on
  every cursor dbt opens;
* beside each time series' lake view, ``lake.<kind>_versioned_days``: the UTC days on which the lake
  holds more than one version of a key, from the store's history table
  (:func:`metrify.stores.reads.lake_days.history_days`). Staging finds the current
  version with a window only on those days and passes every other day through, which
  is what made the warehouse build slow: the window over every reading cost more than
  everything else together (bench/results/batch-2026-12-06.md). Without a store URL
  every day counts as versioned (the safe side). Meter events have none: their lake
  table holds the current row of each event only (a re-sent event replaces it), and
  there are few of them, so their staging windows every row;
* the store's reference tables through psycopg's COPY into Arrow: dbt-duckdb calls
  :meth:`Plugin.load` once per source a model names, whose ``meta`` says which table::

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

from metrify.contracts.records import EVENT, GRID, METER, NODE, READING, STATION, WEATHER
from metrify.stores.lake import Lake
from metrify.stores.lake.table import lake_schema, versioned
from metrify.stores.postgres import copy_out
from metrify.stores.reads.lake_days import history_days

_TS = pl.Datetime("us", "UTC")
_LAKE_KINDS = {c.kind: c for c in (READING, GRID, WEATHER, EVENT)}
#: the lake kinds holding every version of a record, whose staging passes days without a
#: replaced version straight through (``lake.<kind>_versioned_days``)
_VERSIONED_KINDS = {k: c for k, c in _LAKE_KINDS.items() if versioned(c)}


def read_lake(lake_url: str, kind: str) -> Any:
    """Every version the lake holds of ``kind``: a lazily scanned Arrow dataset, or an
    empty table in the contract's columns when the lake has none of that kind yet (a
    fleet without grid data still builds its other marts)."""
    contract = _LAKE_KINDS[kind]
    try:
        return Lake(lake_url).arrow(kind)
    except FileNotFoundError:
        # the lake's own columns of the kind: meter events have no quality or status
        return pl.DataFrame(schema=lake_schema(contract)).to_arrow()


#: DuckDB's name for each lake column type (for columns a table does not have yet)
_DUCK_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Float64: "DOUBLE",
    pl.Float32: "FLOAT",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Int16: "SMALLINT",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Datetime: "TIMESTAMPTZ",
}


def missing_columns(kind: str, present: list[str]) -> list[str]:
    """``NULL AS column`` for each lake column of ``kind`` that the table's files do not
    hold: a table last written by an older release lacks the fields added since (it
    gains them on its next write), and staging must still build over it."""
    have = {c.lower() for c in present}
    out = []
    for name, dtype in lake_schema(_LAKE_KINDS[kind]).items():
        if name.lower() not in have:
            out.append(f"CAST(NULL AS {_DUCK_TYPES[type(dtype)]}) AS {name}")
    return out


def versioned_days(database_url: str) -> dict[str, list[str]]:
    """Per versioned lake kind, ISO dates of the UTC days holding a replaced version (the
    store's history tables say which), read over one connection."""
    with psycopg.connect(database_url, options="-c TimeZone=UTC") as conn:
        return {
            kind: [d.isoformat() for d in history_days(conn, contract)]
            for kind, contract in _VERSIONED_KINDS.items()
        }


def days_view(days: list[str] | None, kind: str) -> str:
    """The SELECT of ``lake.<kind>_versioned_days``: the listed days, or (None: no store
    to ask) every day the lake holds."""
    if days is None:
        return f"SELECT DISTINCT date FROM lake.{kind}"
    if not days:
        return "SELECT CAST(NULL AS DATE) AS date WHERE false"
    values = ", ".join(f"(DATE '{d}')" for d in days)
    return f"SELECT date FROM (VALUES {values}) t(date)"


def lake_files(lake_url: str, kind: str) -> list[str] | None:
    """The Parquet files of ``kind``'s current version for DuckDB to read itself, or None
    when the lake must be read through Arrow (``s3://``, no table yet, reader features)."""
    try:
        return Lake(lake_url).plain_files(kind)
    except FileNotFoundError:
        return None


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
    """Makes the lake's views and loads ``store_table`` sources from PostgreSQL."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.lake_url: str | None = plugin_config.get("lake_url")
        self.database_url: str | None = plugin_config.get("database_url")
        # Arrow datasets behind lake views: DuckDB keeps a registered object per
        # connection, so each cursor dbt opens registers them again
        self._registered: dict[str, Any] = {}

    def configure_connection(self, conn: Any) -> None:
        """Make the lake's views (schema ``lake``), one per kind, on the warehouse, and
        the versioned days of each time series."""
        if not self.lake_url:
            return
        conn.execute("CREATE SCHEMA IF NOT EXISTS lake")
        for kind in _LAKE_KINDS:
            select = self._lake(conn, kind)
            present = [d[0] for d in conn.execute(f"SELECT * FROM {select} LIMIT 0").description]
            extra = "".join(f", {c}" for c in missing_columns(kind, present))
            conn.execute(f"CREATE OR REPLACE VIEW lake.{kind} AS SELECT *{extra} FROM {select}")
        # after every lake version is fixed (see history_days)
        found = versioned_days(self.database_url) if self.database_url else {}
        for kind in _VERSIONED_KINDS:
            view = days_view(found[kind] if self.database_url else None, kind)
            conn.execute(f"CREATE OR REPLACE VIEW lake.{kind}_versioned_days AS {view}")

    def configure_cursor(self, cursor: Any) -> None:
        for name, dataset in self._registered.items():
            cursor.register(name, dataset)

    def _lake(self, conn: Any, kind: str) -> str:
        """What the view of ``kind`` selects from: the Parquet files or an Arrow name."""
        assert self.lake_url is not None
        files = lake_files(self.lake_url, kind)
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            return (
                f"read_parquet([{listed}], hive_partitioning = true,"
                " hive_types = {'date': DATE}, union_by_name = true)"
            )
        name = f"metrify_lake_{kind}"
        self._registered[name] = read_lake(self.lake_url, kind)
        conn.register(name, self._registered[name])
        return name

    def load(self, source_config: Any) -> Any:
        meta = source_config.meta
        if "store_table" in meta:
            if not self.database_url:
                raise ValueError("metrify plugin: no database_url in the profile")
            return read_store_table(self.database_url, str(meta["store_table"]))
        raise ValueError(f"source {source_config.table_name()}: meta needs store_table")

    def default_materialization(self) -> str:
        # reference tables are small: copied into the warehouse file, so it stands alone
        return "table"
