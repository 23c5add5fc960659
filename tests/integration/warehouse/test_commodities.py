"""Marts that sum across meters keep commodities apart: kWh and a water meter's m3 never
add. Two electricity meters, a gas meter and a water meter share a region, tariff and grid
node; a day of hourly readings each goes through the normal ingest, then dbt builds the
warehouse on DuckDB and on PostgreSQL.

Expected figures are computed here from the values written: electricity in kWh as sent,
gas converted from m3 with the meter's own calorific value and correction factor
(kWh = m3 x factor x MJ/m3 / 3.6), water's volume in m3.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.batch import dbt
from metrify.cli import app
from metrify.settings import Settings
from metrify.stores import warehouse

pytestmark = pytest.mark.slow

DAY = dt.date(2024, 3, 5)
CALORIFIC_MJ_M3 = 36.0
CORRECTION = 1.02
#: meter -> (commodity column in the meters file, hourly values in the meter's unit)
METERS = {
    "E1": ("electricity", [0.2 + 0.01 * h for h in range(24)]),
    "E2": ("", [0.5 + 0.02 * (h % 5) for h in range(24)]),  # empty: electricity
    "G1": ("gas", [0.1 + 0.005 * h for h in range(24)]),
    "W1": ("water", [0.01 * (1 + h % 7) for h in range(24)]),
}
NODE = "N1"


def run(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stdout, result.stderr)


def _load(root: Path) -> None:
    meters = root / "meters.csv"
    lines = [
        "meter_id,commodity,unit,calorific_value_mj_m3,correction_factor,region,node_id,tariff"
    ]
    for meter, (commodity, _) in METERS.items():
        unit = {"gas": "m3", "water": "m3"}.get(commodity, "kWh")
        gas = (CALORIFIC_MJ_M3, CORRECTION) if commodity == "gas" else ("", "")
        lines.append(f"{meter},{commodity},{unit},{gas[0]},{gas[1]},north,{NODE},std")
    meters.write_text("\n".join(lines) + "\n")
    nodes = root / "nodes.csv"
    nodes.write_text(f"node_id,kind,name,capacity_mw\n{NODE},feeder,North 1,2.0\n")
    readings = root / "readings.csv"
    rows = ["meter_id,ts,import_kwh"]
    for meter, (_, values) in METERS.items():
        rows += [f"{meter},{DAY}T{h:02d}:00:00Z,{v!r}" for h, v in enumerate(values)]
    readings.write_text("\n".join(rows) + "\n")
    grid = root / "grid.csv"
    grid.write_text(
        "ts,load_mw\n" + "".join(f"{DAY}T{h:02d}:00:00Z,{1.0 + h / 100}\n" for h in range(24))
    )
    run("ingest", "nodes", str(nodes))
    run("ingest", "meters", str(meters))
    run("ingest", "readings", str(readings), "--interval", "3600")
    run("ingest", "grid", str(grid), "--set", f"node_id={NODE}", "--interval", "3600")


def _expected() -> dict[str, tuple[str, float, int]]:
    """commodity -> (unit, quantity of the day, meters)."""
    electricity = sum(METERS["E1"][1]) + sum(METERS["E2"][1])
    gas = sum(METERS["G1"][1]) * CORRECTION * CALORIFIC_MJ_M3 / 3.6
    return {
        "electricity": ("kWh", electricity, 2),
        "gas": ("kWh", gas, 1),
        "water": ("m3", sum(METERS["W1"][1]), 1),
    }


def _check(
    segments: list[tuple[object, ...]], grid: list[tuple[object, ...]], units: dict[str, str]
) -> None:
    expected = _expected()
    assert {str(c): (u, q, n) for c, u, q, n in segments} == {
        c: (u, pytest.approx(q, rel=1e-9), n) for c, (u, q, n) in expected.items()
    }
    # the node's metered energy is its electricity meters', not gas or water added in
    assert grid == [(pytest.approx(expected["electricity"][1], rel=1e-9),)]
    assert units == {"E1": "kWh", "E2": "kWh", "G1": "kWh", "W1": "m3"}


SEGMENTS = (
    "SELECT commodity, unit, import_quantity, meters FROM marts.fct_consumption_segments_daily"
    " WHERE region = 'north' AND tariff = 'std' AND local_day = '{day}'"
)
GRID = "SELECT metered_kwh FROM marts.fct_grid_loading WHERE node_id = '{node}' AND day = '{day}'"
UNITS = "SELECT DISTINCT meter_id, unit FROM marts.fct_consumption_daily"


def test_group_marts_keep_commodities_apart_on_duckdb_and_postgres(
    settings: Settings, tmp_path: Path, database_url: str
) -> None:
    _load(tmp_path)
    built = dbt.build(settings)
    assert built.success and not built.failures, [(n.name, n.message) for n in built.failures]
    _check(
        warehouse.query(settings, SEGMENTS.format(day=DAY)),
        warehouse.query(settings, GRID.format(node=NODE, day=DAY)),
        dict(warehouse.query(settings, UNITS)),
    )

    on_postgres = dbt.build(settings, target="postgres")
    assert on_postgres.success and not on_postgres.failures
    try:
        with psycopg.connect(database_url) as conn:
            _check(
                conn.execute(SEGMENTS.format(day=DAY)).fetchall(),
                conn.execute(GRID.format(node=NODE, day=DAY)).fetchall(),
                dict(conn.execute(UNITS).fetchall()),
            )
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for schema in ("staging", "intermediate", "marts"):
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
