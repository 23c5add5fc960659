"""Readings from their meter's unit into the contract's, with figures worked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.quality.commodities import to_contract_units, zone_location
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
