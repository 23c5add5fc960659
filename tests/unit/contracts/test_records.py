"""The data contracts: quality bits, fields, intervals, kinds."""

from __future__ import annotations

import polars as pl
import pytest

from metrify.contracts.records import (
    CONTRACTS,
    GRID,
    READING,
    WEATHER,
    Quality,
    Status,
    contract,
    interval_is_valid,
)


def test_quality_bits_are_fixed() -> None:
    # DESIGN.md fixes these forever: they travel through every store.
    expected = {
        "MISSING": 1,
        "DUPLICATE": 2,
        "OUT_OF_RANGE": 4,
        "SPIKE": 8,
        "FLAT_LINE": 16,
        "REGISTER_MISMATCH": 32,
        "REGISTER_ROLLOVER": 64,
        "CLOCK": 128,
        "ESTIMATED": 256,
        "EDITED": 512,
        "ANOMALY": 1024,
    }
    assert {f.name: f.value for f in Quality} == expected
    assert [s.value for s in Status] == ["valid", "suspect", "estimated", "rejected"]


def test_contract_fields_match_design() -> None:
    assert READING.fields == [
        "meter_id",
        "ts",
        "interval_s",
        "import_kwh",
        "export_kwh",
        "register_kwh",
        "voltage_v",
        "current_a",
        "power_factor",
        "active_power_kw",
        "reactive_power_kvar",
        "frequency_hz",
        "generation_kwh",
        "volume_m3",
        "export_register_kwh",
    ]
    assert GRID.fields == [
        "node_id",
        "ts",
        "interval_s",
        "load_mw",
        "generation_mw",
        "frequency_hz",
        "voltage_kv",
        "price_per_mwh",
    ]
    assert WEATHER.fields[:3] == ["station_id", "ts", "temperature_c"]
    assert READING.schema["ts"] == pl.Datetime("us", "UTC")
    assert {c.key for c in CONTRACTS.values() if c.time_series} == {
        ("meter_id", "ts"),
        ("node_id", "ts"),
        ("station_id", "ts"),
    }


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [
        (60, True),
        (900, True),
        (1800, True),
        (86400, True),
        (59, False),
        (7, False),
        (700, False),
        (172800, False),
    ],
)
def test_interval_rule(seconds: int, ok: bool) -> None:
    assert interval_is_valid(seconds) is ok


def test_unknown_kind_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="readings, grid, weather"):
        contract("bananas")
