"""The warehouse: where dbt lands the marts, and how readers open it.

By default a DuckDB file, ``<home>/warehouse.duckdb`` (``METRIFY_WAREHOUSE__PATH`` moves
it), that ``metrify warehouse build`` rewrites. DuckDB lets one process write a file, or
any number read it: readers (BI tools, reports, the API) open it read-only, so they never
hold the lock a build needs, and a build never sees a half-read file.

Schemas: ``staging``, ``intermediate`` and ``marts`` (the models of ``transform/``), plus
``store`` (the reference tables copied from PostgreSQL at build time) and ``lake`` (views
over the lake, valid only inside a build).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from metrify.settings import Settings

#: the schemas a reader finds in the warehouse file, by layer
SCHEMAS = ("staging", "intermediate", "marts")


class WarehouseMissing(FileNotFoundError):
    """No warehouse has been built yet (message fit for a user)."""


def warehouse_path(settings: Settings) -> Path:
    """The DuckDB warehouse file of these settings (it need not exist yet)."""
    return settings.warehouse_path


def open_readonly(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the built warehouse, in UTC."""
    path = warehouse_path(settings)
    if not path.is_file():
        raise WarehouseMissing(f"no warehouse at {path}: run `metrify warehouse build` first")
    conn = duckdb.connect(str(path), read_only=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def marts(settings: Settings) -> list[str]:
    """The mart tables and views the warehouse holds, sorted."""
    with open_readonly(settings) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
            " ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the warehouse (for reports and tests)."""
    with open_readonly(settings) as conn:
        return conn.execute(sql, params or []).fetchall()
