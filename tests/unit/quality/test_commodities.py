"""Readings from their meter's unit into the contract's, with figures worked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.contracts.records import READING, Quality, Status
from metrify.quality.commodities import (
    CUMULATIVE_REASON,
    commodity_checks,
    to_contract_units,
    zone_location,
)
from metrify.settings.commodities import CommodityConfig, GasValues

TS = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _records(meter: str, **values: float) -> pl.DataFrame:
    row = {"meter_id": meter, "ts": TS, "interval_s": 3600, **values}
    return (
        pl.DataFrame([row])
        .with_columns(pl.col("ts").dt.cast_time_unit("us"))
        .cast({k: v for k, v in READING.schema.items() if k in row})
    )


def _meters(**columns: list[object]) -> pl.DataFrame:
    return pl.DataFrame(columns)


def test_heat_in_gj_and_mwh_become_kwh() -> None:
    meters = _meters(meter_id=["H1", "H2"], commodity=["heat", "heat"], unit=["GJ", "MWh"])
    out = pl.concat(
        [
            to_contract_units(
                _records(m, import_kwh=1.8, register_kwh=36.0), meters, CommodityConfig()
            )
            for m in ("H1", "H2")
        ]
    )
    # 1 GJ = 1000 MJ / 3.6 MJ per kWh = 277.78 kWh; 1 MWh = 1000 kWh
    assert out["import_kwh"].to_list() == pytest.approx([500.0, 1800.0])
    assert out["register_kwh"].to_list() == pytest.approx([10_000.0, 36_000.0])


def test_gas_volume_becomes_energy_by_meter_then_region_then_default() -> None:
    meters = _meters(
        meter_id=["G1", "G2", "G3"],
        commodity=["gas"] * 3,
        unit=["m3", "m3", "l"],
        region=["NL", "NL", "XX"],
        calorific_value_mj_m3=[36.0, None, None],
        correction_factor=[1.02, None, None],
    )
    cfg = CommodityConfig(regions={"NL": GasValues(calorific_value_mj_m3=35.17)})
    got = {
        m: to_contract_units(_records(m, import_kwh=v), meters, cfg).row(0, named=True)
        for m, v in (("G1", 2.0), ("G2", 2.0), ("G3", 500.0))
    }
    assert got["G1"]["import_kwh"] == pytest.approx(2.0 * 1.02 * 36.0 / 3.6)  # 20.4
    assert got["G2"]["import_kwh"] == pytest.approx(2.0 * 35.17 / 3.6)  # region NL
    assert got["G3"]["import_kwh"] == pytest.approx(0.5 * 39.0 / 3.6)  # 500 l, default CV
    assert [got[m]["volume_m3"] for m in ("G1", "G2", "G3")] == pytest.approx([2.0, 2.0, 0.5])


def test_water_keeps_its_volume_and_electricity_is_untouched() -> None:
    meters = _meters(meter_id=["W1", "E1"], commodity=["water", None], unit=["l", None])
    water = to_contract_units(_records("W1", import_kwh=250.0), meters, CommodityConfig())
    assert water.row(0, named=True)["import_kwh"] == pytest.approx(0.25)
    assert water.row(0, named=True)["volume_m3"] == pytest.approx(0.25)
    plain = _records("E1", import_kwh=0.7)
    out = to_contract_units(plain, meters, CommodityConfig())
    assert out.select(plain.columns).equals(plain)


def test_zone_locations_come_from_tz_data() -> None:
    assert zone_location("Europe/Amsterdam") == pytest.approx((52 + 22 / 60, 4 + 54 / 60))
    assert zone_location("Nowhere/Else") is None


def _hours(meter: str, values: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": meter,
            "ts": [TS + dt.timedelta(hours=h) for h in range(len(values))],
            "interval_s": 3600,
            "import_kwh": values,
            "quality": 0,
            "status": "valid",
        },
        schema_overrides={"interval_s": pl.Int32, "quality": pl.Int32},
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


@pytest.mark.parametrize("order", ["meter and time", "shuffled"])
def test_a_register_mapped_as_energy_is_found_in_any_row_order(order: str) -> None:
    """A heat meter's register (kWh since installation, about 2 kWh an hour) beside an
    ordinary home: only the register's rows are rejected, and those above its meter's
    maximum (5 kW: 5 kWh an hour) are out of range too, whatever order VEE's rows
    come in."""
    register = [80_000.0 + 2.0 * h + (h % 3) * 0.25 for h in range(48)]
    home = [0.3 + (h % 24) * 0.05 + (0.4 if h % 7 == 0 else 0.0) for h in range(48)]
    rows = pl.concat([_hours("HEAT-1", register), _hours("HOME-1", home)])
    if order == "shuffled":
        rows = rows.sample(fraction=1.0, shuffle=True, seed=3)
    meters = _meters(meter_id=["HEAT-1", "HOME-1"], max_kw=[5.0, 5.0])

    out, reasons = commodity_checks(rows, meters)

    assert reasons == {CUMULATIVE_REASON: len(register)}
    assert out.height == rows.height
    assert out.select(pl.all().exclude("quality", "status")).equals(
        rows.select(pl.all().exclude("quality", "status"))
    )  # the rows stay where they were
    heat = out.filter(pl.col("meter_id") == "HEAT-1")
    assert heat.get_column("status").unique().to_list() == [Status.REJECTED.value]
    bits = int(Quality.REGISTER_MISMATCH) | int(Quality.OUT_OF_RANGE)
    assert (heat.get_column("quality") == bits).all()  # every value is above 5 kWh
    untouched = out.filter(pl.col("meter_id") == "HOME-1")
    assert (untouched.get_column("status") == "valid").all()
    assert (untouched.get_column("quality") == 0).all()
